// The vdpbf16ps pieces of the CPU attention (AVX512-BF16 builds only): a register-tiled
// C (+)= A·B whose operands are bf16 pairs, and the packs that put bf16 tensors into those pairs.
// vdpbf16ps multiplies the two bf16 halves of each 32-bit lane of A and B and adds both products to
// the fp32 lane of C, so the inner (reduction) index must run along the pair: A holds
// (A[i][2p], A[i][2p+1]) in one uint32, and B holds (B[2p][n], B[2p+1][n]) in lane n of row p.
// Accumulation stays fp32; only the operands are bf16 (as FlashAttention does on GPUs).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common.h"
#include "transpose.h"

#if defined(__AVX512BF16__)
#include <immintrin.h>

namespace pt {
namespace dpbf16 {

constexpr int MR = 6, NV = 4;  // 24 accumulators + 4 B vectors + a broadcast of 32 registers

inline __m512 dp(__m512 acc, __m512i a, __m512i b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }

// C[M × NVV·16] = (add ? C : 0) + A·B over Kp pairs; A's pair (i, p) at A[i·lda + p], B's row p at
// B + p·ldb. The A broadcast folds into vdpbf16ps's memory operand.
template <int M, int NVV>
inline void tile(int64_t Kp, const uint32_t* A, int64_t lda, const uint32_t* B, int64_t ldb, float* C,
                 int64_t ldc, bool add) {
  __m512 acc[M][NVV];
  for (int i = 0; i < M; i++)
    for (int j = 0; j < NVV; j++) acc[i][j] = add ? _mm512_loadu_ps(C + i * ldc + j * 16) : _mm512_setzero_ps();
  for (int64_t p = 0; p < Kp; p++) {
    __m512i b[NVV];
    for (int j = 0; j < NVV; j++) b[j] = _mm512_loadu_si512(B + p * ldb + j * 16);
    for (int i = 0; i < M; i++) {
      const __m512i a = _mm512_set1_epi32(int32_t(A[i * lda + p]));
      for (int j = 0; j < NVV; j++) acc[i][j] = dp(acc[i][j], a, b[j]);
    }
  }
  for (int i = 0; i < M; i++)
    for (int j = 0; j < NVV; j++) _mm512_storeu_ps(C + i * ldc + j * 16, acc[i][j]);
}

template <int NVV, int M = MR>
inline void tile_rows(int m, int64_t Kp, const uint32_t* A, int64_t lda, const uint32_t* B, int64_t ldb,
                      float* C, int64_t ldc, bool add) {
  if constexpr (M > 1) {
    if (m < M) return tile_rows<NVV, M - 1>(m, Kp, A, lda, B, ldb, C, ldc, add);
  }
  tile<M, NVV>(Kp, A, lda, B, ldb, C, ldc, add);
}

template <int NVV = NV>
inline void tile_any(int m, int nv, int64_t Kp, const uint32_t* A, int64_t lda, const uint32_t* B,
                     int64_t ldb, float* C, int64_t ldc, bool add) {
  if constexpr (NVV > 1) {
    if (nv < NVV) return tile_any<NVV - 1>(m, nv, Kp, A, lda, B, ldb, C, ldc, add);
  }
  tile_rows<NVV>(m, Kp, A, lda, B, ldb, C, ldc, add);
}

inline int64_t floor16(int64_t x) { return x >= 0 ? x / 16 * 16 : -((-x + 15) / 16 * 16); }
inline int64_t ceil16(int64_t x) { return floor16(x + 15); }

// attention.cc's mm_band on pairs: K counts elements of the inner index (ceil(K/2) pairs are read,
// so an odd K's last pair must have a zero (or finite, against a zero) second half). With on_k, the
// band [a, e) of inner elements widens to whole pairs; A must be zero outside the band, so the
// widened pair only adds exact zeros.
inline void mm_band(int64_t M, int64_t N, int64_t K, const uint32_t* A, int64_t lda, const uint32_t* B,
                    int64_t ldb, float* C, int64_t ldc, bool add, bool on_k, int64_t lo_off, int64_t hi_off) {
  const int64_t Kp = (K + 1) / 2;
  for (int64_t n0 = 0; n0 < N; n0 += NV * 16) {
    const int64_t n1 = std::min<int64_t>(N, n0 + NV * 16);
    for (int64_t m0 = 0; m0 < M; m0 += MR) {
      const int m = int(std::min<int64_t>(MR, M - m0));
      const int64_t a = m0 + lo_off, e = m0 + m + hi_off;
      if (on_k) {
        const int64_t ka = std::max<int64_t>(a, 0) / 2, kb = (std::min(e, K) + 1) / 2;
        if (kb <= ka) {
          if (!add) {
            for (int i = 0; i < m; i++) std::fill(C + (m0 + i) * ldc + n0, C + (m0 + i) * ldc + n1, 0.f);
          }
          continue;
        }
        tile_any(m, int((n1 - n0) / 16), kb - ka, A + m0 * lda + ka, lda, B + ka * ldb + n0, ldb,
                 C + m0 * ldc + n0, ldc, add);
      } else {
        const int64_t ca = std::max(n0, floor16(a)), cb = std::min(n1, ceil16(e));
        if (cb <= ca) continue;
        tile_any(m, int((cb - ca) / 16), Kp, A + m0 * lda, lda, B + ca, ldb, C + m0 * ldc + ca, ldc, add);
      }
    }
  }
}

// The all-ones masked forms: the unmasked ones trip GCC 12's -Wmaybe-uninitialized.
inline __m512i zext(__m256i x) { return _mm512_maskz_cvtepu16_epi32(0xffff, x); }

inline uint32_t pair(const bf16* s, int64_t c, int64_t D) {
  return uint32_t(s[c]) | (c + 1 < D ? uint32_t(s[c + 1]) << 16 : 0u);
}

// dst[r·ld + p] = (src[r][2p], src[r][2p+1]) for r < n: rows as A operands (inner index along the row).
inline void pack_rows(const bf16* src, int64_t stride, int64_t n, int64_t D, int64_t ld, uint32_t* dst) {
  for (int64_t r = 0; r < n; r++) {
    const bf16* s = src + r * stride;
    uint32_t* o = dst + r * ld;
    if (D % 2 == 0) {
      std::memcpy(o, s, size_t(D) * 2);
    } else {
      for (int64_t c = 0; c < D; c += 2) o[c / 2] = pair(s, c, D);
    }
  }
}

// dst[p·ld + r] = (src[r][2p], src[r][2p+1]) for r < n, columns n..w zeroed: the transpose, as a B
// operand whose inner index runs along src's rows (Kᵀ for S = Q·Kᵀ).
inline void pack_cols(const bf16* src, int64_t stride, int64_t n, int64_t D, int64_t ld, int64_t w, uint32_t* dst) {
  const int64_t Dh = (D + 1) / 2;
  for (int64_t p = 0; p < Dh; p++) std::fill(dst + p * ld + n, dst + p * ld + w, 0u);
  int64_t r = 0;
  if (D % 2 == 0) {
    // 16 rows × 16 pairs at a time through a register transpose: a vpgatherdd per pair (the
    // earlier form) took 14% of the bf16 backward (T 1024, D 128), which packs Qᵀ, dOᵀ, Kᵀ and Vᵀ here.
    for (; r + 16 <= n; r += 16) {
      for (int64_t p = 0; p < Dh; p += 16) {
        const __mmask16 m = Dh - p >= 16 ? __mmask16(0xffff) : __mmask16((1u << (Dh - p)) - 1);
        __m512 v[16];
        for (int i = 0; i < 16; i++) v[i] = _mm512_maskz_loadu_ps(m, src + (r + i) * stride + 2 * p);
        transpose16(v);
        for (int64_t j = 0; j < std::min<int64_t>(16, Dh - p); j++) _mm512_storeu_ps(dst + (p + j) * ld + r, v[j]);
      }
    }
  }
  for (; r < n; r++) {
    const bf16* s = src + r * stride;
    for (int64_t p = 0; p < Dh; p++) dst[p * ld + r] = pair(s, 2 * p, D);
  }
}

// dst[c·ld + d] = (src[2c][d], src[2c+1][d]) for 2c < n (a missing odd row reads as 0), d < D;
// columns D..ld zeroed: a B operand whose inner index runs down src's rows (V for O += P·V).
inline void pack_interleave(const bf16* src, int64_t stride, int64_t n, int64_t D, int64_t ld, uint32_t* dst) {
  for (int64_t c = 0; 2 * c < n; c++) {
    const bf16* s0 = src + 2 * c * stride;
    const bf16* s1 = 2 * c + 1 < n ? s0 + stride : nullptr;
    uint32_t* o = dst + c * ld;
    for (int64_t d = 0; d < ld; d += 16) {
      const __mmask16 mk = d + 16 <= D ? __mmask16(0xffff) : d < D ? __mmask16((1u << (D - d)) - 1) : __mmask16(0);
      const __m512i lo = zext(_mm256_maskz_loadu_epi16(mk, s0 + d));
      const __m512i hi = s1 ? zext(_mm256_maskz_loadu_epi16(mk, s1 + d)) : _mm512_setzero_si512();
      _mm512_storeu_si512(o + d, _mm512_or_si512(lo, _mm512_maskz_slli_epi32(0xffff, hi, 16)));
    }
  }
}

// Rounds 16 fp32 lanes to bf16 (nearest even, as f32_to_bf16) into dst, and returns the rounded values.
inline __m512 round_store(__m512 x, bf16* dst) {
  const __m256i h = (__m256i)_mm512_cvtneps_pbh(x);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), h);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, zext(h), 16));
}

// dst[c] = bf16(src[c]·mul) for c < D, rounded to nearest even as f32_to_bf16 does.
inline void store_rounded(const float* src, int64_t D, float mul, bf16* dst) {
  const __m512 vm = _mm512_set1_ps(mul);
  for (int64_t c = 0; c < D; c += 16) {
    const __mmask16 mk = c + 16 <= D ? __mmask16(0xffff) : __mmask16((1u << (D - c)) - 1);
    const __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, src + c), vm));
    _mm256_mask_storeu_epi16(dst + c, mk, h);
  }
}

}  // namespace dpbf16
}  // namespace pt
#endif
