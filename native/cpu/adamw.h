// AdamW with decoupled weight decay and bias correction (Loshchilov & Hutter), as torch.optim.AdamW.
#pragma once
#include "common.h"

namespace pt {
struct AdamWParams {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;       // 1-based step count after this update, for bias correction
  float grad_scale;   // multiplies the gradient first: 1, or the clipping factor
};
// master, m, v: [n] f32. param: [n] bf16 working copy (or f32, then it may alias master): it is
// rewritten from the updated fp32 master, because lr 1e-5 updates vanish when added to bf16 directly.
// grad: [n] in param's dtype.
void adamw_step(DType dt, int64_t n, void* param, const void* grad, float* master, float* m, float* v,
                const AdamWParams& p);
}  // namespace pt
