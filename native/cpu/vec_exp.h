// One exp for every CPU op that needs it (cross-entropy, SwiGLU): AVX-512, AVX2 and scalar forms
// that perform the very same IEEE operations in the same order, so a value gets bit-identical
// results whichever form computes it (a vector lane, a masked tail, a scalar remainder), and an
// op's output does not depend on how threads split its elements.
//
// Method: x = n·ln2 + r with n = round(x·log2 e) and r from a two-constant Cody-Waite reduction
// (exact with FMA), |r| <= ln2/2; exp(r) by Cephes' degree-7 polynomial; then the result is scaled
// by 2^n in two steps, 2^(n>>1) · 2^(n - (n>>1)), so gradual underflow is correct and only the
// last multiply rounds into the subnormal range.
// Accuracy (measured against double-precision exp over every float, test/core/exp.test.ts samples
// it): at most 2 ulp of relative error where exp(x) is a normal float (x in [-87.33, 88.72]);
// where it is subnormal (x in [-103.97, -87.33]) at most 1 ulp of the subnormal spacing (2^-149);
// 0 below (exp(-inf) = 0), +inf above 88.72 (and for +inf), NaN for NaN.
// exp512_table and exp512_fast below are cheaper AVX-512-only variants for kernels with no scalar
// remainder (each states its own accuracy).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace pt {
namespace vexp {

// The clamp keeps 2^n representable in two halves; exp is exactly 0 below -104 and inf above 89.
constexpr float kLo = -104.f, kHi = 89.f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

inline float pow2i(int32_t n) {
  const uint32_t u = uint32_t(n + 127) << 23;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// a·b + c rounded once where the CPU has FMA (then it matches the vector forms bit for bit); a
// portable build without FMA rounds twice rather than call libm's slow software fmaf.
inline float fmadd(float a, float b, float c) {
#if defined(__FMA__) || defined(__aarch64__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// Scalar form; every step is one IEEE operation (no contraction left to the compiler).
inline float exp_scalar(float x) {
  if (x != x) return x + x;
  x = std::fmin(std::fmax(x, kLo), kHi);
  const float n = std::nearbyint(x * kLog2e);
  float r = fmadd(n, -kLn2Hi, x);
  r = fmadd(n, -kLn2Lo, r);
  float p = kP0;
  p = fmadd(p, r, kP1);
  p = fmadd(p, r, kP2);
  p = fmadd(p, r, kP3);
  p = fmadd(p, r, kP4);
  p = fmadd(p, r, kP5);
  const float r2 = r * r;
  float y = fmadd(p, r2, r);
  y = y + 1.f;
  const int32_t ni = int32_t(n), n1 = ni >> 1;
  return (y * pow2i(n1)) * pow2i(ni - n1);
}

#if defined(__AVX512F__)
inline __m512 exp512(__m512 x) {
  // max(lo, x) then min(hi, .) return their second operand for NaN, so NaN flows through.
  x = _mm512_maskz_min_ps(0xffff, _mm512_set1_ps(kHi), _mm512_maskz_max_ps(0xffff, _mm512_set1_ps(kLo), x));
  const __m512 n = _mm512_maskz_roundscale_ps(0xffff, _mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Hi), x);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kP0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP5));
  const __m512 r2 = _mm512_mul_ps(r, r);
  __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.f));
  // y·2^n rounded once, gradual underflow included: the same value as the two-step scale of the
  // other forms (their first step, by 2^(n>>1) with n>>1 in [-75, 64], is exact), in one
  // instruction instead of nine.
  return _mm512_maskz_scalef_ps(0xffff, y, n);
}

