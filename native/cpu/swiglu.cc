#include "swiglu.h"

#include "bf16_pairs.h"
#include "vec.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
#define PT_SWIGLU_AVX512 1
#else
#define PT_SWIGLU_AVX512 0
#endif

namespace pt {

// Pieces of 2048 vectors go to threads as they come free (a thread that loses its core on a shared
// machine holds up one piece, not a static share); results do not depend on who computes what.
// One template for the vector loop and the scalar remainder (same IEEE operations in the same
// order), so an element's result does not depend on where the thread split puts it.
// sigmoid(x) = n / (1 + e) with e = exp(-|x|), n = 1 for x ≥ 0 and e below: exp(-x) itself
// overflows below x = -88.7, which made x·sigmoid(x) zero where it is still a normal float (and a
// normal bf16 down to about -90). For x ≥ 0 these are the operations the kernel did before.
template <class S>
static inline void sigmoid_parts(typename S::V x, typename S::V& num, typename S::V& den) {
  const typename S::V one = S::set1(1.f), e = S::exp(S::neg_abs(x));
  num = S::if_negative(x, e, one);
  den = S::add(one, e);
}

template <class S, typename T>
static inline void forward_at(const T* g, const T* u, T* out, int64_t i) {
  using V = typename S::V;
  const V x = S::load(g + i);
  V num, den;
  sigmoid_parts<S>(x, num, den);
  S::store(out + i, S::mul(S::div(S::mul(x, num), den), S::load(u + i)));
}

template <class S, typename T>
static inline void backward_at(const T* g, const T* u, const T* dout, T* dg, T* du, int64_t i) {
  using V = typename S::V;
  const V one = S::set1(1.f);
  const V x = S::load(g + i), up = S::load(u + i), d = S::load(dout + i);
  V num, den;
  sigmoid_parts<S>(x, num, den);
  const V sig = S::div(num, den);
  S::store(du + i, S::mul(d, S::mul(x, sig)));
  // d·up·sig·(1 + x·(1 - sig)): the derivative of x·sigmoid(x), times up.
  S::store(dg + i, S::mul(S::mul(S::mul(d, up), sig), S::fmadd(x, S::sub(one, sig), one)));
}

template <typename T>
static void forward(int64_t n, const T* g, const T* u, T* out) {
  using N = vec::Native;
  const int64_t nv = n / N::W;
#pragma omp parallel for schedule(dynamic, 2048) if (n >= kParallelMin)
  for (int64_t b = 0; b < nv; b++) forward_at<N>(g, u, out, b * N::W);
  for (int64_t i = nv * N::W; i < n; i++) forward_at<vec::Scalar>(g, u, out, i);
}

template <typename T>
static void backward(int64_t n, const T* g, const T* u, const T* dout, T* dg, T* du) {
  using N = vec::Native;
  const int64_t nv = n / N::W;
#pragma omp parallel for schedule(dynamic, 2048) if (n >= kParallelMin)
  for (int64_t b = 0; b < nv; b++) backward_at<N>(g, u, dout, dg, du, b * N::W);
  for (int64_t i = nv * N::W; i < n; i++) backward_at<vec::Scalar>(g, u, dout, dg, du, i);
}

#if PT_SWIGLU_AVX512
// bf16 on AVX-512: the data costs half the bytes of f32 while the arithmetic per element is the
// same, so the f32 kernel above (exp512, a divide) is compute bound on bf16 (1.8 cycles an element
// on Zen 4). Here: 32 elements per step in bf16_pairs' even/odd order, one exp512_fast of -|x|
// (never overflows), and 1 / (1 + e) by vrcp14ps with one Newton step (1 + e is in [1, 2]), from
// which sigmoid(x) and 1 - sigmoid(x) are both a product or the reciprocal itself: no divide, no
// cancellation in 1 - sigmoid. Relative error about 2^-22 before the bf16 rounding; the tail
// block is masked, so an element's result does not depend on where threads split the array.
static inline void sigmoid_pair(__m512 x, __m512& s, __m512& one_minus_s) {
  const __m512 e = vexp::exp512_fast(_mm512_or_ps(x, _mm512_set1_ps(-0.f)));  // exp(-|x|)
  const __m512 d = _mm512_add_ps(_mm512_set1_ps(1.f), e);
  __m512 r = _mm512_maskz_rcp14_ps(0xffff, d);
  r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.f)), r);
  const __m512 er = _mm512_mul_ps(e, r);
  const __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(x));  // sign bit set
  s = _mm512_mask_blend_ps(neg, r, er);
  one_minus_s = _mm512_mask_blend_ps(neg, er, r);
}

