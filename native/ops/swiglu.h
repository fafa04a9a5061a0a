// swiglu: out = silu(gate) * up elementwise, and its backward. Contract: native/cpu/swiglu.h.
#pragma once
#include "ops/check.h"

namespace pt::ops {
void swiglu(const In& gate, const In& up, const Tensor& out);
void swiglu_backward(const In& gate, const In& up, const In& dout, const Tensor& dgate, const Tensor& dup);
}
