#include "kv_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <vector>

#include "attention.h"
#include "vec.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pt {

#if defined(__AVX512F__) && defined(__AVX512BW__)
#define PT_KV_DECODE 1
// One new token (decoding): the query heads of kv heads [kh0, kh1) attend over the L cached keys
// directly, instead of through attention_forward's query-block tiling, which is built for many
// queries (it cost a sixth of the layer's matmul time at 128-330 cached tokens). The cache is
// walked row by row (all of [kh0, kh1) of a row, contiguous, then the next row), so it streams
// from memory in one sequence rather than one strided walk per head. fp32 math as in
// attention_forward; out rounded once. s: nh·L floats, qf: nh·D, acc: nh·16·ceil(D/16), where
// nh = (kh1 - kh0)·G query heads.
template <typename T>
static void decode_heads(const T* q, const T* kc, const T* vc, int64_t L, int64_t Hkv, int64_t D, int64_t G,
                         int64_t kh0, int64_t kh1, float scale, T* out, float* s, float* qf, float* acc) {
  const int64_t rowStride = Hkv * D, nch = (D + 15) / 16, nh = (kh1 - kh0) * G, h0 = kh0 * G;
  auto mask_at = [&](int64_t c) { return __mmask16(D - c * 16 >= 16 ? 0xffff : (1u << (D - c * 16)) - 1); };
  auto ldt = [](const T* p, __mmask16 m) {
    if constexpr (sizeof(T) == 2) {
      const __m512i w = _mm512_maskz_cvtepu16_epi32(0xffff, _mm256_maskz_loadu_epi16(m, p));
      return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, w, 16));
    } else {
      return _mm512_maskz_loadu_ps(m, p);
    }
  };
  for (int64_t h = 0; h < nh; h++)
    for (int64_t d = 0; d < D; d++) qf[h * D + d] = load(q + (h0 + h) * D, d) * scale;
  for (int64_t j = 0; j < L; j++) {
    const T* krow = kc + j * rowStride + kh0 * D;
    for (int64_t h = 0; h < nh; h++) {
      const T* k = krow + (h / G) * D;
      __m512 a = _mm512_setzero_ps();
      for (int64_t c = 0; c < nch; c++) a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask_at(c), qf + h * D + c * 16), ldt(k + c * 16, mask_at(c)), a);
      s[h * L + j] = vec::Avx512::reduce_add(a);
    }
  }
  for (int64_t h = 0; h < nh; h++) {
    float* sh = s + h * L;
    float m = sh[0];
    for (int64_t j = 1; j < L; j++) m = sh[j] > m ? sh[j] : m;
    for (int64_t j = 0; j < L; j++) sh[j] -= m;
    vexp::exp_array(L, sh, sh);
    float sum = 0;
    for (int64_t j = 0; j < L; j++) sum += sh[j];
    const float inv = 1.f / sum;
    for (int64_t j = 0; j < L; j++) sh[j] *= inv;
  }
  const int64_t as = nch * 16;
  for (int64_t i = 0; i < nh * as; i++) acc[i] = 0.f;
  for (int64_t j = 0; j < L; j++) {
    const T* vrow = vc + j * rowStride + kh0 * D;
    for (int64_t kh = 0; kh < kh1 - kh0; kh++)
      for (int64_t c = 0; c < nch; c++) {
        const __m512 vv = ldt(vrow + kh * D + c * 16, mask_at(c));
        for (int64_t g = 0; g < G; g++) {
          const int64_t h = kh * G + g;
          float* ap = acc + h * as + c * 16;
          _mm512_storeu_ps(ap, _mm512_fmadd_ps(_mm512_set1_ps(s[h * L + j]), vv, _mm512_loadu_ps(ap)));
        }
      }
  }
  for (int64_t h = 0; h < nh; h++) {
    T* oh = out + (h0 + h) * D;
    for (int64_t d = 0; d < D; d++) store(oh, d, acc[h * as + d]);
  }
}

// Scratch floats one call of decode_heads needs for nh query heads.
static inline size_t decode_scratch(int64_t nh, int64_t L, int64_t D) { return size_t(nh * (L + D + (D + 15) / 16 * 16)); }

