// Fused causal attention on the CPU. Work happens on fp32 tiles (RQ queries × BK keys, or RK keys ×
// BQ queries) in per-thread scratch, a few tiles per thread, never a T×T matrix.
//   forward: one task per (batch, query head, RQ queries); for each BK-key block it can see:
//     S = Q·Kᵀ, the online-softmax update of (running max m, running sum l, O), then O += P·V.
//   backward: pass 1, one task per (batch, kv head, RK keys): loops over the query heads sharing
//     that kv head and the BQ-query blocks that see it, dV += Pᵀ·dO and dK += dSᵀ·Q; pass 2, one
//     task per (batch, query head, RQ queries): dQ += dS·K over its BK-key blocks. Each accumulator thus
//     belongs to exactly one task, so threads never race and GQA sums stay in fp32 until the one
//     rounding. The price is recomputing S and dP in pass 2 (7 tile products instead of 5);
//     the alternative, a per-thread fp32 copy of dq, costs T·Hq·D·4 bytes per thread plus a
//     reduction, and per-(batch, kv head) tasks would leave cores idle for small batches.
// Every product runs through one register-tiled micro-kernel, C (+)= A·B with A read as scalars
// and B as vectors, so each operand is packed in the layout its role needs (Kᵀ for S = Q·Kᵀ, ...).
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#include "attention_dpbf16.h"

