// crossEntropy: per-row losses of logits [N, V] into an f32 [N] tensor (0 for ignored rows; the caller
// reads them once per micro-batch), with the gradient fused in when dlogits is given (it may be logits). Contract: native/cpu/cross_entropy.h.
#pragma once
#include <optional>

#include "ops/check.h"

namespace pt::ops {
void cross_entropy(const In& logits, const In& targets, double ignore_index, const Tensor& losses, const std::optional<Tensor>& dlogits,
                   double grad_scale);
}
