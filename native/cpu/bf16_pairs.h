// 32 bf16 values as two f32 vectors, for AVX-512 kernels whose lanes are independent
// (cross-entropy, SwiGLU): read as 16 dwords, the even elements are the low words shifted up and
// the odd ones the high words masked, one instruction each, instead of a widening load per 16;
// results computed in that even/odd order are packed back into place by pack().
#pragma once
#include <cstdint>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace pt {
namespace bf16_pairs {

inline __mmask32 tail_mask(int64_t n) { return n >= 32 ? ~__mmask32(0) : n <= 0 ? __mmask32(0) : (__mmask32(1) << n) - 1; }

inline void split(__m512i v, __m512& even, __m512& odd) {
  even = _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, v, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int32_t(0xffff0000u))));
}

// Round to nearest even exactly as f32_to_bf16 (NaN made quiet), word 2i from even, 2i+1 from odd.
inline __m512i pack_exact(__m512 even, __m512 odd) {
  const __m512i ua = _mm512_castps_si512(even), ub = _mm512_castps_si512(odd);
  const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x400000);
  __m512i ta = _mm512_add_epi32(_mm512_add_epi32(ua, bias), _mm512_and_si512(_mm512_maskz_srli_epi32(0xffff, ua, 16), one));
  __m512i tb = _mm512_add_epi32(_mm512_add_epi32(ub, bias), _mm512_and_si512(_mm512_maskz_srli_epi32(0xffff, ub, 16), one));
  ta = _mm512_mask_mov_epi32(ta, _mm512_cmp_ps_mask(even, even, _CMP_UNORD_Q), _mm512_or_si512(ua, quiet));
  tb = _mm512_mask_mov_epi32(tb, _mm512_cmp_ps_mask(odd, odd, _CMP_UNORD_Q), _mm512_or_si512(ub, quiet));
  // (ta >> 16) | (tb & 0xffff0000)
  return _mm512_ternarylogic_epi32(_mm512_maskz_srli_epi32(0xffff, ta, 16), tb, _mm512_set1_epi32(int32_t(0xffff0000u)), 0xF8);
}

inline __m512i pack(__m512 even, __m512 odd) {
#if defined(__AVX512BF16__)
  // vcvtne2ps2bf16 rounds as f32_to_bf16 does except that it flushes subnormal inputs to zero:
  // blocks holding one (|value| below 1.2e-38) take the exact path.
  if (!(_mm512_fpclass_ps_mask(even, 0x20) | _mm512_fpclass_ps_mask(odd, 0x20))) {
    const __m512i w = (__m512i)_mm512_cvtne2ps_pbh(odd, even);
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, w);
  }
#endif
  return pack_exact(even, odd);
}

}  // namespace bf16_pairs
}  // namespace pt
#endif