namespace pt {
namespace {

// SIMD width and register tile (MR rows × NV vectors of accumulators) by ISA: AVX-512 has 32 vector
// registers (6×4 accumulators + 4 B vectors + a broadcast), AVX2 and SSE have 16 (6×2 + 2 + 1).
// GCC/Clang generic vectors let one source compile to each of them.
#if defined(__AVX512F__)
#define PT_ATTN_W 16
constexpr int MR = 6, NV = 4;
#elif defined(__AVX__)
#define PT_ATTN_W 8
constexpr int MR = 6, NV = 2;
#else
#define PT_ATTN_W 4
constexpr int MR = 6, NV = 2;
#endif
constexpr int W = PT_ATTN_W;
typedef float V __attribute__((vector_size(PT_ATTN_W * 4)));
typedef int32_t VI __attribute__((vector_size(PT_ATTN_W * 4)));
typedef float VU __attribute__((vector_size(PT_ATTN_W * 4), aligned(4), may_alias));
typedef int32_t VIU __attribute__((vector_size(PT_ATTN_W * 4), aligned(4), may_alias));

// A tile is RQ query rows × BK key columns (forward, dq) or RK key rows × BQ query columns (dk, dv);
// a task owns one row span and sweeps the columns, so the operands packed per column tile are
// amortised over all its rows. A 128×64 fp32 tile is 32 KiB: a task's tiles stay in L2.
constexpr int64_t BQ = 64, BK = 64, RQ = 128, RK = 128;
static_assert(BQ % W == 0 && BK % W == 0, "tiles must be whole vectors");

inline V ld(const float* p) { return *reinterpret_cast<const VU*>(p); }
inline void st(float* p, V x) { *reinterpret_cast<VU*>(p) = x; }
inline VI ldi(const int32_t* p) { return *reinterpret_cast<const VIU*>(p); }
inline V splat(float s) { return V{} + s; }
inline VI splati(int32_t s) { return VI{} + s; }

// a·b + c with one rounding where the ISA has it; not left to -ffp-contract, which ISO -std=c++17 disables.
inline V vfma(V a, V b, V c) {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(a, b, c);
#elif defined(__FMA__)
  return _mm256_fmadd_ps(a, b, c);
#else
  return a * b + c;
#endif
}

inline VI iota() {
  VI v{};
  for (int i = 0; i < W; i++) v[i] = i;
  return v;
}

// Horizontal sum and max, once per softmax row. On AVX-512 a shuffle tree (log2 16 steps) replaces
// 16 lane extracts. All-ones masked shuffles: the unmasked forms trip GCC 12's -Wmaybe-uninitialized.
template <typename Op>
inline float reduce(V x, Op op) {
#if defined(__AVX512F__)
  constexpr __mmask16 all = 0xffff;
  x = op(x, _mm512_mask_shuffle_f32x4(x, all, x, x, _MM_SHUFFLE(1, 0, 3, 2)));
  x = op(x, _mm512_mask_shuffle_f32x4(x, all, x, x, _MM_SHUFFLE(2, 3, 0, 1)));
  x = op(x, _mm512_mask_permute_ps(x, all, x, _MM_SHUFFLE(1, 0, 3, 2)));
  x = op(x, _mm512_mask_permute_ps(x, all, x, _MM_SHUFFLE(2, 3, 0, 1)));
  return x[0];
#else
  V r = x;
  for (int i = 1; i < W; i++) r = op(r, splat(x[i]));
  return r[0];
#endif
}

inline float hsum(V x) {
  return reduce(x, [](V a, V b) { return a + b; });
}

inline float hmax(V x) {
  return reduce(x, [](V a, V b) { return a > b ? a : b; });
}

// exp for the softmax (libm's expf does not vectorise without -ffast-math): Cephes' expf,
// 2^n · p(r) with |r| <= ln2/2, within about 1 ulp. Arguments here are <= ~0 (scores minus their max
// or their log-sum-exp); below -86 the result (< 5e-38, negligible beside the row's largest term 1)
// is flushed to 0 so the 2^n scaling never leaves the normal range. NaN stays NaN.
__attribute__((always_inline)) inline V vexp(V x) {
  const V lo = splat(-86.f), hi = splat(88.f);
  const VI under = x < lo;
  V c = x < lo ? lo : x;
  c = c > hi ? hi : c;
  const V magic = splat(12582912.f);  // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits
  const V t = vfma(c, splat(1.44269504088896341f), magic);
  const V n = t - magic;
  const VI ni = (VI)t - (VI)magic;
  V r = vfma(n, splat(-0.693359375f), c);
  r = vfma(n, splat(2.12194440e-4f), r);
  V p = splat(1.9875691500e-4f);
  p = vfma(p, r, splat(1.3981999507e-3f));
  p = vfma(p, r, splat(8.3334519073e-3f));
  p = vfma(p, r, splat(4.1665795894e-2f));
  p = vfma(p, r, splat(1.6666665459e-1f));
  p = vfma(p, r, splat(5.0000001201e-1f));
  const V y = vfma(p, r * r, r) + splat(1.f);
  V e = (V)((VI)y + (ni << 23));
  e = under ? V{} : e;
  return x != x ? x : e;
}

// ---------------------------------------------------------------- C (+)= A·B on fp32 tiles

// C[M × NVV·W] = (add ? C : 0) + A[M × K]·B[K × NVV·W], all row-major; accumulators stay in registers.
template <int M, int NVV>
inline void tile(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                 int64_t ldc, bool add) {
  V acc[M][NVV];
  for (int i = 0; i < M; i++)
    for (int j = 0; j < NVV; j++) acc[i][j] = add ? ld(C + i * ldc + j * W) : V{};
  for (int64_t k = 0; k < K; k++) {
    V b[NVV];
    for (int j = 0; j < NVV; j++) b[j] = ld(B + k * ldb + j * W);
    for (int i = 0; i < M; i++) {
      const V a = splat(A[i * lda + k]);
      for (int j = 0; j < NVV; j++) acc[i][j] = vfma(a, b[j], acc[i][j]);
    }
  }
  for (int i = 0; i < M; i++)
    for (int j = 0; j < NVV; j++) st(C + i * ldc + j * W, acc[i][j]);
}

template <int NVV, int M = MR>
inline void tile_rows(int m, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                      float* C, int64_t ldc, bool add) {
  if constexpr (M > 1) {
    if (m < M) return tile_rows<NVV, M - 1>(m, K, A, lda, B, ldb, C, ldc, add);
  }
  tile<M, NVV>(K, A, lda, B, ldb, C, ldc, add);
}

template <int NVV = NV>
inline void tile_any(int m, int nv, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, float* C, int64_t ldc, bool add) {
  if constexpr (NVV > 1) {
    if (nv < NVV) return tile_any<NVV - 1>(m, nv, K, A, lda, B, ldb, C, ldc, add);
  }
  tile_rows<NVV>(m, K, A, lda, B, ldb, C, ldc, add);
}

// No band limit (see mm_band).
constexpr int64_t NOLIM = int64_t(1) << 40;

inline int64_t floor_w(int64_t x) { return x >= 0 ? x / W * W : -((-x + W - 1) / W * W); }
inline int64_t ceil_w(int64_t x) { return floor_w(x + W - 1); }

// mm for a band: row i needs only the indices [i + lo_off, i + hi_off] of one dimension, the
// columns of C (on_k false; they are rounded out to whole vectors, and the rest of the row is left
// as it was) or the inner dimension (on_k true; A must be zero outside the band there, and the
// skipped terms are exactly those zero products). N is a multiple of W. Column panels outermost so
// one panel of B stays in L1 while the rows of A stream past it. Each element of C is one fma chain
// in inner-index order, so leaving out the band's zero terms leaves it as the full product has it.
void mm_band(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
             float* C, int64_t ldc, bool add, bool on_k, int64_t lo_off, int64_t hi_off) {
  for (int64_t n0 = 0; n0 < N; n0 += NV * W) {
    const int64_t n1 = std::min<int64_t>(N, n0 + NV * W);
    for (int64_t m0 = 0; m0 < M; m0 += MR) {
      const int m = int(std::min<int64_t>(MR, M - m0));
      const int64_t a = m0 + lo_off, e = m0 + m + hi_off;  // the band of the group's rows: [a, e)
      if (on_k) {
        const int64_t ka = std::max<int64_t>(a, 0), kb = std::min<int64_t>(e, K);
        if (kb <= ka) {
          if (!add) {
            for (int i = 0; i < m; i++) std::fill(C + (m0 + i) * ldc + n0, C + (m0 + i) * ldc + n1, 0.f);
          }
          continue;
        }
        tile_any(m, int((n1 - n0) / W), kb - ka, A + m0 * lda + ka, lda, B + ka * ldb + n0, ldb,
                 C + m0 * ldc + n0, ldc, add);
      } else {
        const int64_t ca = std::max(n0, floor_w(a)), cb = std::min(n1, ceil_w(e));
        if (cb <= ca) continue;
        tile_any(m, int((cb - ca) / W), K, A + m0 * lda, lda, B + ca, ldb, C + m0 * ldc + ca, ldc, add);
      }
    }
  }
}

// ---------------------------------------------------------------- packing into fp32 scratch

// dst[r][c] = src[r·stride + c] for r < n, c < D; columns D..ld are zeroed.
template <typename T>
void pack_rows(const T* src, int64_t stride, int64_t n, int64_t D, int64_t ld, float* dst) {
  for (int64_t r = 0; r < n; r++) {
    const T* s = src + r * stride;
    float* o = dst + r * ld;
    for (int64_t c = 0; c < D; c++) o[c] = load(s, c);
    for (int64_t c = D; c < ld; c++) o[c] = 0.f;
  }
}

// dst[c][r] = src[r·stride + c] for r < n, c < D (the transpose); columns n..w are zeroed.
template <typename T>
void pack_cols(const T* src, int64_t stride, int64_t n, int64_t D, int64_t ld, int64_t w, float* dst) {
  for (int64_t c = 0; c < D; c++) std::fill(dst + c * ld + n, dst + c * ld + w, 0.f);
  for (int64_t r = 0; r < n; r++) {
    const T* s = src + r * stride;
    for (int64_t c = 0; c < D; c++) dst[c * ld + r] = load(s, c);
  }
}

// dst[r·stride + c] = acc[r·ld + c]·mul, rounded once to T.
template <typename T>
void unpack_rows(const float* acc, int64_t ld, int64_t n, int64_t D, float mul, T* dst, int64_t stride) {
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = 0; c < D; c++) store(dst + r * stride, c, acc[r * ld + c] * mul);
}

// ---------------------------------------------------------------- shapes, masks, scratch

struct Dims {
  int64_t B, Tq, Tk, Hq, Hkv, D;
  int64_t G() const { return Hq / Hkv; }
  int64_t Dp() const { return (D + W - 1) / W * W; }  // D rounded up to whole vectors
};

[[noreturn]] void fail(const char* op, const std::string& msg) { throw OpError(std::string(op) + ": " + msg); }

float check(const char* op, DType dt, const Dims& d, float scale) {
  if (dt != DType::BF16 && dt != DType::F32) fail(op, std::string("dtype ") + dtype_name(dt) + " is not supported (bf16 or f32)");
  const std::string dims = "B=" + std::to_string(d.B) + " Tq=" + std::to_string(d.Tq) + " Tk=" +
                           std::to_string(d.Tk) + " Hq=" + std::to_string(d.Hq) + " Hkv=" +
                           std::to_string(d.Hkv) + " D=" + std::to_string(d.D);
  if (d.B < 0 || d.Tq < 0 || d.Tk < 0 || d.Hq < 1 || d.Hkv < 1 || d.D < 1) fail(op, "bad sizes " + dims);
  if (d.Hq % d.Hkv) fail(op, "kv heads must divide query heads: " + dims);
  if (d.Tq > d.Tk) fail(op, "more queries than keys: " + dims);
  if (d.Tk > std::numeric_limits<int32_t>::max()) fail(op, "sequence too long: " + dims);
  if (!std::isfinite(scale)) fail(op, "scale must be finite, got " + std::to_string(scale));
  return scale == 0.f ? 1.f / std::sqrt(float(d.D)) : scale;
}

// First key each query may see, [B, Tq]: the start of its document (0 without cu_seqlens). The last
// is its own position Tk - Tq + i, so every query sees at least one key. Because documents are
// contiguous runs, what a query sees is one interval, and these starts never decrease along a row.
// The offsets are the Batch's, validated on the host before upload; what is checked here is only
// what keeps the kernels inside their rows.
std::vector<int32_t> first_keys(const char* op, const Dims& d, const int32_t* cu, int64_t docs) {
  std::vector<int32_t> lo(size_t(d.B * d.Tq), 0);
  if (!cu) return lo;
  const int64_t total = d.B * d.Tk;
  if (docs < 1 || cu[0] != 0 || cu[docs] != total) {
    fail(op, "cu_seqlens must run from 0 to B·Tk = " + std::to_string(total) + " over " + std::to_string(docs) +
                 " documents, got " + std::to_string(docs < 0 ? 0 : cu[0]) + " .. " + std::to_string(docs < 0 ? 0 : cu[docs]));
  }
  std::vector<int32_t> start(static_cast<size_t>(total));
  for (int64_t i = 0; i < docs; i++) {
    const int64_t a = cu[i], e = cu[i + 1];
    if (e < a) fail(op, "cu_seqlens decreases at document " + std::to_string(i) + " (" + std::to_string(a) + " then " + std::to_string(e) + ")");
    if (e > a && a / d.Tk != (e - 1) / d.Tk) {
      fail(op, "document " + std::to_string(i) + " [" + std::to_string(a) + ", " + std::to_string(e) + ") crosses a row of " +
                   std::to_string(d.Tk) + " positions");
    }
    for (int64_t p = a; p < e; p++) start[size_t(p)] = int32_t(a % d.Tk);
  }
  for (int64_t b = 0; b < d.B; b++) {
    for (int64_t i = 0; i < d.Tq; i++) lo[size_t(b * d.Tq + i)] = start[size_t(b * d.Tk + d.Tk - d.Tq + i)];
  }
  return lo;
}

// Carves a task's buffers, each 64-byte aligned, out of its thread's scratch. With a null base it
// only counts, which sizes the scratch from the same code that lays it out.
struct Carve {
  float* base;
  int64_t used = 0;
  float* take(int64_t n) {
    float* r = base ? base + used : nullptr;
    used += (n + 15) / 16 * 16;
    return r;
  }
};

// One fp32 scratch area per thread for task buffers Bufs, allocated before the parallel region so
// that failure is an OpError rather than an exception escaping OpenMP.
template <typename Bufs>
struct Scratch {
  std::vector<float> buf;
  int64_t per_thread;
  Scratch(const char* op, const Dims& d) {
    Carve probe{nullptr};
    (void)Bufs(probe, d);
    per_thread = probe.used;
    const int64_t n = per_thread * num_threads() + 16;
    try {
      buf.resize(size_t(n));
    } catch (const std::bad_alloc&) {
      fail(op, "cannot allocate " + std::to_string(n * 4) + " bytes of scratch");
    }
  }
  Bufs mine(const Dims& d) {
    float* base = buf.data() + (16 - reinterpret_cast<uintptr_t>(buf.data()) / 4 % 16) % 16;
#ifdef _OPENMP
    base += per_thread * omp_get_thread_num();
#endif
    Carve cv{base};
    return Bufs(cv, d);
  }
};

// ---------------------------------------------------------------- forward

// Online-softmax update of one query row against one key block. s holds the row's raw scores for keys
// k0..k0+BK and is overwritten, on columns [c0, c1), with the unnormalised probabilities
// exp(s·scale - m); keys outside [lo, hi] get 0. Only the whole vectors that can hold a key in
// [lo, hi] are read: the others would only add -inf to the max and 0 to the sum. m and l are the
// running max and sum, o the row's output accumulator (Dp floats).
void softmax_row(float* s, int64_t k0, int64_t c0, int64_t c1, int32_t lo, int32_t hi, float scale,
                 float& m, float& l, float* o, int64_t Dp) {
  const int64_t ca = std::max(c0, floor_w(lo - k0)), cb = std::min(c1, ceil_w(hi - k0 + 1));
  const VI idx0 = iota() + int32_t(k0);
  const VI vlo = splati(lo), vhi = splati(hi);
  const V ninf = splat(-std::numeric_limits<float>::infinity());
  V vmax = ninf;
  VI vnan{};
  for (int64_t c = ca; c < cb; c += W) {
    const VI j = idx0 + int32_t(c);
    const V x = (j >= vlo && j <= vhi) ? ld(s + c) * scale : ninf;
    vmax = x > vmax ? x : vmax;
    vnan |= (x != x);
  }
  float m_new = std::max(m, hmax(vmax));
  // A NaN score must poison the row, as it does in a plain softmax; comparisons alone would drop it.
  for (int i = 0; i < W; i++) {
    if (vnan[i]) m_new = std::numeric_limits<float>::quiet_NaN();
  }
  if (m_new == -std::numeric_limits<float>::infinity()) {  // no visible key in this block
    std::fill(s + c0, s + c1, 0.f);
    return;
  }
  std::fill(s + c0, s + std::max(c0, ca), 0.f);
  std::fill(s + std::max(ca, cb), s + c1, 0.f);
  const V vm = splat(m_new);
  V sum{};
  for (int64_t c = ca; c < cb; c += W) {
    const VI j = idx0 + int32_t(c);
    const V p = (j >= vlo && j <= vhi) ? vexp(ld(s + c) * scale - vm) : V{};
    st(s + c, p);
    sum += p;
  }
  // 0 on the first visible block, where m is -inf; the max rarely moves once many keys are seen.
  const float corr = m_new == m ? 1.f : std::exp(m - m_new);
  l = l * corr + hsum(sum);
  m = m_new;
  if (corr != 1.f) {
    const V vc = splat(corr);
    for (int64_t c = 0; c < Dp; c += W) st(o + c, ld(o + c) * vc);
  }
}

// A task's rows split into runs with one first key, i.e. one document each: [r, end) of n rows.
inline int64_t run_end(const int32_t* lo, int64_t r, int64_t n) {
  int64_t e = r + 1;
  while (e < n && lo[e] == lo[r]) e++;
  return e;
}

struct ForwardBufs {
  float* Qp;  // A of S = Q·Kᵀ
  float* Kt;  // B of S
  float* Vp;  // B of O += P·V
  float* S;   // scores, then probabilities
  float* O;
  float* m;   // running max
  float* l;   // running sum
  ForwardBufs(Carve& cv, const Dims& d)
      : Qp(cv.take(RQ * d.D)), Kt(cv.take(d.D * BK)), Vp(cv.take(BK * d.Dp())), S(cv.take(RQ * BK)),
        O(cv.take(RQ * d.Dp())), m(cv.take(RQ)), l(cv.take(RQ)) {}
};

template <typename T>
void forward_task(const Dims& d, float scale, const T* q, const T* k, const T* v, const int32_t* lo,
                  T* out, float* lse, int64_t b, int64_t h, int64_t qb, const ForwardBufs& w) {
  const int64_t D = d.D, Dp = d.Dp(), hk = h / d.G(), off = d.Tk - d.Tq;
  const int64_t i0 = qb * RQ, nq = std::min(RQ, d.Tq - i0);
  float *Qp = w.Qp, *Kt = w.Kt, *Vp = w.Vp, *S = w.S, *O = w.O, *m = w.m, *l = w.l;

  const int64_t qstride = d.Hq * D, kstride = d.Hkv * D;
  pack_rows(q + ((b * d.Tq + i0) * d.Hq + h) * D, qstride, nq, D, D, Qp);
  std::fill(O, O + nq * Dp, 0.f);
  std::fill(m, m + nq, -std::numeric_limits<float>::infinity());
  std::fill(l, l + nq, 0.f);
  const int32_t* lor = lo + b * d.Tq + i0;
  // One document's queries at a time: they all see keys from the document's start L up to the last
  // one's position, and of those key blocks only the whole vectors [c0, c1) that reach [L, klast]
  // (block boundaries stay multiples of BK, so each row meets the same blocks, in the same order, as
  // when the task scanned every key block from its first query's document start).
  for (int64_t r0 = 0; r0 < nq;) {
    const int64_t r1 = run_end(lor, r0, nq), ns = r1 - r0;
    const int64_t L = lor[r0], klast = off + i0 + r1 - 1;
    for (int64_t k0 = L / BK * BK; k0 <= klast; k0 += BK) {
      const int64_t nk = std::min(BK, d.Tk - k0);
      const int64_t c0 = floor_w(std::max<int64_t>(L - k0, 0)), c1 = ceil_w(std::min(klast - k0 + 1, BK));
      const int64_t kn = std::min(c1, nk) - c0;  // keys present in [c0, c1)
      // Row r0 + i sees keys up to column hi + i of the window [c0, c1).
      const int64_t hi = off + i0 + r0 - k0 - c0;
      const int64_t kv = ((b * d.Tk + k0 + c0) * d.Hkv + hk) * D;
      pack_cols(k + kv, kstride, kn, D, BK, c1 - c0, Kt + c0);
      pack_rows(v + kv, kstride, kn, D, Dp, Vp + c0 * Dp);
      mm_band(ns, c1 - c0, D, Qp + r0 * D, D, Kt + c0, BK, S + r0 * BK + c0, BK, false, false, -NOLIM, hi);
      for (int64_t r = r0; r < r1; r++) {
        softmax_row(S + r * BK, k0, c0, c1, lor[r], int32_t(off + i0 + r), scale, m[r], l[r], O + r * Dp, Dp);
      }
      mm_band(ns, Dp, kn, S + r0 * BK + c0, BK, Vp + c0 * Dp, Dp, O + r0 * Dp, Dp, true, true, -NOLIM, hi);
    }
    r0 = r1;
  }
  for (int64_t r = 0; r < nq; r++) {
    unpack_rows(O + r * Dp, Dp, 1, D, 1.f / l[r], out + ((b * d.Tq + i0 + r) * d.Hq + h) * D, qstride);
    lse[(b * d.Hq + h) * d.Tq + i0 + r] = m[r] + std::log(l[r]);
  }
}

#if defined(__AVX512BF16__)
// The bf16 forward on vdpbf16ps: forward_task's loop with bf16 operands. S = Q·Kᵀ and O += P·V take
// their inputs as bf16 pairs (Q as stored, Kᵀ paired along D, V paired along keys) and accumulate
// in fp32; the softmax stays fp32 and only P is rounded to bf16 for P·V. A task takes up to GH query
// heads of one kv head, so a K/V block read from L2 serves all of them; each head's rows still see
// the same blocks in the same order, so results do not depend on the grouping or the thread count.
constexpr int64_t GH = 4;
// Key block of the bf16 path: four times the fp32 path's, as the per-row work of each online-softmax
// step (two reductions, the rescale of O) then spreads over four times the keys (256 against 128:
// 1.02-1.06x the forward's speed, two threads, T 1024, D 128, same process).
constexpr int64_t BKD = 256;

// K and V are packed once per call, block by block (Kᵀ: Dh × BKD pairs along D; V: BKD/2 × Dp pairs
// along keys), rather than by every task that reads them: packing Kᵀ is a gather, and packing per
// task cost about 8% of the forward at the benchmark's shape.
struct PackedKv {
  int64_t nkb, kblock, vblock;
  std::unique_ptr<uint32_t[]> k, v;  // not value-initialised: pack writes every word a task reads
  PackedKv(const Dims& d)
      : nkb((d.Tk + BKD - 1) / BKD), kblock((d.D + 1) / 2 * BKD), vblock(BKD / 2 * d.Dp()) {
    const int64_t blocks = d.B * d.Hkv * nkb;
    k.reset(new (std::nothrow) uint32_t[size_t(blocks * kblock)]);
    v.reset(new (std::nothrow) uint32_t[size_t(blocks * vblock)]);
    if (!k || !v) fail("attention", "cannot allocate " + std::to_string(blocks * (kblock + vblock) * 4) + " bytes for packed K and V");
  }
  // Block kb of (batch b, kv head hk).
  int64_t at(const Dims& d, int64_t b, int64_t hk, int64_t kb) const { return (b * d.Hkv + hk) * nkb + kb; }
  void pack(const Dims& d, const bf16* kk, const bf16* vv, int64_t t) {
    const int64_t kb = t % nkb, bh = t / nkb, b = bh / d.Hkv, hk = bh % d.Hkv;
    const int64_t k0 = kb * BKD, nk = std::min(BKD, d.Tk - k0), o = ((b * d.Tk + k0) * d.Hkv + hk) * d.D;
    dpbf16::pack_cols(kk + o, d.Hkv * d.D, nk, d.D, BKD, BKD, k.get() + t * kblock);
    dpbf16::pack_interleave(vv + o, d.Hkv * d.D, nk, d.D, d.Dp(), v.get() + t * vblock);
  }
};

struct ForwardBufsDp {
  uint32_t* Qp;  // A of S: GH heads × RQ rows × Dh pairs
  uint32_t* P;   // A of O += P·V: RQ × BKD/2
  float* S;
  float* O;      // GH × RQ × Dp
  float* m;      // GH × RQ
  float* l;      // GH × RQ × 16 lane sums
  static int64_t Dh(const Dims& d) { return (d.D + 1) / 2; }
  ForwardBufsDp(Carve& cv, const Dims& d)
      : Qp(reinterpret_cast<uint32_t*>(cv.take(GH * RQ * Dh(d)))), P(reinterpret_cast<uint32_t*>(cv.take(RQ * BKD / 2))),
        S(cv.take(RQ * BKD)), O(cv.take(GH * RQ * d.Dp())), m(cv.take(GH * RQ)), l(cv.take(GH * RQ * 16)) {}
};

// 2^t for the bf16 path's probabilities, which are rounded to bf16 (relative step 2^-8) right after:
// t = n + f with |f| <= 1/2, 2^f by its Taylor polynomial of degree 6 (relative error below 2e-7),
// and vscalefps applies 2^n, down through the subnormals to 0. NaN stays NaN (vmaxps returns its
// second operand for NaN). A dozen vector operations where the fp32 path's exp needs twice that.
__attribute__((always_inline)) inline __m512 exp2_p(__m512 t) {
  t = _mm512_maskz_max_ps(0xffff, _mm512_set1_ps(-160.f), t);
  const __m512 n = _mm512_maskz_roundscale_ps(0xffff, t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.5403530393e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108665e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650696e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718056e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return _mm512_maskz_scalef_ps(0xffff, p, n);
}

// exp(x) through exp2_p, for the bf16 backward's recomputed P: P and dS = P ∘ (dP - delta) are
// rounded to bf16 as operands, so exp2_p's 2e-7 serves as well as vexp's 1 ulp at half its cost.
__attribute__((always_inline)) inline V exp_p(V x) {
  return (V)exp2_p(_mm512_mul_ps((__m512)x, _mm512_set1_ps(1.44269504088896341f)));
}

// softmax_row for the bf16 path: the same online update, with the probabilities rounded to bf16
// into pb[c0, c1) (zero where masked) and the sum taken over the rounded values, so out = Σ p̃·v / Σ p̃
// is an exact weighted mean of the rows of V and the weights' rounding errors partly cancel. The
// scores stay in registers between the max and the exp (BKD / 16 vectors); the running sum l is kept
// as 16 lane sums (one horizontal sum per row at the end, not one per block).
__attribute__((always_inline)) inline void softmax_row_dp(const float* s, int64_t k0, int64_t c0, int64_t c1,
                                                          int32_t lo, int32_t hi, float scale, float& m, float* l,
                                                          float* o, int64_t Dp, bf16* pb) {
  const int64_t ca = std::max(c0, floor_w(lo - k0)), cb = std::max(ca, std::min(c1, ceil_w(hi - k0 + 1)));
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t c = c0; c < ca; c += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb + c), zero);
  for (int64_t c = cb; c < c1; c += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb + c), zero);
  const __m512i idx0 = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                        _mm512_set1_epi32(int32_t(k0)));
  const __m512i vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
  const __m512 vs = _mm512_set1_ps(scale);
  constexpr int NB = int(BKD / 16);
  __m512 x[NB];
  __mmask16 vis[NB];
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __mmask16 nan = 0;
  const int n = int((cb - ca) / 16);
  if (lo <= k0 + ca && hi >= k0 + cb - 1) {  // every key of [ca, cb) visible: no masks to build
    for (int i = 0; i < n; i++) {
      vis[i] = 0xffff;
      x[i] = _mm512_mul_ps(_mm512_loadu_ps(s + ca + 16 * i), vs);
      vmax = _mm512_maskz_max_ps(0xffff, vmax, x[i]);
      nan |= _mm512_cmp_ps_mask(x[i], x[i], _CMP_UNORD_Q);
    }
  } else {
    for (int i = 0; i < n; i++) {
      const int64_t c = ca + 16 * i;
      const __m512i j = _mm512_add_epi32(idx0, _mm512_set1_epi32(int32_t(c)));
      vis[i] = _mm512_cmpge_epi32_mask(j, vlo) & _mm512_cmple_epi32_mask(j, vhi);
      x[i] = _mm512_mul_ps(_mm512_loadu_ps(s + c), vs);
      vmax = _mm512_mask_max_ps(vmax, vis[i], vmax, x[i]);
      nan |= _mm512_mask_cmp_ps_mask(vis[i], x[i], x[i], _CMP_UNORD_Q);
    }
  }
  // A NaN score must poison the row, as it does in a plain softmax; max alone would drop it.
  const float m_new = nan ? std::numeric_limits<float>::quiet_NaN() : std::max(m, hmax((V)vmax));
  if (m_new == -std::numeric_limits<float>::infinity()) {  // no visible key in this block
    for (int64_t c = ca; c < cb; c += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb + c), zero);
    return;
  }
  // exp(x - m) = 2^(x·log2 e - m·log2 e)
  const __m512 l2e = _mm512_set1_ps(1.44269504088896341f), nm = _mm512_set1_ps(-m_new * 1.44269504088896341f);
  // Two vectors of probabilities round into one of 32 bf16 (keys in order), and one vdpbf16ps
  // against ones adds each lane's pair of rounded values into the lane sums: the sum then also
  // reads a subnormal p̃ as 0, as O += P·V does.
  const __m512bh ones = (__m512bh)_mm512_set1_epi16(0x3f80);
  __m512 sum = _mm512_setzero_ps();
  auto prob = [&](int i) { return _mm512_maskz_mov_ps(vis[i], exp2_p(_mm512_fmadd_ps(x[i], l2e, nm))); };
  int i = 0;
  for (; i + 1 < n; i += 2) {
    const __m512bh h = _mm512_cvtne2ps_pbh(prob(i + 1), prob(i));
    _mm512_storeu_si512(pb + ca + 16 * i, (__m512i)h);
    sum = _mm512_dpbf16_ps(sum, h, ones);
  }
  if (i < n) {
    const __m512bh h = _mm512_cvtne2ps_pbh(_mm512_setzero_ps(), prob(i));
    _mm512_mask_storeu_epi16(pb + ca + 16 * i, 0xffff, (__m512i)h);  // the low 16: p̃ of vector i
    sum = _mm512_dpbf16_ps(sum, h, ones);
  }
  // The max rarely moves once many keys are seen; on the first visible block m is -inf and O, l are 0.
  if (m_new != m) {
    const __m512 vc = exp2_p(_mm512_set1_ps((m - m_new) * 1.44269504088896341f));
    sum = _mm512_fmadd_ps(_mm512_loadu_ps(l), vc, sum);
    for (int64_t c = 0; c < Dp; c += 16) _mm512_storeu_ps(o + c, _mm512_mul_ps(_mm512_loadu_ps(o + c), vc));
  } else {
    sum = _mm512_add_ps(_mm512_loadu_ps(l), sum);
  }
  _mm512_storeu_ps(l, sum);
  m = m_new;
}

