#include "ops/rope.h"

#include "cpu/rope.h"
#include "ops/dispatch.h"

namespace pt::ops {

void rope(const In& x, const In& pos, const In& cos, const In& sin, const Tensor& out, bool inverse) {
  const char* op = "rope";
  const Device dev = same_device(op, {{"x", &x}, {"positions", &pos}, {"cos", &cos}, {"sin", &sin}, {"out", &out}});
  need_float(op, "x", x);
  need_ndim(op, "x", x, 3);
  const int64_t N = x.shape[0], H = x.shape[1], D = x.shape[2];
  if (D % 2) fail(op, "x " + x.describe() + ": head dimension must be even");
  need_dtype(op, "positions", pos, DType::I32);
  need_shape(op, "positions", pos, {N});
  need_dtype(op, "cos", cos, DType::F32);
  need_ndim(op, "cos", cos, 2);
  need_shape(op, "cos", cos, {cos.shape[0], D / 2});
  need_dtype(op, "sin", sin, DType::F32);
  need_shape(op, "sin", sin, cos.shape);
  need_dtype(op, "out", out, x.dtype);
  need_shape(op, "out", out, x.shape);
  no_overlap(op, "out", out, "x", x, true);
  for (auto [n, t] : {Named{"positions", &pos}, Named{"cos", &cos}, Named{"sin", &sin}}) no_overlap(op, "out", out, n, *t);
  const auto* p = static_cast<const int32_t*>(pos.data());
  const auto *c = static_cast<const float*>(cos.data()), *s = static_cast<const float*>(sin.data());
  switch (dev.kind) {
    case Device::CPU: pt::rope_apply(x.dtype, N, H, D, cos.shape[0], p, c, s, x.data(), out.data(), inverse); break;
    case Device::CUDA: PT_CUDA(op, cuda::rope_apply(ctx(x), x.dtype, N, H, D, cos.shape[0], p, c, s, x.data(), out.data(), inverse)); break;
  }
}

}  // namespace pt::ops
