// crossEntropy: loss sum and trained-row count over logits [N, V], with the gradient fused in when
// dlogits is given (it may be logits itself). Contract: native/cpu/cross_entropy.h.
#pragma once
#include <optional>

#include "ops/check.h"

namespace pt::ops {
struct CrossEntropyTotals {
  double loss_sum;
  int64_t count;
};
CrossEntropyTotals cross_entropy(const In& logits, const In& targets, double ignore_index, const std::optional<Tensor>& dlogits,
                                 double grad_scale);
}