// Query heads [h0, h0 + nh) (one kv head), query block qb.
void forward_task_dp(const Dims& d, float scale, const bf16* q, const PackedKv& kv, const int32_t* lo,
                     bf16* out, float* lse, int64_t b, int64_t h0, int64_t nh, int64_t qb, const ForwardBufsDp& w) {
  const int64_t D = d.D, Dp = d.Dp(), Dh = ForwardBufsDp::Dh(d), hk = h0 / d.G(), off = d.Tk - d.Tq;
  const int64_t i0 = qb * RQ, nq = std::min(RQ, d.Tq - i0);
  constexpr int64_t BP = BKD / 2;  // pairs per row of P
  uint32_t* P = w.P;
  float* S = w.S;

  const int64_t qstride = d.Hq * D;
  for (int64_t g = 0; g < nh; g++) {
    dpbf16::pack_rows(q + ((b * d.Tq + i0) * d.Hq + h0 + g) * D, qstride, nq, D, Dh, w.Qp + g * RQ * Dh);
    std::fill(w.O + g * RQ * Dp, w.O + g * RQ * Dp + nq * Dp, 0.f);
    std::fill(w.m + g * RQ, w.m + g * RQ + nq, -std::numeric_limits<float>::infinity());
    std::fill(w.l + g * RQ * 16, w.l + (g * RQ + nq) * 16, 0.f);
  }
  const int32_t* lor = lo + b * d.Tq + i0;
  for (int64_t r0 = 0; r0 < nq;) {
    const int64_t r1 = run_end(lor, r0, nq);
    const int64_t L = lor[r0], klast = off + i0 + r1 - 1;
    for (int64_t k0 = L / BKD * BKD; k0 <= klast; k0 += BKD) {
      const int64_t nk = std::min(BKD, d.Tk - k0);
      const int64_t c0 = floor_w(std::max<int64_t>(L - k0, 0)), c1 = ceil_w(std::min(klast - k0 + 1, BKD));
      const int64_t kn = std::min(c1, nk) - c0;
      const int64_t hi = off + i0 + r0 - k0 - c0;
      const int64_t blk = kv.at(d, b, hk, k0 / BKD);
      const uint32_t *Kt = kv.k.get() + blk * kv.kblock, *Vp = kv.v.get() + blk * kv.vblock;
      for (int64_t g = 0; g < nh; g++) {
        const uint32_t* Qp = w.Qp + g * RQ * Dh;
        float *O = w.O + g * RQ * Dp, *m = w.m + g * RQ, *l = w.l + g * RQ * 16;
        // One register tile of rows at a time through S, softmax and P·V: the rows' S and P stay in
        // L1, and the out-of-order core can overlap one group's softmax with the next one's products.
        for (int64_t ra = r0; ra < r1; ra += dpbf16::MR) {
          const int64_t mr = std::min<int64_t>(dpbf16::MR, r1 - ra), hr = hi + (ra - r0);
          dpbf16::mm_band(mr, c1 - c0, D, Qp + ra * Dh, Dh, Kt + c0, BKD, S + ra * BKD + c0, BKD, false, false, -NOLIM, hr);
          for (int64_t r = ra; r < ra + mr; r++) {
            softmax_row_dp(S + r * BKD, k0, c0, c1, lor[r], int32_t(off + i0 + r), scale, m[r], l + r * 16, O + r * Dp, Dp,
                           reinterpret_cast<bf16*>(P + r * BP));
          }
          dpbf16::mm_band(mr, Dp, kn, P + ra * BP + c0 / 2, BP, Vp + c0 / 2 * Dp, Dp, O + ra * Dp, Dp, true, true, -NOLIM, hr);
        }
      }
    }
    r0 = r1;
  }
  for (int64_t g = 0; g < nh; g++) {
    const float *O = w.O + g * RQ * Dp, *m = w.m + g * RQ, *l = w.l + g * RQ * 16;
    const int64_t h = h0 + g;
    for (int64_t r = 0; r < nq; r++) {
      const float lr = hsum(ld(l + r * 16));
      dpbf16::store_rounded(O + r * Dp, D, 1.f / lr, out + ((b * d.Tq + i0 + r) * d.Hq + h) * D);
      lse[(b * d.Hq + h) * d.Tq + i0 + r] = m[r] + std::log(lr);
    }
  }
}
#endif