static inline __m512i load32(const bf16* p, int64_t left) {
  return left >= 32 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi16(bf16_pairs::tail_mask(left), p);
}
static inline void store32(bf16* p, int64_t left, __m512i v) {
  if (left >= 32) _mm512_storeu_si512(p, v);
  else _mm512_mask_storeu_epi16(p, bf16_pairs::tail_mask(left), v);
}

static void forward_bf16(int64_t n, const bf16* g, const bf16* u, bf16* out) {
  const int64_t nb = (n + 31) / 32;
#pragma omp parallel for schedule(dynamic, 1024) if (n >= kParallelMin)
  for (int64_t b = 0; b < nb; b++) {
    const int64_t i = b * 32, left = n - i;
    __m512 x[2], up[2], y[2];
    bf16_pairs::split(load32(g + i, left), x[0], x[1]);
    bf16_pairs::split(load32(u + i, left), up[0], up[1]);
    for (int h = 0; h < 2; h++) {
      __m512 s, oms;
      sigmoid_pair(x[h], s, oms);
      y[h] = _mm512_mul_ps(_mm512_mul_ps(x[h], s), up[h]);
    }
    store32(out + i, left, bf16_pairs::pack(y[0], y[1]));
  }
}

static void backward_bf16(int64_t n, const bf16* g, const bf16* u, const bf16* dout, bf16* dg, bf16* du) {
  const int64_t nb = (n + 31) / 32;
#pragma omp parallel for schedule(dynamic, 1024) if (n >= kParallelMin)
  for (int64_t b = 0; b < nb; b++) {
    const int64_t i = b * 32, left = n - i;
    __m512 x[2], up[2], d[2], dgv[2], duv[2];
    bf16_pairs::split(load32(g + i, left), x[0], x[1]);
    bf16_pairs::split(load32(u + i, left), up[0], up[1]);
    bf16_pairs::split(load32(dout + i, left), d[0], d[1]);
    for (int h = 0; h < 2; h++) {
      __m512 s, oms;
      sigmoid_pair(x[h], s, oms);
      duv[h] = _mm512_mul_ps(d[h], _mm512_mul_ps(x[h], s));
      // d·up·sig·(1 + x·(1 - sig)): the derivative of x·sigmoid(x), times up.
      dgv[h] = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d[h], up[h]), s), _mm512_fmadd_ps(x[h], oms, _mm512_set1_ps(1.f)));
    }
    store32(du + i, left, bf16_pairs::pack(duv[0], duv[1]));
    store32(dg + i, left, bf16_pairs::pack(dgv[0], dgv[1]));
  }
}
#endif

void swiglu_forward(DType dt, int64_t n, const void* gate, const void* up, void* out) {
#if PT_SWIGLU_AVX512
  if (dt == DType::BF16) return forward_bf16(n, (const bf16*)gate, (const bf16*)up, (bf16*)out);
#endif
  if (dt == DType::BF16) forward(n, (const bf16*)gate, (const bf16*)up, (bf16*)out);
  else forward(n, (const float*)gate, (const float*)up, (float*)out);
}

void swiglu_backward(DType dt, int64_t n, const void* gate, const void* up, const void* dout,
                     void* dgate, void* dup) {
#if PT_SWIGLU_AVX512
  if (dt == DType::BF16) return backward_bf16(n, (const bf16*)gate, (const bf16*)up, (const bf16*)dout, (bf16*)dgate, (bf16*)dup);
#endif
  if (dt == DType::BF16)
    backward(n, (const bf16*)gate, (const bf16*)up, (const bf16*)dout, (bf16*)dgate, (bf16*)dup);
  else
    backward(n, (const float*)gate, (const float*)up, (const float*)dout, (float*)dgate, (float*)dup);
}

}  // namespace pt
