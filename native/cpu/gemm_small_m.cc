#include "gemm_small_m.h"

#include <algorithm>

#include "vec.h"

namespace pt {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
namespace {

constexpr int RB = 4;  // weight rows per block: 4 sequential streams, 4·MB accumulators

// One k step of 16 fp32 lanes (or 32 bf16 as 16 pairs) for MB rows of A and RB rows of B.
// Masked loads zero the tail, so the tail step is the same code.
template <typename T>
struct Step;

template <>
struct Step<float> {
  static constexpr int64_t KS = 16;
  static __m512 load(const float* p, __mmask32 m) { return _mm512_maskz_loadu_ps(__mmask16(m), p); }
  static __m512 dot(__m512 acc, __m512 a, __m512 b) { return _mm512_fmadd_ps(a, b, acc); }
};

#if defined(__AVX512BF16__)
// vdpbf16ps: exact bf16 products, pair-summed into fp32 lanes (bf16 subnormals flush to zero, as
// in the packed bf16 path).
template <>
struct Step<bf16> {
  static constexpr int64_t KS = 32;
  static __m512 load(const bf16* p, __mmask32 m) { return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, p)); }
  static __m512 dot(__m512 acc, __m512 a, __m512 b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_castps_si512(a), (__m512bh)_mm512_castps_si512(b));
  }
};
#else
// Widen 16 bf16 to fp32 exactly, then FMA.
template <>
struct Step<bf16> {
  static constexpr int64_t KS = 16;
  static __m512 load(const bf16* p, __mmask32 m) {
    const __m256i h = _mm256_maskz_loadu_epi16(__mmask16(m), p);
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, _mm512_maskz_cvtepu16_epi32(0xffff, h), 16));
  }
  static __m512 dot(__m512 acc, __m512 a, __m512 b) { return _mm512_fmadd_ps(a, b, acc); }
};
#endif

template <int MB, typename T>
void block(const T* a, int64_t lda, const T* const w[RB], int64_t K, float out[MB][RB]) {
  using St = Step<T>;
  // Named accumulators: with an array of them GCC 12 stores the whole array to memory every step.
  const __m512 z = _mm512_setzero_ps();
  __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z, c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
  const __mmask32 full = St::KS == 32 ? ~__mmask32(0) : __mmask32(0xffff);
  const T *w0p = w[0], *w1p = w[1], *w2p = w[2], *w3p = w[3];
  // The tail is a masked last step of the same loop.
  for (int64_t k = 0; k < K; k += St::KS) {
    const __mmask32 mask = k + St::KS <= K ? full : (__mmask32(1) << (K - k)) - 1;
    const __m512 w0 = St::load(w0p + k, mask), w1 = St::load(w1p + k, mask), w2 = St::load(w2p + k, mask),
                 w3 = St::load(w3p + k, mask);
    {
      const __m512 av = St::load(a + 0 * lda + k, mask);
      c00 = St::dot(c00, av, w0); c01 = St::dot(c01, av, w1); c02 = St::dot(c02, av, w2); c03 = St::dot(c03, av, w3);
    }
    if constexpr (MB > 1) {
      const __m512 av = St::load(a + 1 * lda + k, mask);
      c10 = St::dot(c10, av, w0); c11 = St::dot(c11, av, w1); c12 = St::dot(c12, av, w2); c13 = St::dot(c13, av, w3);
    }
    if constexpr (MB > 2) {
      const __m512 av = St::load(a + 2 * lda + k, mask);
      c20 = St::dot(c20, av, w0); c21 = St::dot(c21, av, w1); c22 = St::dot(c22, av, w2); c23 = St::dot(c23, av, w3);
    }
    if constexpr (MB > 3) {
      const __m512 av = St::load(a + 3 * lda + k, mask);
      c30 = St::dot(c30, av, w0); c31 = St::dot(c31, av, w1); c32 = St::dot(c32, av, w2); c33 = St::dot(c33, av, w3);
    }
  }
  // Lanes summed in a fixed order: halves, quarters, then pairs.
  alignas(64) float lanes[4][RB][16];
  { _mm512_store_ps(lanes[0][0], c00); _mm512_store_ps(lanes[0][1], c01); _mm512_store_ps(lanes[0][2], c02); _mm512_store_ps(lanes[0][3], c03); }
  if constexpr (MB > 1) { _mm512_store_ps(lanes[1][0], c10); _mm512_store_ps(lanes[1][1], c11); _mm512_store_ps(lanes[1][2], c12); _mm512_store_ps(lanes[1][3], c13); }
  if constexpr (MB > 2) { _mm512_store_ps(lanes[2][0], c20); _mm512_store_ps(lanes[2][1], c21); _mm512_store_ps(lanes[2][2], c22); _mm512_store_ps(lanes[2][3], c23); }
  if constexpr (MB > 3) { _mm512_store_ps(lanes[3][0], c30); _mm512_store_ps(lanes[3][1], c31); _mm512_store_ps(lanes[3][2], c32); _mm512_store_ps(lanes[3][3], c33); }
  for (int m = 0; m < MB; m++)
    for (int r = 0; r < RB; r++) {
      float s8[8];
      for (int i = 0; i < 8; i++) s8[i] = lanes[m][r][i] + lanes[m][r][i + 8];
      for (int i = 0; i < 4; i++) s8[i] += s8[i + 4];
      out[m][r] = (s8[0] + s8[2]) + (s8[1] + s8[3]);
    }
}