// A tiny attention (a test model, a short decode step) is done before a second thread would wake.
bool worth_threads(const Dims& d) {
  return double(d.B) * double(d.Hq) * double(d.Tq) * double(d.Tk) * double(d.D) >= double(1 << 20);
}

template <typename T>
void forward(const Dims& d, float scale, const T* q, const T* k, const T* v, const int32_t* lo, T* out,
             float* lse) {
#if defined(__AVX512BF16__)
  if constexpr (std::is_same_v<T, bf16>) {
    Scratch<ForwardBufsDp> scratch("attention", d);
    PackedKv kv(d);
    // Head chunks: the query heads of one kv head, GH at a time.
    const int64_t G = d.G(), per_kv = (G + GH - 1) / GH, chunks = d.B * d.Hkv * per_kv;
    const int64_t nqb = (d.Tq + RQ - 1) / RQ, ntasks = chunks * nqb;
#pragma omp parallel if (worth_threads(d))
    {
      const ForwardBufsDp w = scratch.mine(d);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < d.B * d.Hkv * kv.nkb; t++) kv.pack(d, k, v, t);
#pragma omp for schedule(dynamic)
      for (int64_t t = 0; t < ntasks; t++) {
        const int64_t c = t % chunks, bk = c / per_kv, h0 = bk % d.Hkv * G + c % per_kv * GH;
        forward_task_dp(d, scale, q, kv, lo, out, lse, bk / d.Hkv, h0, std::min(GH, bk % d.Hkv * G + G - h0),
                        nqb - 1 - t / chunks, w);
      }
    }
    return;
  }
