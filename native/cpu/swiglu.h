// The Llama MLP's gate: out = silu(gate) * up.
#pragma once
#include "common.h"

namespace pt {
void swiglu_forward(DType dt, int64_t n, const void* gate, const void* up, void* out);
// dgate and dup are overwritten.
void swiglu_backward(DType dt, int64_t n, const void* gate, const void* up, const void* dout,
                     void* dgate, void* dup);
}  // namespace pt
