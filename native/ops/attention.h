// attention: fused causal attention with GQA and optional cu_seqlens (document boundaries of packed
// rows, FlashAttention's varlen layout), backward from the saved log-sum-exp. max_seqlen bounds the
// longest document (0: the row length); only the CUDA grid uses it. Contract: native/cpu/attention.h.
#pragma once
#include <optional>

#include "ops/check.h"

namespace pt::ops {
void attention(const In& q, const In& k, const In& v, const std::optional<In>& cu_seqlens, const Tensor& out, const Tensor& lse, double scale,
               double max_seqlen);
void attention_backward(const In& q, const In& k, const In& v, const std::optional<In>& cu_seqlens, const In& out, const In& dout,
                        const In& lse, const Tensor& dq, const Tensor& dk, const Tensor& dv, double scale, double max_seqlen);
}
