// rope: rotates x [N, H, D] by the angles of each row's position (f32 cos/sin tables [P, D/2]) into
// out, which may be x itself; inverse rotates back (the backward). Contract: native/cpu/rope.h.
#pragma once
#include "ops/check.h"

namespace pt::ops {
void rope(const In& x, const In& positions, const In& cos, const In& sin, const Tensor& out, bool inverse);
}
