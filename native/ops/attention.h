// attention: fused causal attention with GQA and optional document ids for packed rows, backward from
// the saved log-sum-exp. Contract: native/cpu/attention.h.
#pragma once
#include <optional>

#include "ops/check.h"

namespace pt::ops {
void attention(const In& q, const In& k, const In& v, const std::optional<In>& doc, const Tensor& out, const Tensor& lse, double scale);
void attention_backward(const In& q, const In& k, const In& v, const std::optional<In>& doc, const In& out, const In& dout,
                        const In& lse, const Tensor& dq, const Tensor& dk, const Tensor& dv, double scale);
}
