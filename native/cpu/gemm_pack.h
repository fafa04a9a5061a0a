// Packing of op(A) and op(B) into the micro-panels the GEMM micro-kernels read (formats in
// gemm_kernels.h). A panel is W "rows" (op(A) rows, or op(B) columns) by kc k steps; packed row kk
// holds the W values of one k (one bf16 pair for the pair format) contiguously, rows past the
// matrix edge as zeros.
//
// Each source layout is one of two cases: the W values of one k are contiguous in memory (a copy,
// or an interleave of two memory rows for pairs), or each of the W rows is contiguous in k (a
// transpose). With AVX-512 both are done 16 rows at a time with masked loads and stores, so a
// panel width that is not a multiple of 16 (the 14-row A panel), an edge panel or a k tail costs
// the same vector code as a full block; other builds use the scalar loops at the end.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define POLYTUNE_PACK_AVX512 1
#endif

#include "common.h"
#include "transpose.h"

namespace pt {
namespace gemm_detail {

template <typename T>
struct View {
  const T* p;
  int64_t ld;
  bool trans;  // op(X)[r][c] = trans ? X[c][r] : X[r][c]
  float at(int64_t r, int64_t c) const { return load(p, trans ? c * ld + r : r * ld + c); }
  const T* addr(int64_t r, int64_t c) const { return p + (trans ? c * ld + r : r * ld + c); }
};

#if defined(POLYTUNE_PACK_AVX512)
// The first n (clamped to [0, 16]) of 16 lanes.
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}
inline __mmask32 first_halves(int64_t n) {
  return n >= 32 ? __mmask32(0xffffffffu) : n <= 0 ? __mmask32(0) : __mmask32((1u << n) - 1);
}
// Lanes past the mask read as zero and are not touched in memory (no fault past an edge).
inline __m512 load16_f32(const float* s, __mmask16 m) { return _mm512_maskz_loadu_ps(m, s); }
inline __m512 load16_f32(const bf16* s, __mmask16 m) {
  const __m512i w = _mm512_maskz_cvtepu16_epi32(0xffff, _mm256_maskz_loadu_epi16(m, s));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, w, 16));
}
// 16 bf16 of each of two memory rows (k and k+1) as 16 pairs, low half = row k.
inline __m512i load16_pairs(const bf16* lo, const bf16* hi, __mmask16 m) {
  const __m512i a = _mm512_maskz_cvtepu16_epi32(0xffff, _mm256_maskz_loadu_epi16(m, lo));
  if (!hi) return a;
  const __m512i b = _mm512_maskz_cvtepu16_epi32(0xffff, _mm256_maskz_loadu_epi16(m, hi));
  return _mm512_or_si512(a, _mm512_maskz_slli_epi32(0xffff, b, 16));
}

// Transposes `rows` rows of `units` 32-bit units into consecutive slices of slice_units units
// (a multiple of 16; the last slice may be shorter): unit u of row i goes to
// dst(s)[(u - s*slice_units)*W + i], s = u / slice_units. load(i, u0, n) gives row i's units
// [u0, u0+n) as 16 lanes, zeros past n. Each group of 16 rows is read over all its units before
// the next: 16 long sequential streams, where slice by slice they restarted every slice.
template <int W, class Dst, class Load>
inline void transpose_rows(int64_t rows, int64_t units, int64_t slice_units, Dst dst, Load load) {
  for (int rb = 0; rb < W; rb += 16) {
    const int64_t nr = std::min<int64_t>(16, rows - rb);
    const __mmask16 out = first_lanes(W - rb);
    for (int64_t u = 0; u < units; u += 16) {
      const int64_t nu = std::min<int64_t>(16, units - u);
      __m512 v[16];
      if (nr == 16) {  // the common case unrolled, without a test per row
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) v[i] = load(rb + i, u, nu);
      } else {
        for (int i = 0; i < 16; i++) v[i] = i < nr ? load(rb + i, u, nu) : _mm512_setzero_ps();
      }
      transpose16(v);
      float* const d = dst(u / slice_units) + (u % slice_units) * W + rb;
      if (nu == 16 && W - rb >= 16) {
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) _mm512_storeu_ps(d + i * W, v[i]);
      } else {
        for (int64_t i = 0; i < nu; i++) _mm512_mask_storeu_ps(d + i * W, out, v[i]);
      }
    }
  }
}
#endif

