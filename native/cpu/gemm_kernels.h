// GEMM micro-kernels and the packing that feeds them, chosen at compile time by the target ISA.
//
// Packed formats (BLIS-style). A k-slice of op(A) is cut into micro-panels of MR rows, op(B) into
// micro-panels of NR columns; inside a panel, packed row p holds one k step for all MR rows (or NR
// columns) contiguously, so the micro-kernel reads both panels strictly sequentially. Panels past
// the matrix edge are zero-padded, so the kernel always computes a full MR×NR tile.
//   PackF32: one packed row = one k, fp32 (bf16 inputs are widened while packing).
//   PackPair: one packed row = two consecutive k as a bf16 pair in one 32-bit word (low half = even
//     k), the operand layout of vdpbf16ps; an odd tail k is paired with a zero.
// Every kernel writes its tile into an fp32 workspace (stored when add is false, added otherwise);
// the driver rounds to C's dtype once, after the last k-slice.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
// AMX needs the kernel's permission for the tile state, which only Linux's arch_prctl grants.
#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512F__) && defined(__linux__)
#define POLYTUNE_GEMM_AMX 1
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "common.h"
#include "gemm_pack.h"

namespace pt {
namespace gemm_detail {

// ---------------------------------------------------------------- micro-kernels
// Out of line, so the accumulator loop gets the registers to itself: inlined into the driver, GCC
// kept the loop counter and the B pointer on the stack (a memory round trip every k step).
#define POLYTUNE_KERNEL __attribute__((noinline))
// The last, partial panel of op(A) (n < MR rows) by a kernel of the even row count at or above n:
// the padded full tile spent up to 1.2% of a 512-row product on zero rows.
template <class K, typename P>
inline void tail_dispatch(int n, int64_t kp, const P* a, const P* b, float* c, int64_t ldc, bool add) {
  switch ((n + 1) / 2) {
    case 1: return K::template rows<2>(kp, a, b, c, ldc, add);
    case 2: return K::template rows<4>(kp, a, b, c, ldc, add);
    case 3: return K::template rows<6>(kp, a, b, c, ldc, add);
    case 4: return K::template rows<8>(kp, a, b, c, ldc, add);
    case 5: return K::template rows<10>(kp, a, b, c, ldc, add);
    case 6: return K::template rows<12>(kp, a, b, c, ldc, add);
    default: return K::run(kp, a, b, c, ldc, add);
  }
}
inline void tile_out(float* c, int64_t ldc, int r, int col, float v, bool add) {
  float* q = c + r * ldc + col;
  *q = add ? *q + v : v;
}

#if defined(__AVX512F__)
// The lane operations of a dtype, shared by the packed kernels and the direct ones below: the
// broadcast of one element of the broadcast operand and the multiply-add into fp32 lanes.
struct OpsF32 {
  using P = float;
  static __m512 broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static __m512 fma(__m512 acc, __m512 a, __m512 b) { return _mm512_fmadd_ps(a, b, acc); }
};
#if defined(__AVX512BF16__)
// vdpbf16ps: each lane adds the two exact bf16×bf16 products of a pair to an fp32 accumulator. A
// pair is one 32-bit word, read through memcpy: the memory holds bf16 values, and a row of W read
// in place may start 2 bytes off a 4-byte boundary.
struct OpsPair {
  using P = uint32_t;
  static __m512 broadcast(const uint32_t* p) {
    int32_t w;
    std::memcpy(&w, p, sizeof w);
    return _mm512_castsi512_ps(_mm512_set1_epi32(w));
  }
  static __m512 fma(__m512 acc, __m512 a, __m512 b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_castps_si512(a), (__m512bh)_mm512_castps_si512(b));
  }
};
#endif

// 28 of the 32 zmm registers hold the 14×32 accumulator tile. rows<R> computes only the first R
// rows of the tile (same arithmetic per output): the last panel of a 512-row product has 8.
template <class Ops>
struct KernelPacked {
  using P = typename Ops::P;
  static constexpr int MR = 14, NR = 32;
  POLYTUNE_KERNEL static void run(int64_t kp, const P* a, const P* b, float* c, int64_t ldc, bool add) {
    rows<MR>(kp, a, b, c, ldc, add);
  }
  static void run_tail(int n, int64_t kp, const P* a, const P* b, float* c, int64_t ldc, bool add) {
    tail_dispatch<KernelPacked>(n, kp, a, b, c, ldc, add);
  }
  template <int R>
  POLYTUNE_KERNEL static void rows(int64_t kp, const P* a, const P* b, float* c, int64_t ldc, bool add) {
    __m512 acc[R][2];
#pragma GCC unroll 14
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kp; k++) {
      const __m512 b0 = _mm512_load_ps(reinterpret_cast<const float*>(b)), b1 = _mm512_load_ps(reinterpret_cast<const float*>(b + 16));
#pragma GCC unroll 14
      for (int r = 0; r < R; r++) {
        const __m512 av = Ops::broadcast(a + r);
        acc[r][0] = Ops::fma(acc[r][0], av, b0);
        acc[r][1] = Ops::fma(acc[r][1], av, b1);
      }
      a += MR;
      b += NR;
    }
#pragma GCC unroll 14
    for (int r = 0; r < R; r++) {
      float* q = c + r * ldc;
      if (add) {
        acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_load_ps(q));
        acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_load_ps(q + 16));
      }
      _mm512_store_ps(q, acc[r][0]);
      _mm512_store_ps(q + 16, acc[r][1]);
    }
  }
};
using KernelF32 = KernelPacked<OpsF32>;
#elif defined(__AVX2__) && defined(__FMA__)
// 12 of the 16 ymm registers hold the 6×16 accumulator tile.
struct KernelF32 {
  static constexpr int MR = 6, NR = 16;
  static void run_tail(int, int64_t kp, const float* a, const float* b, float* c, int64_t ldc, bool add) { run(kp, a, b, c, ldc, add); }
  POLYTUNE_KERNEL static void run(int64_t kp, const float* a, const float* b, float* c, int64_t ldc, bool add) {
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kp; k++) {
      const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
      for (int r = 0; r < MR; r++) {
        const __m256 av = _mm256_broadcast_ss(a + r);
        acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
      }
      a += MR;
      b += NR;
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      float* q = c + r * ldc;
      if (add) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_load_ps(q));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_load_ps(q + 8));
      }
      _mm256_store_ps(q, acc[r][0]);
      _mm256_store_ps(q + 8, acc[r][1]);
    }
  }
};
#else
// Portable: plain loops the compiler may vectorise.
struct KernelF32 {
  static constexpr int MR = 4, NR = 16;
  static void run_tail(int, int64_t kp, const float* a, const float* b, float* c, int64_t ldc, bool add) { run(kp, a, b, c, ldc, add); }
  POLYTUNE_KERNEL static void run(int64_t kp, const float* a, const float* b, float* c, int64_t ldc, bool add) {
    float acc[MR][NR] = {};
    for (int64_t k = 0; k < kp; k++) {
      for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) acc[r][j] += a[r] * b[j];
      a += MR;
      b += NR;
    }
    for (int r = 0; r < MR; r++)
      for (int j = 0; j < NR; j++) tile_out(c, ldc, r, j, acc[r][j], add);
  }
};
#endif

