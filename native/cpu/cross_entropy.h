// Cross-entropy over the vocabulary, fused with its backward.
#pragma once
#include "common.h"

namespace pt {
// logits: [N, V]; targets: [N] int32. row_loss: [N] f32 receives -log p(target) in nats, 0 for
// ignore_index rows, so the caller reads (and sums) the loss once per micro-batch; the trained-row
// count is known from the targets. Each row is read in vocabulary chunks with a running max and
// sum, so no fp32 copy of the logits exists at any point.
// When dlogits is given (it may alias logits), it receives grad_scale * (softmax - onehot) for
// trained rows and zeros for ignored ones; grad_scale is 1 / (trained tokens in the global batch),
// so micro-batches add up to the mean over the whole batch.
void cross_entropy(DType dt, int64_t N, int64_t V, const void* logits, const int32_t* targets,
                   int32_t ignore_index, float* row_loss, void* dlogits, float grad_scale);
}  // namespace pt
