// matmul: out (+)= op(a)·op(b). Contract: native/cpu/gemm.h (fp32 accumulation, out rounded once).
#pragma once
#include "ops/check.h"

namespace pt::ops {
// b is read-only so its packing may be cached by the CPU GEMM (native/cpu/pack_cache.h).
void matmul(const In& a, const In& b, const Tensor& out, bool trans_a, bool trans_b, bool accumulate);
}
