#include "rope.h"

namespace pt {

// Returns whether every position was inside the table; a row outside it is skipped, not read.
template <typename T>
static bool apply(int64_t N, int64_t H, int64_t D, int64_t P, const int32_t* pos, const float* cosT,
                  const float* sinT, const T* x, T* out, bool inverse) {
  const int64_t half = D / 2;
  const float sgn = inverse ? -1.f : 1.f;
  bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok) if (N * H * D >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    if (pos[n] < 0 || pos[n] >= P) {
      ok = false;
      continue;
    }
    const float* c = cosT + int64_t(pos[n]) * half;
    const float* s = sinT + int64_t(pos[n]) * half;
    for (int64_t h = 0; h < H; h++) {
      const T* xr = x + (n * H + h) * D;
      T* yr = out + (n * H + h) * D;
      for (int64_t i = 0; i < half; i++) {
        const float x1 = load(xr, i), x2 = load(xr, i + half);
        const float si = sgn * s[i];
        store(yr, i, x1 * c[i] - x2 * si);
        store(yr, i + half, x2 * c[i] + x1 * si);
      }
    }
  }
  return ok;
}

void rope_apply(DType dt, int64_t N, int64_t H, int64_t D, int64_t P, const int32_t* pos,
                const float* cos, const float* sin, const void* x, void* out, bool inverse) {
  // The positions are the Batch's, checked on the host before upload: the kernel only keeps its
  // reads inside the table, and the error path (alone) looks for the row to name.
  const bool ok = dt == DType::BF16 ? apply(N, H, D, P, pos, cos, sin, (const bf16*)x, (bf16*)out, inverse)
                                    : apply(N, H, D, P, pos, cos, sin, (const float*)x, (float*)out, inverse);
  if (ok) return;
  for (int64_t n = 0; n < N; n++) {
    if (pos[n] < 0 || pos[n] >= P) {
      throw OpError("rope: position " + std::to_string(pos[n]) + " at row " + std::to_string(n) +
                    " is outside the table [0, " + std::to_string(P) + ")");
    }
  }
}

}  // namespace pt