// A second AVX-512 exp, for kernels whose exps are all computed in vector lanes (no scalar form
// has to match it): x = (k/16)·ln2 + r, 2^(j/16) (j = k mod 16) from a 16-entry table held in a
// register, exp(r) - 1 for |r| <= ln2/32 by r + r²/2 + r³/6 (the next term is below 0.2 ulp),
// one fused multiply-add by the table value and the scale by 2^floor(k/16). Eight multiplies and
// FMAs against eleven for exp512. Accuracy over all 2^32 floats: 1.07 ulp where exp(x) is normal,
// 1.01 subnormal ulps below (the result rounds twice there); 0 below -120 and for -inf; NaN for
// NaN (test/native/exp_check.cc samples it). x must not be +inf (callers pass differences
// x - max): any finite x above 88.72 gives +inf, +inf gives NaN.
inline __m512 exp512_table(__m512 x) {
  const __m512 tab = _mm512_set_ps(1.9152065613971474f, 1.8340080864093424f, 1.7562521603732995f, 1.681792830507429f,
                                   1.6104903319492543f, 1.5422108254079407f, 1.4768261459394993f, 1.4142135623730951f,
                                   1.3542555469368927f, 1.2968395546510096f, 1.241857812073484f, 1.189207115002721f,
                                   1.1387886347566916f, 1.0905077326652577f, 1.0442737824274138f, 1.0f);
  x = _mm512_maskz_max_ps(0xffff, _mm512_set1_ps(-120.f), x);
  // x·log2e + 1.5·2^19 rounds to a multiple of 1/16 (the ulp there): k/16 plus the constant, with
  // k mod 16, the table index, in the low four bits.
  const __m512 magic = _mm512_set1_ps(786432.f);
  const __m512 kj = _mm512_fmadd_ps(x, _mm512_set1_ps(kLog2e), magic);
  const __m512 k16 = _mm512_sub_ps(kj, magic);
  const __m512 t = _mm512_maskz_permutexvar_ps(0xffff, _mm512_castps_si512(kj), tab);
  __m512 r = _mm512_fmadd_ps(k16, _mm512_set1_ps(-kLn2Hi), x);  // k16·ln2hi is exact: 12 + 9 bits
  r = _mm512_fmadd_ps(k16, _mm512_set1_ps(-kLn2Lo), r);
  __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(1.f / 6), r, _mm512_set1_ps(0.5f));
  q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.f));
  q = _mm512_mul_ps(q, r);
  return _mm512_maskz_scalef_ps(0xffff, _mm512_fmadd_ps(t, q, t), k16);
}

#if defined(__AVX512DQ__)
// 2^f for f in [-1/2, 1/2] (degree 5), times 2^n: the shared tail of the two fast exps below.
inline __m512 exp2_poly5_scale(__m512 f, __m512 n) {
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.001326472731307149f), f, _mm512_set1_ps(0.009671512991189957f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.05550733581185341f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24022242426872253f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931470036506653f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return _mm512_maskz_scalef_ps(0xffff, p, n);
}

// A third AVX-512 exp (AVX512DQ), the cheapest in instructions on Zen 4, for kernels that call it
// once per element on bf16 data (cross-entropy, SwiGLU), where the arithmetic, not memory, sets the
// time: exp(x) = 2^t with t = x·log2e rounded once, t = n + f by vreduceps (f = t - round(t),
// exact, |f| <= 1/2), 2^f by a degree-5 minimax polynomial (relative error 1.1e-7) and the scale
// by 2^n with vscalefps (one rounding, gradual underflow). Six FMAs and four other instructions,
// against exp512_table's eight and five (whose table permute takes an FMA and an add slot on
// Zen 4). t's rounding and log2e's own make the error grow with |x|. Accuracy over all 2^32 floats
// (test/native/exp_check.cc samples it): relative error at most 1.7e-7 + 7.3e-8·|x| where exp(x) is normal
// (2.4 ulp for |x| <= 1, 16 ulp at |x| = 20), the same plus one subnormal ulp below; 0 for -inf
// and below -104, +inf above 88.72 and for +inf, NaN for NaN. Fine where x is a difference to a
// running maximum (the terms far below it add nothing to a sum) or -|x| inside a sigmoid.
inline __m512 exp512_fast(__m512 x) {
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(kLog2e));
  const __m512 f = _mm512_maskz_reduce_ps(0xffff, t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 n = _mm512_sub_ps(t, f);  // exact; -inf, +inf and NaN stay (their f is 0 or NaN)
  return exp2_poly5_scale(f, n);
}

// exp512_fast with n = round(t) by vroundscaleps and f = t - n (one add-pipe cycle each) instead
// of vreduceps (two) and t - f: the same n and f, so every finite result is bit-identical to
// exp512_fast's, one add-pipe cycle cheaper per 16 values. An infinite t (x = ±inf, or |x| above
// 2.3e38) gives NaN instead of 0 or +inf: for callers that redo such a vector with exp512_fast.
inline __m512 exp512_fast_finite(__m512 x) {
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(kLog2e));
  const __m512 n = _mm512_maskz_roundscale_ps(0xffff, t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  return exp2_poly5_scale(f, n);
}
#endif
#endif

#if defined(__AVX2__) && defined(__FMA__)
inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(kHi), _mm256_max_ps(_mm256_set1_ps(kLo), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Hi), x);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kP0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
  const __m256 r2 = _mm256_mul_ps(r, r);
  __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
}
#endif

// exp of n contiguous floats (dst may be src). Used by the tests to check the routine itself.
inline void exp_array(int64_t n, const float* src, float* dst) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, exp512(_mm512_loadu_ps(src + i)));
#elif defined(__AVX2__) && defined(__FMA__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, exp256(_mm256_loadu_ps(src + i)));
#endif
  for (; i < n; i++) dst[i] = exp_scalar(src[i]);
}

}  // namespace vexp
}  // namespace pt
