// C = x·Wᵀ for a few rows of x (decoding: M = 1..16 tokens), streaming the weights once.
#pragma once
#include "common.h"

namespace pt {
// Rows of x above this go to the packed GEMM: from here on its tiles reuse each loaded weight more.
constexpr int64_t kSmallM = 16;

// Handles C[M,N] (+)= A[M,K]·B[N,K]ᵀ without packing when the build has a path for it: every
// weight row is read once from memory, in its stored order, and dotted with the (cached) rows of
// A. Each output is one fp32 sum in a fixed order, rounded once into C, so the result does not
// depend on the thread count. Returns false (nothing done) where no such path is compiled.
bool gemm_small_m(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
                  int64_t ldb, void* C, int64_t ldc, bool accumulate);
}  // namespace pt