#endif
  Scratch<ForwardBufs> scratch("attention", d);
  const int64_t nqb = (d.Tq + RQ - 1) / RQ, BH = d.B * d.Hq, ntasks = BH * nqb;
#pragma omp parallel if (worth_threads(d))
  {
    const ForwardBufs w = scratch.mine(d);
    // Last query blocks first: they see the most keys, and the dynamic schedule ends balanced.
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < ntasks; t++) {
      const int64_t bh = t % BH;
      forward_task(d, scale, q, k, v, lo, out, lse, bh / d.Hq, bh % d.Hq, nqb - 1 - t / BH, w);
    }
  }
}

// ---------------------------------------------------------------- backward

struct DkvBufs {
  float* Kp;  // A of Sᵀ = K·Qᵀ
  float* Vp;  // A of dPᵀ = V·dOᵀ
  float* Qt;  // B of Sᵀ
  float* Qr;  // B of dK += dSᵀ·Q
  float* Ot;  // B of dPᵀ (dO transposed)
  float* Or;  // B of dV += Pᵀ·dO
  float* St;  // Sᵀ, then Pᵀ
  float* Pt;  // dPᵀ, then dSᵀ
  float* dK;
  float* dV;
  float* lq;  // the query tile's lse
  float* dl;  // and delta
  DkvBufs(Carve& cv, const Dims& d)
      : Kp(cv.take(RK * d.D)), Vp(cv.take(RK * d.D)), Qt(cv.take(d.D * BQ)), Qr(cv.take(BQ * d.Dp())),
        Ot(cv.take(d.D * BQ)), Or(cv.take(BQ * d.Dp())), St(cv.take(RK * BQ)), Pt(cv.take(RK * BQ)),
        dK(cv.take(RK * d.Dp())), dV(cv.take(RK * d.Dp())), lq(cv.take(BQ)), dl(cv.take(BQ)) {}
};

// Pass 1: dk and dv of key block kb of kv head hk, summed over its query heads and query blocks.
// ends: [B, T], one past the last position of each position's document.
template <typename T>
void dkv_task(const Dims& d, float scale, const T* q, const T* k, const T* v, const T* dout,
              const float* lse, const float* delta, const int32_t* lo, const int32_t* ends, T* dk, T* dv,
              int64_t b, int64_t hk, int64_t kb, const DkvBufs& w) {
  const int64_t T_ = d.Tk, D = d.D, Dp = d.Dp(), G = d.G();
  const int64_t k0 = kb * RK, nk = std::min(RK, T_ - k0);
  float *Kp = w.Kp, *Vp = w.Vp, *Qt = w.Qt, *Qr = w.Qr, *Ot = w.Ot, *Or = w.Or, *St = w.St, *Pt = w.Pt;
  float *dK = w.dK, *dV = w.dV, *lq = w.lq, *dl = w.dl;
  alignas(64) int32_t qlo[BQ], qhi[BQ];  // the keys each query of the tile sees: [qlo, qhi]

  const int64_t qstride = d.Hq * D, kstride = d.Hkv * D;
  const int64_t kv = ((b * T_ + k0) * d.Hkv + hk) * D;
  pack_rows(k + kv, kstride, nk, D, D, Kp);
  pack_rows(v + kv, kstride, nk, D, D, Vp);
  std::fill(dK, dK + nk * Dp, 0.f);
  std::fill(dV, dV + nk * Dp, 0.f);
  const int32_t* lob = lo + b * T_;
  // One document's keys at a time, rows [r0, r1): key j is seen by the queries [j, end of its
  // document), so the run meets the queries [ja, qe), and of each BQ-query block only the whole
  // vectors [c0, c1) that reach them. Each key row still meets the same query blocks in the same
  // order (query heads outer) as when the task scanned all blocks up to its last key's document end.
  for (int64_t r0 = 0; r0 < nk;) {
    const int64_t r1 = run_end(lob + k0, r0, nk), ns = r1 - r0;
    const int64_t ja = k0 + r0, qe = ends[b * T_ + ja];
    for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
      for (int64_t qb = ja / BQ; qb * BQ < qe; qb++) {
        const int64_t i0 = qb * BQ, nq = std::min(BQ, T_ - i0);
        const int64_t c0 = floor_w(std::max<int64_t>(ja - i0, 0)), c1 = ceil_w(std::min(qe - i0, BQ));
        const int64_t qn = std::min(c1, nq) - c0;  // queries present in [c0, c1)
        // Key row r0 + i sees queries from column lo_off + i of the window [c0, c1) on.
        const int64_t lo_off = ja - i0 - c0;
        const int64_t qo = ((b * T_ + i0 + c0) * d.Hq + h) * D, row = (b * d.Hq + h) * T_ + i0;
        pack_cols(q + qo, qstride, qn, D, BQ, c1 - c0, Qt + c0);
        pack_rows(q + qo, qstride, qn, D, Dp, Qr + c0 * Dp);
        pack_cols(dout + qo, qstride, qn, D, BQ, c1 - c0, Ot + c0);
        pack_rows(dout + qo, qstride, qn, D, Dp, Or + c0 * Dp);
        for (int64_t c = c0; c < c1; c++) {
          const bool in = c < nq;  // padding columns see nothing
          qlo[c] = in ? lob[i0 + c] : std::numeric_limits<int32_t>::max();
          qhi[c] = in ? int32_t(i0 + c) : -1;
          lq[c] = in ? lse[row + c] : 0.f;
          dl[c] = in ? delta[row + c] : 0.f;
        }
        mm_band(ns, c1 - c0, D, Kp + r0 * D, D, Qt + c0, BQ, St + r0 * BQ + c0, BQ, false, false, lo_off, NOLIM);
        for (int64_t r = r0; r < r1; r++) {
          const VI j = splati(int32_t(k0 + r));
          const int64_t ca = std::min(c1, std::max(c0, floor_w(k0 + r - i0)));
          std::fill(St + r * BQ + c0, St + r * BQ + ca, 0.f);
          for (int64_t c = ca; c < c1; c += W) {
            const VI vis = j >= ldi(qlo + c) && j <= ldi(qhi + c);
            st(St + r * BQ + c, vis ? vexp(ld(St + r * BQ + c) * scale - ld(lq + c)) : V{});
          }
        }
        mm_band(ns, Dp, qn, St + r0 * BQ + c0, BQ, Or + c0 * Dp, Dp, dV + r0 * Dp, Dp, true, true, lo_off, NOLIM);
        mm_band(ns, c1 - c0, D, Vp + r0 * D, D, Ot + c0, BQ, Pt + r0 * BQ + c0, BQ, false, false, lo_off, NOLIM);
        for (int64_t r = r0; r < r1; r++) {
          const int64_t ca = std::min(c1, std::max(c0, floor_w(k0 + r - i0)));
          std::fill(Pt + r * BQ + c0, Pt + r * BQ + ca, 0.f);
          for (int64_t c = ca; c < c1; c += W) {
            const int64_t i = r * BQ + c;
            st(Pt + i, ld(St + i) * (ld(Pt + i) - ld(dl + c)));
          }
        }
        mm_band(ns, Dp, qn, Pt + r0 * BQ + c0, BQ, Qr + c0 * Dp, Dp, dK + r0 * Dp, Dp, true, true, lo_off, NOLIM);
      }
    }
    r0 = r1;
  }
  unpack_rows(dK, Dp, nk, D, scale, dk + kv, kstride);
  unpack_rows(dV, Dp, nk, D, 1.f, dv + kv, kstride);
}