template <int MB, typename T>
void rows_group(const T* a, int64_t lda, const T* B, int64_t ldb, int64_t N, int64_t K, int64_t n0, T* C,
                int64_t ldc, bool accumulate) {
  const T* w[RB];
  const int rows = int(std::min<int64_t>(RB, N - n0));
  // Past the last weight row, repeat it: the extra sums are computed from L1 and dropped.
  for (int r = 0; r < RB; r++) w[r] = B + (n0 + std::min(r, rows - 1)) * ldb;
  float out[MB][RB];
  block<MB>(a, lda, w, K, out);
  for (int m = 0; m < MB; m++) {
    T* c = C + m * ldc + n0;
    for (int r = 0; r < rows; r++) store(c, r, accumulate ? load(c, r) + out[m][r] : out[m][r]);
  }
}

// One or two rows of x: each weight row is read start to end, one after the other, so a thread
// streams its whole range of weight rows as one sequential read. (Interleaving four rows, as
// block() does, makes four streams; with 2 KB rows (K = 1024 bf16) they end before the hardware
// prefetcher has ramped up, and a core read 11.7 GB/s that way against 23.5 GB/s in one stream.)
// Two accumulators per row of x (even and odd steps) keep two dot products in flight; the row's
// sum is (even + odd), then reduce_add's fixed tree.
template <int MB, typename T>
void rows_sequential(const T* a, int64_t lda, const T* B, int64_t ldb, int64_t r0, int64_t r1, int64_t K, T* C,
                     int64_t ldc, bool accumulate) {
  static_assert(MB == 1 || MB == 2, "one or two rows of x");
  using St = Step<T>;
  const __mmask32 full = St::KS == 32 ? ~__mmask32(0) : __mmask32(0xffff);
  const T* a1 = a + (MB > 1 ? lda : 0);
  for (int64_t r = r0; r < r1; r++) {
    const T* w = B + r * ldb;
    const __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z;
    int64_t k = 0;
    for (; k + 2 * St::KS <= K; k += 2 * St::KS) {
      const __m512 w0 = St::load(w + k, full), w1 = St::load(w + k + St::KS, full);
      c00 = St::dot(c00, St::load(a + k, full), w0);
      c01 = St::dot(c01, St::load(a + k + St::KS, full), w1);
      if constexpr (MB > 1) {
        c10 = St::dot(c10, St::load(a1 + k, full), w0);
        c11 = St::dot(c11, St::load(a1 + k + St::KS, full), w1);
      }
    }
    for (; k < K; k += St::KS) {
      const __mmask32 mask = k + St::KS <= K ? full : (__mmask32(1) << (K - k)) - 1;
      const __m512 w0 = St::load(w + k, mask);
      c00 = St::dot(c00, St::load(a + k, mask), w0);
      if constexpr (MB > 1) c10 = St::dot(c10, St::load(a1 + k, mask), w0);
    }
    const float s0 = vec::Avx512::reduce_add(_mm512_add_ps(c00, c01));
    store(C, r, accumulate ? load(C, r) + s0 : s0);
    if constexpr (MB > 1) {
      const float s1 = vec::Avx512::reduce_add(_mm512_add_ps(c10, c11));
      store(C + ldc, r, accumulate ? load(C + ldc, r) + s1 : s1);
    }
  }
}

