// adamw: one AdamW update of one parameter (bf16 with fp32 master weights, or f32 in place).
// Contract: native/cpu/adamw.h.
#pragma once
#include <optional>

#include "ops/check.h"

namespace pt::ops {
// The hyperparameters as the JS options object carries them (src/tensor/native.ts AdamWNativeOptions).
struct AdamWOptions {
  double lr, beta1, beta2, eps, weight_decay, step, grad_scale;
};
void adamw(const Tensor& param, const In& grad, const std::optional<Tensor>& master, const Tensor& m, const Tensor& v,
           const AdamWOptions& o);
}
