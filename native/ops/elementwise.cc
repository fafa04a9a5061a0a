#include "ops/elementwise.h"

#include <cmath>

#include "cpu/elementwise.h"
#include "ops/dispatch.h"

namespace pt::ops {

void add(const In& a, const In& b, const Tensor& out) {
  const char* op = "add";
  const Device dev = same_device(op, {{"a", &a}, {"b", &b}, {"out", &out}});
  need_float(op, "a", a);
  need_same(op, a, "a", b, "b");
  need_same(op, a, "a", out, "out");
  no_overlap(op, "out", out, "a", a, true);
  no_overlap(op, "out", out, "b", b, true);
  switch (dev.kind) {
    case Device::CPU: pt::add(a.dtype, a.numel(), a.data(), b.data(), out.data()); break;
    case Device::CUDA: PT_CUDA(op, cuda::add(ctx(a), a.dtype, a.numel(), a.data(), b.data(), out.data())); break;
  }
}

void cast(const In& src, const Tensor& dst) {
  const char* op = "cast";
  const Device dev = same_device(op, {{"src", &src}, {"dst", &dst}});
  if (src.shape != dst.shape) fail(op, "src " + src.describe() + " and dst " + dst.describe() + " must have one shape");
  if ((src.dtype == DType::I32) != (dst.dtype == DType::I32)) fail(op, "cannot cast between " + src.describe() + " and " + dst.describe());
  no_overlap(op, "dst", dst, "src", src, true);
  switch (dev.kind) {
    case Device::CPU: pt::cast(src.dtype, dst.dtype, src.numel(), src.data(), dst.data()); break;
    case Device::CUDA: PT_CUDA(op, cuda::cast(ctx(src), src.dtype, dst.dtype, src.numel(), src.data(), dst.data())); break;
  }
}

void fill(const Tensor& t, double value) {
  const char* op = "fill";
  if (t.dtype == DType::I32 && !(value == std::floor(value) && std::fabs(value) <= 2147483647.0)) {
    fail(op, "value " + std::to_string(value) + " is not an int32 for " + t.describe());
  }
  switch (t.device().kind) {
    case Device::CPU: pt::fill(t.dtype, t.numel(), value, t.data()); break;
    case Device::CUDA: PT_CUDA(op, cuda::fill(ctx(t), t.dtype, t.numel(), value, t.data())); break;
  }
}

void scale(const Tensor& t, double s) {
  const char* op = "scale";
  need_float(op, "t", t);
  switch (t.device().kind) {
    case Device::CPU: pt::scale(t.dtype, t.numel(), float(s), t.data()); break;
    case Device::CUDA: PT_CUDA(op, cuda::scale(ctx(t), t.dtype, t.numel(), float(s), t.data())); break;
  }
}

double sum_squares(const In& t) {
  const char* op = "sumSquares";
  need_float(op, "t", t);
  switch (t.device().kind) {
    case Device::CPU: return pt::sum_squares(t.dtype, t.numel(), t.data());
    case Device::CUDA:
      PT_CUDA(op, {
        // A sync point per call, as this op's host-returning contract implies; the norm over whole
        // arenas (one read per step) is cuda::sum_squares with accumulate, once the arenas exist.
        cuda::Context& c = ctx(t);
        DeviceScratch acc(c, sizeof(double), "sumSquares");
        cuda::sum_squares(c, t.dtype, t.numel(), t.data(), static_cast<double*>(acc.p), false);
        double host = 0;
        cuda::copy_to_host(c, &host, acc.p, sizeof host);
        return host;
      });
  }
  return 0;
}

void sum_squares_into(const In& t, const Tensor& out, double index) {
  const char* op = "sumSquaresInto";
  const Device dev = same_device(op, {{"t", &t}, {"out", &out}});
  need_float(op, "t", t);
  need_dtype(op, "out", out, DType::F32);
  if (!(index >= 0 && index == std::floor(index) && 2 * index + 1 < double(out.numel()))) {
    fail(op, "index " + std::to_string(index) + " has no (hi, lo) pair in out " + out.describe());
  }
  no_overlap(op, "out", out, "t", t);
  float* pair = static_cast<float*>(out.data()) + 2 * int64_t(index);
  switch (dev.kind) {
    case Device::CPU: {
      const double s = pt::sum_squares(t.dtype, t.numel(), t.data());
      pair[0] = float(s);
      pair[1] = float(s - double(pair[0]));
      break;
    }
    case Device::CUDA: PT_CUDA(op, cuda::sum_squares_pair(ctx(t), t.dtype, t.numel(), t.data(), pair)); break;
  }
}

}  // namespace pt::ops