#if defined(__AVX512BF16__)
using KernelPair = KernelPacked<OpsPair>;
#endif

#if defined(POLYTUNE_PACK_AVX512)
#define POLYTUNE_GEMM_DIRECT 1
// x·Wᵀ with W read where it lies, as the broadcast operand of Cᵀ = W·xᵀ (gemm.cc): a tile of R ≤ 8
// rows of W, each read along k, by V ≤ 3 vectors of 16 rows of x (packed, 48 per panel). Eight
// rows because rows a power-of-two stride apart (a 4096-wide bf16 W: 8 KiB) fall in one 8-way L1
// set: 14 of them missed L1 on every broadcast (168 GFLOP/s against 221 for 8, one thread, 7B
// q_proj, where the packed 14×32 kernel ran at 221 on W packed beforehand). The edges get their own
// R and V: a partial tile may not read past W's last row, and a 32-wide last panel of x (512 rows)
// would otherwise compute a third of its FMAs on padding. Ops: OpsF32 or OpsPair (above).
template <class Ops>
struct KernelDirect {
  using P = typename Ops::P;
  static constexpr int MR = 8, NR = 48;
  // rows × cols of the tile (rows ≤ MR, cols ≤ NR); a's row r at a + r·lda (in P units).
  static void run(int rows, int cols, int64_t kp, const P* a, int64_t lda, const P* b, float* c, int64_t ldc, bool add) {
    switch (rows) {
      case 1: return by_cols<1>(cols, kp, a, lda, b, c, ldc, add);
      case 2: return by_cols<2>(cols, kp, a, lda, b, c, ldc, add);
      case 3: return by_cols<3>(cols, kp, a, lda, b, c, ldc, add);
      case 4: return by_cols<4>(cols, kp, a, lda, b, c, ldc, add);
      case 5: return by_cols<5>(cols, kp, a, lda, b, c, ldc, add);
      case 6: return by_cols<6>(cols, kp, a, lda, b, c, ldc, add);
      case 7: return by_cols<7>(cols, kp, a, lda, b, c, ldc, add);
      default: return by_cols<8>(cols, kp, a, lda, b, c, ldc, add);
    }
  }
  template <int R>
  static void by_cols(int cols, int64_t kp, const P* a, int64_t lda, const P* b, float* c, int64_t ldc, bool add) {
    if (cols <= 16) return tile<R, 1>(kp, a, lda, b, c, ldc, add);
    if (cols <= 32) return tile<R, 2>(kp, a, lda, b, c, ldc, add);
    tile<R, 3>(kp, a, lda, b, c, ldc, add);
  }
  template <int R, int V>
  POLYTUNE_KERNEL static void tile(int64_t kp, const P* a, int64_t lda, const P* b, float* c, int64_t ldc, bool add) {
    __m512 acc[R][V];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
      for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kp; k++) {
      __m512 bv[V];
      for (int v = 0; v < V; v++) bv[v] = _mm512_load_ps(reinterpret_cast<const float*>(b + 16 * v));
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) {
        const __m512 av = Ops::broadcast(a + r * lda);
        for (int v = 0; v < V; v++) acc[r][v] = Ops::fma(acc[r][v], av, bv[v]);
      }
      a += 1;
      b += NR;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      for (int v = 0; v < V; v++) {
        float* q = c + r * ldc + 16 * v;
        _mm512_store_ps(q, add ? _mm512_add_ps(acc[r][v], _mm512_load_ps(q)) : acc[r][v]);
      }
    }
  }
};
#endif

