// Rotary position embeddings in the Hugging Face Llama layout (rotate_half): dimension i pairs with
// i + D/2, so HF checkpoints load without permuting q/k.
#pragma once
#include "common.h"

namespace pt {
// x, out: [N, H, D] (out may alias x); pos: [N] int32 positions; cos, sin: [P, D/2] f32 tables built
// once by the caller, so every backend uses the same angles. inverse = true rotates by -theta, which
// is the backward pass (the rotation is orthogonal). A position outside [0, P) is an OpError naming
// its row; no separate pass reads the positions first (the model's Batch validated them on the host),
// so out is unspecified after that error.
void rope_apply(DType dt, int64_t N, int64_t H, int64_t D, int64_t P, const int32_t* pos,
                const float* cos, const float* sin, const void* x, void* out, bool inverse);
}  // namespace pt
