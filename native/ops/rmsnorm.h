// rmsnorm: out = x * rstd * weight per row, rstd = 1/sqrt(mean(x^2) + eps) saved for the backward.
// Contract: native/cpu/rmsnorm.h (dx overwritten, dweight accumulated, deterministic).
#pragma once
#include "ops/check.h"

namespace pt::ops {
void rmsnorm(const In& x, const In& weight, double eps, const Tensor& out, const Tensor& rstd);
void rmsnorm_backward(const In& x, const In& weight, const In& rstd, const In& dout, const Tensor& dx, const Tensor& dweight);
}