#if defined(POLYTUNE_GEMM_AMX)
// Packs op(A) rows [r0, r0+rows) × k [k0, k0+kc) as AMX A tiles: per 32-k chunk, W rows of 32
// consecutive bf16 (64 bytes), zero-padded in both directions.
template <int W>
void pack_amx_a(const View<bf16>& x, int64_t r0, int64_t rows, int64_t k0, int64_t kc, uint32_t* dst32) {
  bf16* dst = reinterpret_cast<bf16*>(dst32);
  const int64_t chunks = (kc + 31) / 32;
  if (!x.trans) {
    for (int64_t r = 0; r < W; r++) {
      const bf16* src = x.p + (r0 + r) * x.ld + k0;
      for (int64_t s = 0; s < chunks; s++) {
        bf16* d = dst + (s * W + r) * 32;
        const int64_t n = r < rows ? std::min<int64_t>(32, kc - 32 * s) : 0;
        if (n == 32) {  // one tile row is exactly one zmm
          _mm512_storeu_si512(d, _mm512_loadu_si512(src + 32 * s));
          continue;
        }
        if (n > 0) std::memcpy(d, src + 32 * s, size_t(n) * sizeof(bf16));
        if (n < 32) std::memset(d + n, 0, size_t(32 - n) * sizeof(bf16));
      }
    }
    return;
  }
  // op(A) rows are memory columns: interleave k pairs, then a 32-bit transpose puts each row's
  // 16 pairs (= 32 consecutive k) into one register.
  int64_t s = 0;
  if (rows == W && W % 16 == 0) {
    for (; 32 * (s + 1) <= kc; s++) {
      for (int64_t rb = 0; rb < W; rb += 16) {
        __m512 v[16];
        for (int p = 0; p < 16; p++) {
          const bf16* lo = x.p + (k0 + 32 * s + 2 * p) * x.ld + r0 + rb;
          const __m512i a = _mm512_maskz_cvtepu16_epi32(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo)));
          const __m512i b = _mm512_maskz_cvtepu16_epi32(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo + x.ld)));
          v[p] = _mm512_castsi512_ps(_mm512_or_si512(a, _mm512_maskz_slli_epi32(0xffff, b, 16)));
        }
        transpose16(v);
        for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + (s * W + rb + i) * 32, v[i]);
      }
    }
  }
  if (s == chunks) return;
  std::memset(dst + s * W * 32, 0, size_t(chunks - s) * W * 32 * sizeof(bf16));
  for (int64_t kk = 32 * s; kk < kc; kk++) {
    const bf16* src = x.p + (k0 + kk) * x.ld + r0;
    bf16* d = dst + (kk / 32) * W * 32 + kk % 32;
    for (int64_t r = 0; r < rows; r++) d[r * 32] = src[r];
  }
}