template <typename T>
void run(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc,
         bool accumulate) {
  if (M <= 2) {
    // Few, long contiguous pieces of weight rows (about four per thread, at least 64 rows): one
    // sequential stream each, while a thread that loses its core on a shared machine still
    // delays the call by one piece only.
    const bool parallel = N * K >= (int64_t(1) << 16);
    const int nt = parallel ? num_threads() : 1;
    const int64_t piece = std::max<int64_t>(64, (N + 4 * nt - 1) / (4 * nt));
    const int64_t pieces = (N + piece - 1) / piece;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (int64_t i = 0; i < pieces; i++) {
      const int64_t r0 = i * piece, r1 = std::min(N, r0 + piece);
      if (M == 1) rows_sequential<1>(A, lda, B, ldb, r0, r1, K, C, ldc, accumulate);
      else rows_sequential<2>(A, lda, B, ldb, r0, r1, K, C, ldc, accumulate);
    }
    return;
  }
  const int64_t blocks = (N + RB - 1) / RB;
  // Every block of weight rows is loaded from memory once, then reused from L1/L2 by each group of
  // up to 4 rows of A. Threads take 32-row pieces as they come free: on a shared machine a thread
  // that loses its core delays the call by one piece, not by its whole share. (Each output is still
  // computed by exactly one thread in a fixed order.)
  const bool parallel = N * K >= (int64_t(1) << 16);
#pragma omp parallel for schedule(dynamic, 8) if (parallel)
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t n0 = b * RB;
    for (int64_t m0 = 0; m0 < M; m0 += 4) {
      const T* a = A + m0 * lda;
      T* c = C + m0 * ldc;
      switch (std::min<int64_t>(4, M - m0)) {
        case 1: rows_group<1>(a, lda, B, ldb, N, K, n0, c, ldc, accumulate); break;
        case 2: rows_group<2>(a, lda, B, ldb, N, K, n0, c, ldc, accumulate); break;
        case 3: rows_group<3>(a, lda, B, ldb, N, K, n0, c, ldc, accumulate); break;
        default: rows_group<4>(a, lda, B, ldb, N, K, n0, c, ldc, accumulate); break;
      }
    }
  }
}

}  // namespace

bool gemm_small_m(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
                  int64_t ldb, void* C, int64_t ldc, bool accumulate) {
  if (M < 1 || M > kSmallM || K < 1) return false;
  if (dt == DType::F32) {
    run(M, N, K, static_cast<const float*>(A), lda, static_cast<const float*>(B), ldb, static_cast<float*>(C), ldc, accumulate);
  } else {
    run(M, N, K, static_cast<const bf16*>(A), lda, static_cast<const bf16*>(B), ldb, static_cast<bf16*>(C), ldc, accumulate);
  }
  return true;
}

#else
bool gemm_small_m(DType, int64_t, int64_t, int64_t, const void*, int64_t, const void*, int64_t, void*, int64_t, bool) {
  return false;  // AVX2 and portable builds use the packed GEMM for every shape
}
#endif

}  // namespace pt
