// A 16×16 transpose of 32-bit values in registers, shared by the GEMM's packing and attention's.
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>

namespace pt {

// All-ones masked intrinsics below compile to the plain instructions; the unmasked forms trip
// GCC 12's -Wmaybe-uninitialized through their _mm512_undefined_*() pass-through. Only shuffles:
// any bit pattern (bf16 pairs, NaNs) comes out as it went in.

// In-register transpose of a 16×16 block of 32-bit values (v[i] = row i on entry, column i on exit).
inline void transpose16(__m512 v[16]) {
  constexpr __mmask16 all = 0xffff;
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_mask_unpacklo_ps(v[i], all, v[i], v[i + 1]);
    t[i + 1] = _mm512_mask_unpackhi_ps(v[i], all, v[i], v[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {
    v[g] = _mm512_mask_shuffle_ps(t[g], all, t[g], t[g + 2], _MM_SHUFFLE(1, 0, 1, 0));
    v[g + 1] = _mm512_mask_shuffle_ps(t[g], all, t[g], t[g + 2], _MM_SHUFFLE(3, 2, 3, 2));
    v[g + 2] = _mm512_mask_shuffle_ps(t[g], all, t[g + 1], t[g + 3], _MM_SHUFFLE(1, 0, 1, 0));
    v[g + 3] = _mm512_mask_shuffle_ps(t[g], all, t[g + 1], t[g + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // v[4g + j] now holds, in 128-bit lane L, column 4L + j of rows 4g..4g+3.
  auto lanes = [&](__m512 x, __m512 y, int imm) {
    return imm == 0x88 ? _mm512_mask_shuffle_f32x4(x, all, x, y, 0x88) : _mm512_mask_shuffle_f32x4(x, all, x, y, 0xdd);
  };
  for (int j = 0; j < 4; j++) {
    const __m512 a = lanes(v[j], v[4 + j], 0x88), b = lanes(v[j], v[4 + j], 0xdd);
    const __m512 c = lanes(v[8 + j], v[12 + j], 0x88), d = lanes(v[8 + j], v[12 + j], 0xdd);
    t[j] = lanes(a, c, 0x88);
    t[8 + j] = lanes(a, c, 0xdd);
    t[4 + j] = lanes(b, d, 0x88);
    t[12 + j] = lanes(b, d, 0xdd);
  }
  for (int i = 0; i < 16; i++) v[i] = t[i];
}

}  // namespace pt
#endif
