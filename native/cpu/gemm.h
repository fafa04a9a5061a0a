// Matrix multiply for every linear layer, forward and backward: the one op that dominates training time.
#pragma once
#include "common.h"
#include "pack_cache.h"

namespace pt {
// C = op(A)·op(B), or C += op(A)·op(B) when accumulate. op(A) is M×K, op(B) is K×N, all row-major
// with leading dimensions lda/ldb/ldc (in elements). A, B and C share one dtype (BF16 or F32);
// products accumulate in fp32 and C is rounded to its dtype once, at the end (with accumulate, the
// old C is added in fp32 before that single rounding).
// The three training uses: y = x·Wᵀ (transB), dX = dY·W, dW += dYᵀ·X (transA, accumulate).
// C must not overlap A or B. On AMX or AVX512-BF16 CPUs bf16 products use tdpbf16ps / vdpbf16ps,
// which flush bf16 subnormals (|x| < 1.2e-38) to zero; the f32 and widening paths keep them.
// With bkey (B's storage id, version and offset), the packed op(B) may be kept and reused by later
// calls with the same key (see pack_cache.h); results are bit-identical either way.
// Whether x·Wᵀ in dt reads W where it lies instead of packing it, on this build and CPU: AVX-512,
// and for bf16 the vdpbf16ps path (no AMX); POLYTUNE_GEMM_DIRECT=0 says no. A bf16 call also needs
// an even K and an even row stride of W, or it packs W.
bool gemm_xwt_in_place(DType dt);
void gemm(DType dt, bool transA, bool transB, int64_t M, int64_t N, int64_t K,
          const void* A, int64_t lda, const void* B, int64_t ldb,
          void* C, int64_t ldc, bool accumulate, const PackKey* bkey = nullptr);
}  // namespace pt
