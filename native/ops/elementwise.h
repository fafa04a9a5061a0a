// Flat elementwise ops: add, cast, fill, scale, and the sum of squares (the gradient norm's
// reduction, deterministic). Contract: native/cpu/elementwise.h.
#pragma once
#include "ops/check.h"

namespace pt::ops {
void add(const In& a, const In& b, const Tensor& out);
void cast(const In& src, const Tensor& dst);
void fill(const Tensor& t, double value);
void scale(const Tensor& t, double s);
double sum_squares(const In& t);
// The same sum written as an f32 (hi, lo) pair at out[2 index], out[2 index + 1]: several reductions
// (one per arena) are then read back at once, and hi + lo keeps the double's precision.
void sum_squares_into(const In& t, const Tensor& out, double index);
}