// Pass 2: dq of query block qb of query head h, over the key blocks it sees.
struct DqBufs {
  float* Qp;  // A of S = Q·Kᵀ
  float* Op;  // A of dP = dO·Vᵀ
  float* Kt;  // B of S
  float* Vt;  // B of dP
  float* Kr;  // B of dQ += dS·K
  float* S;   // S, then P, then dS
  float* dP;
  float* dQ;
  DqBufs(Carve& cv, const Dims& d)
      : Qp(cv.take(RQ * d.D)), Op(cv.take(RQ * d.D)), Kt(cv.take(d.D * BK)), Vt(cv.take(d.D * BK)),
        Kr(cv.take(BK * d.Dp())), S(cv.take(RQ * BK)), dP(cv.take(RQ * BK)), dQ(cv.take(RQ * d.Dp())) {}
};

template <typename T>
void dq_task(const Dims& d, float scale, const T* q, const T* k, const T* v, const T* dout,
             const float* lse, const float* delta, const int32_t* lo, T* dq, int64_t b, int64_t h,
             int64_t qb, const DqBufs& w) {
  const int64_t T_ = d.Tk, D = d.D, Dp = d.Dp(), hk = h / d.G();
  const int64_t i0 = qb * RQ, nq = std::min(RQ, T_ - i0);
  float *Qp = w.Qp, *Op = w.Op, *Kt = w.Kt, *Vt = w.Vt, *Kr = w.Kr, *S = w.S, *dP = w.dP, *dQ = w.dQ;

  const int64_t qstride = d.Hq * D, kstride = d.Hkv * D;
  const int64_t qo = ((b * T_ + i0) * d.Hq + h) * D, row = (b * d.Hq + h) * T_ + i0;
  pack_rows(q + qo, qstride, nq, D, D, Qp);
  pack_rows(dout + qo, qstride, nq, D, D, Op);
  std::fill(dQ, dQ + nq * Dp, 0.f);
  const int32_t* lor = lo + b * T_ + i0;
  const VI idx = iota();
  // One document's queries at a time, over the whole vectors of each key block that reach its
  // keys, as in forward_task.
  for (int64_t r0 = 0; r0 < nq;) {
    const int64_t r1 = run_end(lor, r0, nq), ns = r1 - r0;
    const int64_t L = lor[r0], klast = i0 + r1 - 1;
    for (int64_t k0 = L / BK * BK; k0 <= klast; k0 += BK) {
      const int64_t nk = std::min(BK, T_ - k0);
      const int64_t c0 = floor_w(std::max<int64_t>(L - k0, 0)), c1 = ceil_w(std::min(klast - k0 + 1, BK));
      const int64_t kn = std::min(c1, nk) - c0;  // keys present in [c0, c1)
      const int64_t hi = i0 + r0 - k0 - c0;       // row r0 + i sees up to column hi + i of the window
      const int64_t kv = ((b * T_ + k0 + c0) * d.Hkv + hk) * D;
      pack_cols(k + kv, kstride, kn, D, BK, c1 - c0, Kt + c0);
      pack_cols(v + kv, kstride, kn, D, BK, c1 - c0, Vt + c0);
      pack_rows(k + kv, kstride, kn, D, Dp, Kr + c0 * Dp);
      mm_band(ns, c1 - c0, D, Qp + r0 * D, D, Kt + c0, BK, S + r0 * BK + c0, BK, false, false, -NOLIM, hi);
      mm_band(ns, c1 - c0, D, Op + r0 * D, D, Vt + c0, BK, dP + r0 * BK + c0, BK, false, false, -NOLIM, hi);
      for (int64_t r = r0; r < r1; r++) {
        const VI vlo = splati(lor[r]), vhi = splati(int32_t(i0 + r));
        const V vl = splat(lse[row + r]), vd = splat(delta[row + r]);
        const int64_t cb = std::max(c0, std::min(c1, ceil_w(i0 + r - k0 + 1)));
        for (int64_t c = c0; c < cb; c += W) {
          const VI j = idx + int32_t(k0 + c);
          const int64_t i = r * BK + c;
          const V p = (j >= vlo && j <= vhi) ? vexp(ld(S + i) * scale - vl) : V{};
          st(S + i, p * (ld(dP + i) - vd));
        }
        std::fill(S + r * BK + cb, S + r * BK + c1, 0.f);
      }
      mm_band(ns, Dp, kn, S + r0 * BK + c0, BK, Kr + c0 * Dp, Dp, dQ + r0 * Dp, Dp, true, true, -NOLIM, hi);
    }
    r0 = r1;
  }
  unpack_rows(dQ, Dp, nq, D, scale, dq + qo, qstride);
}

#if defined(__AVX512BF16__)
// The bf16 backward on vdpbf16ps: dkv_task and dq_task with their seven products on bf16 pairs and
// fp32 accumulation. S and dP come from the bf16 inputs exactly as before (fp32 sums of exact
// products); P (for dV) and dS (for dK, dQ) are rounded to bf16 as the A operands of their products,
// as FlashAttention's backward does. The softmax recomputation and dS = P ∘ (dP - delta) stay fp32.

// Rows [0, n) of src (fp32, ld) over columns [c0, c1) (multiples of 16) into bf16 rows of dst (ldd).
inline void round_rows(const float* src, int64_t ld, int64_t n, int64_t c0, int64_t c1, bf16* dst, int64_t ldd) {
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = c0; c < c1; c += 16) (void)dpbf16::round_store(_mm512_loadu_ps(src + r * ld + c), dst + r * ldd + c);
}

// Column blocks of the bf16 backward: queries per key block in the dK/dV pass, keys per query block
// in the dQ pass. 128, twice the fp32 path's 64: each product's inner loop (dV += Pᵀ·dO, dK += dSᵀ·Q,
// dQ += dS·K run over these) is twice as long per accumulator load and store.
constexpr int64_t BQB = 128, BKB = 128;

