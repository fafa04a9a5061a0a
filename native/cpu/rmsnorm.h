// RMSNorm as in Llama: y = x / sqrt(mean(x^2) + eps) * w, statistics in fp32.
#pragma once
#include "common.h"

namespace pt {
// x, out: [N, C]; w: [C]; rstd: [N] f32, saved for backward.
void rmsnorm_forward(DType dt, int64_t N, int64_t C, float eps, const void* x, const void* w,
                     void* out, float* rstd);
// dx is overwritten; dw is accumulated into (weight gradients always accumulate across micro-batches).
void rmsnorm_backward(DType dt, int64_t N, int64_t C, const void* x, const void* w, const float* rstd,
                      const void* dout, void* dx, void* dw);
}  // namespace pt
