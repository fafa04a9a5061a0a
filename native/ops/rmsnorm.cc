#include "ops/rmsnorm.h"

#include "cpu/rmsnorm.h"
#include "ops/dispatch.h"

namespace pt::ops {

void rmsnorm(const In& x, const In& w, double eps, const Tensor& out, const Tensor& rstd) {
  const char* op = "rmsnorm";
  const Device dev = same_device(op, {{"x", &x}, {"weight", &w}, {"out", &out}, {"rstd", &rstd}});
  need_float(op, "x", x);
  need_ndim(op, "x", x, 2);
  need_dtype(op, "weight", w, x.dtype);
  need_shape(op, "weight", w, {x.shape[1]});
  need_dtype(op, "out", out, x.dtype);
  need_shape(op, "out", out, x.shape);
  need_dtype(op, "rstd", rstd, DType::F32);
  need_shape(op, "rstd", rstd, {x.shape[0]});
  if (!(eps > 0)) fail(op, "eps must be positive");
  no_overlap(op, "out", out, "x", x, true);
  no_overlap(op, "out", out, "weight", w);
  no_overlap(op, "rstd", rstd, "x", x);
  no_overlap(op, "rstd", rstd, "out", out);
  auto* r = static_cast<float*>(rstd.data());
  switch (dev.kind) {
    case Device::CPU: pt::rmsnorm_forward(x.dtype, x.shape[0], x.shape[1], float(eps), x.data(), w.data(), out.data(), r); break;
    case Device::CUDA:
      PT_CUDA(op, cuda::rmsnorm_forward(ctx(x), x.dtype, x.shape[0], x.shape[1], float(eps), x.data(), w.data(), out.data(), r));
      break;
  }
}

void rmsnorm_backward(const In& x, const In& w, const In& rstd, const In& dout, const Tensor& dx, const Tensor& dw) {
  const char* op = "rmsnormBackward";
  const Device dev = same_device(op, {{"x", &x}, {"weight", &w}, {"rstd", &rstd}, {"dout", &dout}, {"dx", &dx}, {"dweight", &dw}});
  need_float(op, "x", x);
  need_ndim(op, "x", x, 2);
  for (auto [n, t] : {Named{"dout", &dout}, Named{"dx", &dx}}) {
    need_dtype(op, n, *t, x.dtype);
    need_shape(op, n, *t, x.shape);
  }
  for (auto [n, t] : {Named{"weight", &w}, Named{"dweight", &dw}}) {
    need_dtype(op, n, *t, x.dtype);
    need_shape(op, n, *t, {x.shape[1]});
  }
  need_dtype(op, "rstd", rstd, DType::F32);
  need_shape(op, "rstd", rstd, {x.shape[0]});
  no_overlap(op, "dx", dx, "x", x, true);
  no_overlap(op, "dx", dx, "dout", dout, true);
  no_overlap(op, "dx", dx, "weight", w);
  no_overlap(op, "dx", dx, "rstd", rstd);
  no_overlap(op, "dx", dx, "dweight", dw);
  for (auto [n, t] : {Named{"x", &x}, Named{"weight", &w}, Named{"rstd", &rstd}, Named{"dout", &dout}}) no_overlap(op, "dweight", dw, n, *t);
  const auto* r = static_cast<const float*>(rstd.data());
  switch (dev.kind) {
    case Device::CPU:
      pt::rmsnorm_backward(x.dtype, x.shape[0], x.shape[1], x.data(), w.data(), r, dout.data(), dx.data(), dw.data());
      break;
    case Device::CUDA:
      PT_CUDA(op, cuda::rmsnorm_backward(ctx(x), x.dtype, x.shape[0], x.shape[1], x.data(), w.data(), r, dout.data(), dx.data(), dw.data()));
      break;
  }
}

}  // namespace pt::ops
