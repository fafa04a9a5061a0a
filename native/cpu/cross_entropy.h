// Cross-entropy over the vocabulary, fused with its backward.
#pragma once
#include "common.h"

namespace pt {
struct CrossEntropyResult {
  double loss_sum;   // sum of -log p(target) over trained rows, in nats
  int64_t count;     // rows whose target is not ignore_index
};
// logits: [N, V]; targets: [N] int32 (ignore_index rows contribute nothing). Each row is read in
// vocabulary chunks with a running max and sum, so no fp32 copy of the logits exists at any point.
// When dlogits is given (it may alias logits), it receives grad_scale * (softmax - onehot) for
// trained rows and zeros for ignored ones; grad_scale is 1 / (trained tokens in the global batch),
// so micro-batches add up to the mean over the whole batch.
CrossEntropyResult cross_entropy(DType dt, int64_t N, int64_t V, const void* logits,
                                 const int32_t* targets, int32_t ignore_index, void* dlogits,
                                 float grad_scale);
}  // namespace pt
