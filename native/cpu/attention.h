// Fused causal attention (flash-attention style): online softmax over key blocks, so no T×T matrix
// is ever held; grouped-query attention; document masks for packed sequences; backward from the
// saved log-sum-exp.
#pragma once
#include "common.h"

namespace pt {
// q: [B, Tq, Hq, D]; k, v: [B, Tk, Hkv, D]; out: [B, Tq, Hq, D]; lse: [B, Hq, Tq] (always f32, the
// natural-log log-sum-exp of the scaled scores, saved for backward). Hkv divides Hq: query head h
// uses kv head h / (Hq / Hkv). Causal with the queries at the END of the keys: query i sits at
// absolute position Tk - Tq + i and sees keys j <= Tk - Tq + i (Tq == Tk in training, Tq < Tk when
// decoding with a KV cache). cu_seqlens: optional document boundaries of packed rows, FlashAttention's
// varlen layout: docs + 1 int32 offsets into the flattened B·Tk key positions, 0 first and B·Tk
// last, never decreasing, and no document crossing a row (nullptr = each row one document); a query
// also sees only keys of its own document. They are read in one O(docs + B·Tk) pass (the same
// bounds are what keeps the kernel in memory, so that pass checks them: OpError otherwise); ids and
// positions are the caller's to have validated. scale 0 selects 1/sqrt(D).
// q, k, v and out share one dtype (BF16 or F32); all math is fp32 and out is rounded once.
void attention_forward(DType dt, int64_t B, int64_t Tq, int64_t Tk, int64_t Hq, int64_t Hkv,
                       int64_t D, float scale, const void* q, const void* k, const void* v,
                       const int32_t* cu_seqlens, int64_t docs, void* out, float* lse);

// Training only (Tq == Tk == T). Recomputes the probabilities from lse (P = exp(s·scale - lse));
// delta_i = dout_i·out_i; dS = P ∘ (dP - delta). dk and dv sum over the query heads sharing a kv
// head in fp32 before their single rounding. dq, dk and dv are overwritten, not accumulated.
void attention_backward(DType dt, int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                        float scale, const void* q, const void* k, const void* v,
                        const int32_t* cu_seqlens, int64_t docs, const void* out, const void* dout, const float* lse,
                        void* dq, void* dk, void* dv);
}  // namespace pt