inline bool amx_available() {
  // ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA: once per process, shared by all its threads.
  static const bool ok = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  return ok;
}

// Every tile is 16 rows × 64 bytes: C 16×16 fp32, A 16 rows × 32 bf16, B 16 pair rows × 16 columns.
inline void amx_tiles_begin() {
  alignas(64) uint8_t cfg[64] = {};
  cfg[0] = 1;  // palette 1
  for (int t = 0; t < 8; t++) {
    const uint16_t colsb = 64;
    std::memcpy(cfg + 16 + 2 * t, &colsb, 2);
    cfg[48 + t] = 16;
  }
  _tile_loadconfig(cfg);
}
inline void amx_tiles_end() { _tile_release(); }

// A 32×32 fp32 tile from tdpbf16ps: tmm0-3 accumulate C, tmm4-5 hold A, tmm6-7 hold B.
struct KernelAmx {
  static constexpr int MR = 32, NR = 32;
  static void run_tail(int, int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc, bool add) { run(kp, a, b, c, ldc, add); }
  static void run(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc, bool add) {
    const int64_t cs = ldc * int64_t(sizeof(float));
    if (add) {
      _tile_loadd(0, c, cs);
      _tile_loadd(1, c + 16, cs);
      _tile_loadd(2, c + 16 * ldc, cs);
      _tile_loadd(3, c + 16 * ldc + 16, cs);
    } else {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
    }
    for (int64_t s = 0; s < kp / 16; s++) {
      const uint32_t* as = a + s * 16 * MR;
      const uint32_t* bs = b + s * 16 * NR;
      _tile_loadd(4, as, 64);
      _tile_loadd(5, as + 16 * 16, 64);
      _tile_loadd(6, bs, NR * 4);
      _tile_loadd(7, bs + 16, NR * 4);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, cs);
    _tile_stored(1, c + 16, cs);
    _tile_stored(2, c + 16 * ldc, cs);
    _tile_stored(3, c + 16 * ldc + 16, cs);
  }
};
#endif

}  // namespace gemm_detail
}  // namespace pt