struct DkvBufsDp {
  uint32_t *Kp, *Vp;  // A of Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ: RK × Dh
  uint32_t *Qt, *Ot;  // B of Sᵀ and dPᵀ: Dh × BQB
  uint32_t *Qi, *Oi;  // B of dK += dSᵀ·Q and dV += Pᵀ·dO: BQB/2 × Dp
  uint32_t *Pb, *dSb; // A of those: RK × BQB/2
  float *St, *Pt, *dK, *dV, *lq, *dl;
  static int64_t Dh(const Dims& d) { return (d.D + 1) / 2; }
  static uint32_t* u(float* p) { return reinterpret_cast<uint32_t*>(p); }
  DkvBufsDp(Carve& cv, const Dims& d)
      : Kp(u(cv.take(RK * Dh(d)))), Vp(u(cv.take(RK * Dh(d)))), Qt(u(cv.take(Dh(d) * BQB))), Ot(u(cv.take(Dh(d) * BQB))),
        Qi(u(cv.take(BQB / 2 * d.Dp()))), Oi(u(cv.take(BQB / 2 * d.Dp()))), Pb(u(cv.take(RK * BQB / 2))),
        dSb(u(cv.take(RK * BQB / 2))), St(cv.take(RK * BQB)), Pt(cv.take(RK * BQB)), dK(cv.take(RK * d.Dp())),
        dV(cv.take(RK * d.Dp())), lq(cv.take(BQB)), dl(cv.take(BQB)) {}
};

void dkv_task_dp(const Dims& d, float scale, const bf16* q, const bf16* k, const bf16* v, const bf16* dout,
                 const float* lse, const float* delta, const int32_t* lo, const int32_t* ends, bf16* dk, bf16* dv,
                 int64_t b, int64_t hk, int64_t kb, const DkvBufsDp& w) {
  const int64_t T_ = d.Tk, D = d.D, Dp = d.Dp(), Dh = DkvBufsDp::Dh(d), G = d.G();
  const int64_t k0 = kb * RK, nk = std::min(RK, T_ - k0);
  constexpr int64_t BP = BQB / 2;
  float *St = w.St, *Pt = w.Pt, *dK = w.dK, *dV = w.dV, *lq = w.lq, *dl = w.dl;
  alignas(64) int32_t qlo[BQB], qhi[BQB];

  const int64_t qstride = d.Hq * D, kstride = d.Hkv * D;
  const int64_t kv = ((b * T_ + k0) * d.Hkv + hk) * D;
  dpbf16::pack_rows(k + kv, kstride, nk, D, Dh, w.Kp);
  dpbf16::pack_rows(v + kv, kstride, nk, D, Dh, w.Vp);
  std::fill(dK, dK + nk * Dp, 0.f);
  std::fill(dV, dV + nk * Dp, 0.f);
  const int32_t* lob = lo + b * T_;
  // The loops of dkv_task.
  for (int64_t r0 = 0; r0 < nk;) {
    const int64_t r1 = run_end(lob + k0, r0, nk), ns = r1 - r0;
    const int64_t ja = k0 + r0, qe = ends[b * T_ + ja];
    for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
      for (int64_t qb = ja / BQB; qb * BQB < qe; qb++) {
        const int64_t i0 = qb * BQB, nq = std::min(BQB, T_ - i0);
        const int64_t c0 = floor_w(std::max<int64_t>(ja - i0, 0)), c1 = ceil_w(std::min(qe - i0, BQB));
        const int64_t qn = std::min(c1, nq) - c0;
        const int64_t lo_off = ja - i0 - c0;
        const int64_t qo = ((b * T_ + i0 + c0) * d.Hq + h) * D, row = (b * d.Hq + h) * T_ + i0;
        dpbf16::pack_cols(q + qo, qstride, qn, D, BQB, c1 - c0, w.Qt + c0);
        dpbf16::pack_interleave(q + qo, qstride, qn, D, Dp, w.Qi + c0 / 2 * Dp);
        dpbf16::pack_cols(dout + qo, qstride, qn, D, BQB, c1 - c0, w.Ot + c0);
        dpbf16::pack_interleave(dout + qo, qstride, qn, D, Dp, w.Oi + c0 / 2 * Dp);
        for (int64_t c = c0; c < c1; c++) {
          const bool in = c < nq;
          qlo[c] = in ? lob[i0 + c] : std::numeric_limits<int32_t>::max();
          qhi[c] = in ? int32_t(i0 + c) : -1;
          lq[c] = in ? lse[row + c] : 0.f;
          dl[c] = in ? delta[row + c] : 0.f;
        }
        dpbf16::mm_band(ns, c1 - c0, D, w.Kp + r0 * Dh, Dh, w.Qt + c0, BQB, St + r0 * BQB + c0, BQB, false, false, lo_off, NOLIM);
        dpbf16::mm_band(ns, c1 - c0, D, w.Vp + r0 * Dh, Dh, w.Ot + c0, BQB, Pt + r0 * BQB + c0, BQB, false, false, lo_off, NOLIM);
        for (int64_t r = r0; r < r1; r++) {
          const VI j = splati(int32_t(k0 + r));
          const int64_t ca = std::min(c1, std::max(c0, floor_w(k0 + r - i0)));
          std::fill(St + r * BQB + c0, St + r * BQB + ca, 0.f);
          std::fill(Pt + r * BQB + c0, Pt + r * BQB + ca, 0.f);
          for (int64_t c = ca; c < c1; c += W) {
            const VI vis = j >= ldi(qlo + c) && j <= ldi(qhi + c);
            const V p = vis ? exp_p(ld(St + r * BQB + c) * scale - ld(lq + c)) : V{};
            st(St + r * BQB + c, p);
            st(Pt + r * BQB + c, p * (ld(Pt + r * BQB + c) - ld(dl + c)));
          }
        }
        bf16* Pb = reinterpret_cast<bf16*>(w.Pb);
        bf16* dSb = reinterpret_cast<bf16*>(w.dSb);
        round_rows(St + r0 * BQB, BQB, ns, c0, c1, Pb + r0 * BQB, BQB);
        round_rows(Pt + r0 * BQB, BQB, ns, c0, c1, dSb + r0 * BQB, BQB);
        dpbf16::mm_band(ns, Dp, qn, w.Pb + r0 * BP + c0 / 2, BP, w.Oi + c0 / 2 * Dp, Dp, dV + r0 * Dp, Dp, true, true, lo_off, NOLIM);
        dpbf16::mm_band(ns, Dp, qn, w.dSb + r0 * BP + c0 / 2, BP, w.Qi + c0 / 2 * Dp, Dp, dK + r0 * Dp, Dp, true, true, lo_off, NOLIM);
      }
    }
    r0 = r1;
  }
  unpack_rows(dK, Dp, nk, D, scale, dk + kv, kstride);
  unpack_rows(dV, Dp, nk, D, 1.f, dv + kv, kstride);
}

struct DqBufsDp {
  uint32_t *Qp, *Op;  // A of S = Q·Kᵀ and dP = dO·Vᵀ: RQ × Dh
  uint32_t *Kt, *Vt;  // B of those: Dh × BKB
  uint32_t* Ki;       // B of dQ += dS·K: BKB/2 × Dp
  uint32_t* dSb;      // A of that: RQ × BKB/2
  float *S, *dP, *dQ;
  static int64_t Dh(const Dims& d) { return (d.D + 1) / 2; }
  static uint32_t* u(float* p) { return reinterpret_cast<uint32_t*>(p); }
  DqBufsDp(Carve& cv, const Dims& d)
      : Qp(u(cv.take(RQ * Dh(d)))), Op(u(cv.take(RQ * Dh(d)))), Kt(u(cv.take(Dh(d) * BKB))), Vt(u(cv.take(Dh(d) * BKB))),
        Ki(u(cv.take(BKB / 2 * d.Dp()))), dSb(u(cv.take(RQ * BKB / 2))), S(cv.take(RQ * BKB)), dP(cv.take(RQ * BKB)),
        dQ(cv.take(RQ * d.Dp())) {}
};