// ---------------------------------------------------------------- fp32 packing
// Packs rows [r0, r0+rows) × k [k0, k0+kc) of op(X) into a W-wide panel: dst[kk*W + r].
// "rows" are op(A) rows for A, op(B) columns for B (the caller passes B as its transpose view).
// The _slices form packs k [k0, k0+kc) as consecutive slices of slice_k (a multiple of 16; the last
// may be shorter), slice s into dst(s).
template <int W, typename T, class Dst>
void pack_f32_panel_slices(const View<T>& x, int64_t r0, int64_t rows, int64_t k0, int64_t kc, int64_t slice_k, Dst dst) {
#if defined(POLYTUNE_PACK_AVX512)
  if (!x.trans) {
    transpose_rows<W>(rows, kc, slice_k, dst, [&](int64_t i, int64_t u, int64_t n) {
      return load16_f32(x.p + (r0 + i) * x.ld + k0 + u, first_lanes(n));
    });
    return;
  }
#endif
  for (int64_t s = 0; s * slice_k < kc; s++) {
    const int64_t ks = k0 + s * slice_k, n = std::min(slice_k, kc - s * slice_k);
    float* const d = dst(s);
#if defined(POLYTUNE_PACK_AVX512)
    for (int64_t kk = 0; kk < n; kk++) {
      const T* src = x.p + (ks + kk) * x.ld + r0;
      for (int rb = 0; rb < W; rb += 16)
        _mm512_mask_storeu_ps(d + kk * W + rb, first_lanes(W - rb), load16_f32(src + rb, first_lanes(rows - rb)));
    }
#else
    if (x.trans) {
      for (int64_t kk = 0; kk < n; kk++) {
        const T* src = x.p + (ks + kk) * x.ld + r0;
        int64_t r = 0;
        for (; r < rows; r++) d[kk * W + r] = load(src, r);
        for (; r < W; r++) d[kk * W + r] = 0.f;
      }
      continue;
    }
    for (int64_t r = 0; r < rows; r++) {
      const T* src = x.p + (r0 + r) * x.ld + ks;
      for (int64_t kk = 0; kk < n; kk++) d[kk * W + r] = load(src, kk);
    }
    for (int64_t r = rows; r < W; r++)
      for (int64_t kk = 0; kk < n; kk++) d[kk * W + r] = 0.f;
#endif
  }
}
template <int W, typename T>
void pack_f32_panel(const View<T>& x, int64_t r0, int64_t rows, int64_t k0, int64_t kc, float* dst) {
  pack_f32_panel_slices<W>(x, r0, rows, k0, kc, kc, [&](int64_t) { return dst; });
}

// ---------------------------------------------------------------- bf16 pair packing
// Packed row p holds k0+2p (low half) and k0+2p+1 (high half; zero past kc) for the W rows.
// The _slices form as for fp32 (slice_k a multiple of 32, so no pair straddles two slices).
template <int W, class Dst>
void pack_pair_panel_slices(const View<bf16>& x, int64_t r0, int64_t rows, int64_t k0, int64_t kc, int64_t slice_k, Dst dst) {
#if defined(POLYTUNE_PACK_AVX512)
  if (!x.trans) {
    // A row's pairs are contiguous: a 32-bit transpose; an odd tail's high half is loaded as zero.
    transpose_rows<W>(rows, (kc + 1) / 2, slice_k / 2, [&](int64_t s) { return reinterpret_cast<float*>(dst(s)); },
                      [&](int64_t i, int64_t u, int64_t) {
                        const bf16* p = x.p + (r0 + i) * x.ld + k0 + 2 * u;
                        return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(first_halves(kc - 2 * u), p));
                      });
    return;
  }
