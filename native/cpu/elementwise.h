// Residual adds, casts, fills and the squared norm the optimizer clips by.
#pragma once
#include "common.h"

namespace pt {
// out = a + b (out may alias a or b); one rounding.
void add(DType dt, int64_t n, const void* a, const void* b, void* out);
// Converts between bf16 and f32 (or copies within one dtype); bf16 results round to nearest even.
void cast(DType src_dt, DType dst_dt, int64_t n, const void* src, void* dst);
void fill(DType dt, int64_t n, double value, void* dst);
// x *= s
void scale(DType dt, int64_t n, float s, void* x);
// sum of x^2 in double, so a 7B model's norm does not lose the small tensors.
double sum_squares(DType dt, int64_t n, const void* x);
}  // namespace pt