void dq_task_dp(const Dims& d, float scale, const bf16* q, const bf16* k, const bf16* v, const bf16* dout,
                const float* lse, const float* delta, const int32_t* lo, bf16* dq, int64_t b, int64_t h, int64_t qb,
                const DqBufsDp& w) {
  const int64_t T_ = d.Tk, D = d.D, Dp = d.Dp(), Dh = DqBufsDp::Dh(d), hk = h / d.G();
  const int64_t i0 = qb * RQ, nq = std::min(RQ, T_ - i0);
  constexpr int64_t BP = BKB / 2;
  float *S = w.S, *dP = w.dP, *dQ = w.dQ;

  const int64_t qstride = d.Hq * D, kstride = d.Hkv * D;
  const int64_t qo = ((b * T_ + i0) * d.Hq + h) * D, row = (b * d.Hq + h) * T_ + i0;
  dpbf16::pack_rows(q + qo, qstride, nq, D, Dh, w.Qp);
  dpbf16::pack_rows(dout + qo, qstride, nq, D, Dh, w.Op);
  std::fill(dQ, dQ + nq * Dp, 0.f);
  const int32_t* lor = lo + b * T_ + i0;
  const VI idx = iota();
  bf16* dSb = reinterpret_cast<bf16*>(w.dSb);
  // The loops of dq_task.
  for (int64_t r0 = 0; r0 < nq;) {
    const int64_t r1 = run_end(lor, r0, nq), ns = r1 - r0;
    const int64_t L = lor[r0], klast = i0 + r1 - 1;
    for (int64_t k0 = L / BKB * BKB; k0 <= klast; k0 += BKB) {
      const int64_t nk = std::min(BKB, T_ - k0);
      const int64_t c0 = floor_w(std::max<int64_t>(L - k0, 0)), c1 = ceil_w(std::min(klast - k0 + 1, BKB));
      const int64_t kn = std::min(c1, nk) - c0;
      const int64_t hi = i0 + r0 - k0 - c0;
      const int64_t kv = ((b * T_ + k0 + c0) * d.Hkv + hk) * D;
      dpbf16::pack_cols(k + kv, kstride, kn, D, BKB, c1 - c0, w.Kt + c0);
      dpbf16::pack_cols(v + kv, kstride, kn, D, BKB, c1 - c0, w.Vt + c0);
      dpbf16::pack_interleave(k + kv, kstride, kn, D, Dp, w.Ki + c0 / 2 * Dp);
      dpbf16::mm_band(ns, c1 - c0, D, w.Qp + r0 * Dh, Dh, w.Kt + c0, BKB, S + r0 * BKB + c0, BKB, false, false, -NOLIM, hi);
      dpbf16::mm_band(ns, c1 - c0, D, w.Op + r0 * Dh, Dh, w.Vt + c0, BKB, dP + r0 * BKB + c0, BKB, false, false, -NOLIM, hi);
      for (int64_t r = r0; r < r1; r++) {
        const VI vlo = splati(lor[r]), vhi = splati(int32_t(i0 + r));
        const V vl = splat(lse[row + r]), vd = splat(delta[row + r]);
        const int64_t cb = std::max(c0, std::min(c1, ceil_w(i0 + r - k0 + 1)));
        for (int64_t c = c0; c < cb; c += W) {
          const VI j = idx + int32_t(k0 + c);
          const int64_t i = r * BKB + c;
          const V p = (j >= vlo && j <= vhi) ? exp_p(ld(S + i) * scale - vl) : V{};
          (void)dpbf16::round_store((__m512)(p * (ld(dP + i) - vd)), dSb + r * BKB + c);
        }
        std::fill(dSb + r * BKB + cb, dSb + r * BKB + c1, bf16(0));
      }
      dpbf16::mm_band(ns, Dp, kn, w.dSb + r0 * BP + c0 / 2, BP, w.Ki + c0 / 2 * Dp, Dp, dQ + r0 * Dp, Dp, true, true, -NOLIM, hi);
    }
    r0 = r1;
  }
  unpack_rows(dQ, Dp, nq, D, scale, dq + qo, qstride);
}
#endif

// delta of row n = (b·Hq + h)·T + i: dout_i·out_i.
template <typename T>
float delta_row(const Dims& d, const T* out, const T* dout, int64_t n) {
  const int64_t T_ = d.Tk, D = d.D, i = n % T_, bh = n / T_;
  const int64_t o = ((bh / d.Hq * T_ + i) * d.Hq + bh % d.Hq) * D;
  float s = 0.f;
  for (int64_t c = 0; c < D; c++) s += load(dout + o, c) * load(out + o, c);
  return s;
}

// The backward's passes over one kernel family (fp32 products, or vdpbf16ps ones) with its scratch
// buffers: delta, then dK/dV per key block and dQ per query block. The passes are independent once
// delta is known, so threads done with the first move straight on (nowait); within each, the
// blocks with the most work come first.
template <class DkvB, class DqB, typename T, class DkvTask, class DqTask>
void backward_passes(const Dims& d, const T* out, const T* dout, float* delta, DkvTask dkv, DqTask dq) {
  Scratch<DkvB> scratch1("attention_backward", d);
  Scratch<DqB> scratch2("attention_backward", d);
  const int64_t T_ = d.Tk, nqb = (T_ + RQ - 1) / RQ, nkb = (T_ + RK - 1) / RK;
  const int64_t BHk = d.B * d.Hkv, BH = d.B * d.Hq, rows = BH * T_;
#pragma omp parallel if (worth_threads(d))
  {
    const DkvB w1 = scratch1.mine(d);
    const DqB w2 = scratch2.mine(d);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < rows; n++) delta[size_t(n)] = delta_row(d, out, dout, n);
#pragma omp for schedule(dynamic) nowait
    for (int64_t t = 0; t < BHk * nkb; t++) {
      const int64_t bh = t % BHk;
      dkv(bh / d.Hkv, bh % d.Hkv, t / BHk, w1);
    }
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < BH * nqb; t++) {
      const int64_t bh = t % BH;
      dq(bh / d.Hq, bh % d.Hq, nqb - 1 - t / BH, w2);
    }
  }
}

template <typename T>
void backward(const Dims& d, float scale, const T* q, const T* k, const T* v, const int32_t* lo,
              const T* out, const T* dout, const float* lse, T* dq, T* dk, T* dv) {
  const int64_t T_ = d.Tk;
  std::vector<float> delta;
  try {
    delta.resize(size_t(d.B * d.Hq * T_));
  } catch (const std::bad_alloc&) {
    fail("attention_backward", "cannot allocate " + std::to_string(d.B * d.Hq * T_ * 4) + " bytes for delta");
  }
  std::vector<int32_t> ends;
  try {
    ends.resize(size_t(d.B * T_));
  } catch (const std::bad_alloc&) {
    fail("attention_backward", "cannot allocate " + std::to_string(d.B * T_ * 4) + " bytes for document ends");
  }
  for (int64_t b = 0; b < d.B; b++) {  // one past the last position of each position's document
    const int32_t* l = lo + b * T_;
    int32_t* e = ends.data() + b * T_;
    for (int64_t i = T_ - 1; i >= 0; i--) e[i] = i + 1 < T_ && l[i + 1] == l[i] ? e[i + 1] : int32_t(i + 1);
  }
#if defined(__AVX512BF16__)
  if constexpr (std::is_same_v<T, bf16>) {
    backward_passes<DkvBufsDp, DqBufsDp>(
        d, out, dout, delta.data(),
        [&](int64_t b, int64_t h, int64_t blk, const DkvBufsDp& w) {
          dkv_task_dp(d, scale, q, k, v, dout, lse, delta.data(), lo, ends.data(), dk, dv, b, h, blk, w);
        },
        [&](int64_t b, int64_t h, int64_t blk, const DqBufsDp& w) { dq_task_dp(d, scale, q, k, v, dout, lse, delta.data(), lo, dq, b, h, blk, w); });
    return;
  }
#endif
  backward_passes<DkvBufs, DqBufs>(
      d, out, dout, delta.data(),
      [&](int64_t b, int64_t h, int64_t blk, const DkvBufs& w) {
        dkv_task(d, scale, q, k, v, dout, lse, delta.data(), lo, ends.data(), dk, dv, b, h, blk, w);
      },
      [&](int64_t b, int64_t h, int64_t blk, const DqBufs& w) { dq_task(d, scale, q, k, v, dout, lse, delta.data(), lo, dq, b, h, blk, w); });
}

}  // namespace

void attention_forward(DType dt, int64_t B, int64_t Tq, int64_t Tk, int64_t Hq, int64_t Hkv,
                       int64_t D, float scale, const void* q, const void* k, const void* v,
                       const int32_t* cu_seqlens, int64_t docs, void* out, float* lse) {
  const char* op = "attention";
  const Dims d{B, Tq, Tk, Hq, Hkv, D};
  scale = check(op, dt, d, scale);
  if (B == 0 || Tq == 0) return;
  if (!q || !k || !v || !out || !lse) fail(op, "null data pointer");
  const std::vector<int32_t> lo = first_keys(op, d, cu_seqlens, docs);
  if (dt == DType::BF16) {
    forward(d, scale, (const bf16*)q, (const bf16*)k, (const bf16*)v, lo.data(), (bf16*)out, lse);
  } else {
    forward(d, scale, (const float*)q, (const float*)k, (const float*)v, lo.data(), (float*)out, lse);
  }
}

void attention_backward(DType dt, int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                        float scale, const void* q, const void* k, const void* v,
                        const int32_t* cu_seqlens, int64_t docs, const void* out, const void* dout, const float* lse,
                        void* dq, void* dk, void* dv) {
  const char* op = "attention_backward";
  const Dims d{B, T, T, Hq, Hkv, D};
  scale = check(op, dt, d, scale);
  if (B == 0 || T == 0) return;
  if (!q || !k || !v || !out || !dout || !lse || !dq || !dk || !dv) fail(op, "null data pointer");
  const std::vector<int32_t> lo = first_keys(op, d, cu_seqlens, docs);
  if (dt == DType::BF16) {
    backward(d, scale, (const bf16*)q, (const bf16*)k, (const bf16*)v, lo.data(), (const bf16*)out,
             (const bf16*)dout, lse, (bf16*)dq, (bf16*)dk, (bf16*)dv);
  } else {
    backward(d, scale, (const float*)q, (const float*)k, (const float*)v, lo.data(), (const float*)out,
             (const float*)dout, lse, (float*)dq, (float*)dk, (float*)dv);
  }
}

}  // namespace pt