#endif
  for (int64_t s = 0; s * slice_k < kc; s++) {
    const int64_t ks = k0 + s * slice_k, n = std::min(slice_k, kc - s * slice_k), kp = (n + 1) / 2;
    uint32_t* const d = dst(s);
#if defined(POLYTUNE_PACK_AVX512)
    for (int64_t p = 0; p < kp; p++) {
      const bf16* lo = x.p + (ks + 2 * p) * x.ld + r0;
      const bf16* hi = 2 * p + 1 < n ? lo + x.ld : nullptr;
      for (int rb = 0; rb < W; rb += 16)
        _mm512_mask_storeu_epi32(d + p * W + rb, first_lanes(W - rb), load16_pairs(lo + rb, hi ? hi + rb : nullptr, first_lanes(rows - rb)));
    }
#else
    const int64_t full = n / 2;
    if (x.trans) {
      for (int64_t p = 0; p < kp; p++) {
        const bf16* lo = x.p + (ks + 2 * p) * x.ld + r0;
        const bf16* hi = 2 * p + 1 < n ? lo + x.ld : nullptr;
        int64_t r = 0;
        for (; r < rows; r++) d[p * W + r] = uint32_t(lo[r]) | (hi ? uint32_t(hi[r]) << 16 : 0u);
        for (; r < W; r++) d[p * W + r] = 0u;
      }
      continue;
    }
    for (int64_t r = 0; r < rows; r++) {
      const bf16* src = x.p + (r0 + r) * x.ld + ks;
      for (int64_t p = 0; p < full; p++) {
        uint32_t u;
        std::memcpy(&u, src + 2 * p, 4);
        d[p * W + r] = u;
      }
      if (n & 1) d[full * W + r] = src[n - 1];
    }
    for (int64_t r = rows; r < W; r++)
      for (int64_t p = 0; p < kp; p++) d[p * W + r] = 0u;
#endif
  }
}
// Up to `rows` rows as consecutive W-wide panels of one slice, panel g at dst + g * stride. Where
// a k's values are contiguous in memory (x.trans: B of dY·W, a [K, N] matrix), each memory row is
// read across all the panels at once: a panel at a time read 64 bytes of each of K rows 8 KiB
// apart, a new 4 KiB page per read, more pages than the TLB holds (2x slower on the 7B shapes).
// `stream`: full 64-byte pieces go out with non-temporal stores (the packing is larger than the
// cache and is read back much later).
template <int W>
void pack_pair_panels(const View<bf16>& x, int64_t r0, int64_t rows, int64_t k0, int64_t kc, uint32_t* dst, int64_t stride,
                      bool stream = false);
template <int W>
void pack_pair_panel(const View<bf16>& x, int64_t r0, int64_t rows, int64_t k0, int64_t kc, uint32_t* dst) {
  // One slice: kc + 1 keeps an odd kc's last pair in it.
  pack_pair_panel_slices<W>(x, r0, rows, k0, kc, kc + 1, [&](int64_t) { return dst; });
}

template <int W>
void pack_pair_panels(const View<bf16>& x, int64_t r0, int64_t rows, int64_t k0, int64_t kc, uint32_t* dst, int64_t stride,
                      bool stream) {
  const int64_t panels = (rows + W - 1) / W;
#if defined(POLYTUNE_PACK_AVX512)
  if (x.trans) {
    stream = stream && W % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 64 == 0 && stride % 16 == 0;
    for (int64_t p = 0; p < (kc + 1) / 2; p++) {
      const bf16* lo = x.p + (k0 + 2 * p) * x.ld + r0;
      const bf16* hi = 2 * p + 1 < kc ? lo + x.ld : nullptr;
      for (int64_t g = 0; g < panels; g++)
        for (int rb = 0; rb < W; rb += 16) {
          const int64_t c = g * W + rb;
          const __m512i v = load16_pairs(lo + c, hi ? hi + c : nullptr, first_lanes(rows - c));
          uint32_t* const d = dst + g * stride + p * W + rb;
          if (stream)
            _mm512_stream_si512(reinterpret_cast<__m512i*>(d), v);
          else
            _mm512_mask_storeu_epi32(d, first_lanes(W - rb), v);
        }
    }
    return;
  }
#endif
  for (int64_t g = 0; g < panels; g++) pack_pair_panel<W>(x, r0 + g * W, std::min<int64_t>(W, rows - g * W), k0, kc, dst + g * stride);
}
template <int W, typename T>
void pack_f32_panels(const View<T>& x, int64_t r0, int64_t rows, int64_t k0, int64_t kc, float* dst, int64_t stride,
                     bool stream = false) {
  const int64_t panels = (rows + W - 1) / W;
#if defined(POLYTUNE_PACK_AVX512)
  if (x.trans) {
    stream = stream && W % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 64 == 0 && stride % 16 == 0;
    for (int64_t kk = 0; kk < kc; kk++) {
      const T* src = x.p + (k0 + kk) * x.ld + r0;
      for (int64_t g = 0; g < panels; g++)
        for (int rb = 0; rb < W; rb += 16) {
          const __m512 v = load16_f32(src + g * W + rb, first_lanes(rows - g * W - rb));
          float* const d = dst + g * stride + kk * W + rb;
          if (stream)
            _mm512_stream_ps(d, v);
          else
            _mm512_mask_storeu_ps(d, first_lanes(W - rb), v);
        }
    }
    return;
  }
#endif
  for (int64_t g = 0; g < panels; g++) pack_f32_panel<W>(x, r0 + g * W, std::min<int64_t>(W, rows - g * W), k0, kc, dst + g * stride);
}

}  // namespace gemm_detail
}  // namespace pt