// scratch: per-thread blocks of `per` floats, allocated by the caller (nothing may throw inside a
// parallel region). Parallel: each thread takes a contiguous range of kv heads; otherwise (nested
// in a loop over segments) all heads on the calling thread with the block `own`.
template <typename T>
static void decode_segment(const KvSegment& g, int64_t maxLen, int64_t Hq, int64_t Hkv, int64_t D, float scale,
                           const T* q, const T* kcache, const T* vcache, T* out, float* scratch, size_t per,
                           bool parallel, float* own) {
  const int64_t L = int64_t(g.start) + 1, G = Hq / Hkv;
  const T* kc = kcache + int64_t(g.slot) * maxLen * Hkv * D;
  const T* vc = vcache + int64_t(g.slot) * maxLen * Hkv * D;
  const T* qr = q + int64_t(g.row) * Hq * D;
  T* orow = out + int64_t(g.row) * Hq * D;
  auto heads = [&](int64_t kh0, int64_t kh1, float* sc) {
    const int64_t nh = (kh1 - kh0) * G;
    decode_heads(qr, kc, vc, L, Hkv, D, G, kh0, kh1, scale, orow, sc, sc + nh * L, sc + nh * (L + D));
  };
  if (!parallel) return heads(0, Hkv, own);
#pragma omp parallel
  {
#ifdef _OPENMP
    const int tid = omp_get_thread_num(), n = omp_get_num_threads();
#else
    const int tid = 0, n = 1;
#endif
    const int64_t kh0 = tid * Hkv / n, kh1 = (tid + 1) * Hkv / n;
    if (kh0 < kh1) heads(kh0, kh1, scratch + size_t(tid) * per);
  }
}
#else
#define PT_KV_DECODE 0
#endif

void kv_attention(DType dt, const KvSegment* segs, int64_t nseg, int64_t maxLen, int64_t Hq, int64_t Hkv,
                  int64_t D, float scale, const void* q, const void* knew, const void* vnew, void* kcache,
                  void* vcache, void* out) {
  const int64_t esz = dt == DType::BF16 ? 2 : 4;
  const int64_t kvRow = Hkv * D * esz, qRow = Hq * D * esz, slotBytes = maxLen * kvRow;
  auto* kc = static_cast<char*>(kcache);
  auto* vc = static_cast<char*>(vcache);
  for (int64_t s = 0; s < nseg; s++) {
    const KvSegment& g = segs[s];
    const int64_t at = g.slot * slotBytes + int64_t(g.start) * kvRow, bytes = int64_t(g.n) * kvRow;
    std::memcpy(kc + at, static_cast<const char*>(knew) + int64_t(g.row) * kvRow, size_t(bytes));
    std::memcpy(vc + at, static_cast<const char*>(vnew) + int64_t(g.row) * kvRow, size_t(bytes));
  }
#if PT_KV_DECODE
  // One token per segment: the direct decode path (scale 0 means 1/sqrt(D), as attention_forward
  // takes it).
  bool decode = Hq % Hkv == 0;
  for (int64_t s = 0; s < nseg; s++) decode = decode && segs[s].n == 1;
  if (decode) {
    const float sc = scale > 0 ? scale : 1.f / std::sqrt(float(D));
    int64_t Lmax = 0;
    for (int64_t s = 0; s < nseg; s++) Lmax = std::max<int64_t>(Lmax, int64_t(segs[s].start) + 1);
    const size_t per = decode_scratch(Hq, Lmax, D);
    const bool one = nseg == 1;
    const bool parallel = one && Lmax * Hq * D >= (int64_t(1) << 15);
    std::vector<float> scratch(size_t(num_threads()) * per);
    auto run = [&](const KvSegment& g, float* own) {
      if (dt == DType::BF16)
        decode_segment(g, maxLen, Hq, Hkv, D, sc, static_cast<const bf16*>(q), static_cast<const bf16*>(kcache),
                       static_cast<const bf16*>(vcache), static_cast<bf16*>(out), scratch.data(), per, parallel, own);
      else
        decode_segment(g, maxLen, Hq, Hkv, D, sc, static_cast<const float*>(q), static_cast<const float*>(kcache),
                       static_cast<const float*>(vcache), static_cast<float*>(out), scratch.data(), per, parallel, own);
    };
    if (one) {
      run(segs[0], scratch.data());
    } else {
#pragma omp parallel for schedule(dynamic)
      for (int64_t s = 0; s < nseg; s++) {
#ifdef _OPENMP
        run(segs[s], scratch.data() + size_t(omp_get_thread_num()) * per);
#else
        run(segs[s], scratch.data());
#endif
      }
    }
    return;
  }
#endif
  // One sequence: attention_forward spreads its heads and query blocks over the threads itself.
  // Several: one sequence per thread (the inner call then runs on its caller's thread).
  std::exception_ptr err;
#pragma omp parallel for schedule(dynamic) if (nseg > 1)
  for (int64_t s = 0; s < nseg; s++) {
    try {
      const KvSegment& g = segs[s];
      const int64_t L = int64_t(g.start) + g.n;
      std::vector<float> lse(size_t(Hq * g.n));
      attention_forward(dt, 1, g.n, L, Hq, Hkv, D, scale, static_cast<const char*>(q) + int64_t(g.row) * qRow,
                        kc + g.slot * slotBytes, vc + g.slot * slotBytes, nullptr, 0,
                        static_cast<char*>(out) + int64_t(g.row) * qRow, lse.data());
    } catch (...) {
#pragma omp critical
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace pt
