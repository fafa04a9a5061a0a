#include "ops/adamw.h"

#include <cmath>

#include "cpu/adamw.h"
#include "ops/dispatch.h"

namespace pt::ops {

void adamw(const Tensor& param, const In& grad, const std::optional<Tensor>& master, const Tensor& m, const Tensor& v,
           const AdamWOptions& o) {
  const char* op = "adamw";
  const Device dev = same_device(op, {{"param", &param}, {"grad", &grad}, {"m", &m}, {"v", &v}});
  if (master) same_device(op, {{"param", &param}, {"master", &*master}});
  if (!(o.step >= 1 && o.step <= 9.0e15 && o.step == std::floor(o.step))) fail(op, "option 'step' must be an integer >= 1");
  need_float(op, "param", param);
  need_same(op, param, "param", grad, "grad");
  const Tensor& mast = master ? *master : param;
  if (!master && param.dtype != DType::F32) fail(op, "a bf16 param " + param.describe() + " needs fp32 master weights");
  for (auto [n, t] : {Named{"master", &mast}, Named{"m", &m}, Named{"v", &v}}) {
    need_dtype(op, n, *t, DType::F32);
    need_shape(op, n, *t, param.shape);
  }
  for (auto [on, out] : {Named{"param", &param}, Named{"master", &mast}, Named{"m", &m}, Named{"v", &v}}) {
    for (auto [n, t] : {Named{"grad", &grad}, Named{"m", &m}, Named{"v", &v}}) {
      if (out != t) no_overlap(op, on, *out, n, *t);
    }
  }
  if (master) no_overlap(op, "param", param, "master", *master, true);
  auto *mp = static_cast<float*>(mast.data()), *m1 = static_cast<float*>(m.data()), *v1 = static_cast<float*>(v.data());
  switch (dev.kind) {
    case Device::CPU: {
      const AdamWParams p{float(o.lr), float(o.beta1), float(o.beta2), float(o.eps), float(o.weight_decay), int64_t(o.step), float(o.grad_scale)};
      pt::adamw_step(param.dtype, param.numel(), param.data(), grad.data(), mp, m1, v1, p);
      break;
    }
    case Device::CUDA:
      PT_CUDA(op, {
        const cuda::AdamWArgs a{float(o.lr), float(o.beta1), float(o.beta2), float(o.eps), float(o.weight_decay), int64_t(o.step),
                                float(o.grad_scale), nullptr};
        cuda::adamw_step(ctx(param), param.dtype, param.numel(), param.data(), grad.data(), mp, m1, v1, a);
      });
      break;
  }
}

}  // namespace pt::ops
