#include "cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "bf16_pairs.h"
#include "vec.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
#define PT_CE_AVX512 1
#else
#define PT_CE_AVX512 0
#endif

namespace pt {

// Builds without AVX-512 (AVX2, portable): a chunk of a row stays in L1 between its max pass and
// its exp pass, so the logits come from memory once for the loss (and once more, from L2 for a
// 32k vocabulary, for the gradient). AVX-512 builds use run_avx512 below.
static constexpr int64_t kChunk = 4096;

using N = vec::Native;
using S = vec::Scalar;

template <typename T>
static float chunk_max(const T* x, int64_t n, float init) {
  typename N::V m0 = N::set1(init), m1 = m0;
  int64_t c = 0;
  for (; c + 2 * N::W <= n; c += 2 * N::W) {
    m0 = N::max(m0, N::load(x + c));
    m1 = N::max(m1, N::load(x + c + N::W));
  }
  for (; c + N::W <= n; c += N::W) m0 = N::max(m0, N::load(x + c));
  float m = N::reduce_max(N::max(m0, m1));
  for (; c < n; c++) m = S::max(m, S::load(x + c));
  return m;
}

// Sum of exp(x - shift) in a fixed order (four vector accumulators, then the remainder); with
// `keep`, each exp is also stored there so the gradient pass need not compute it again.
template <bool Keep, typename T>
static float chunk_sum_exp(const T* x, int64_t n, float shift, float* keep) {
  const typename N::V sh = N::set1(shift);
  typename N::V s0 = N::set1(0.f), s1 = s0, s2 = s0, s3 = s0;
  auto e = [&](int64_t c) {
    const typename N::V v = N::exp(N::sub(N::load(x + c), sh));
    if constexpr (Keep) N::store(keep + c, v);
    return v;
  };
  int64_t c = 0;
  for (; c + 4 * N::W <= n; c += 4 * N::W) {
    s0 = N::add(s0, e(c));
    s1 = N::add(s1, e(c + N::W));
    s2 = N::add(s2, e(c + 2 * N::W));
    s3 = N::add(s3, e(c + 3 * N::W));
  }
  for (; c + N::W <= n; c += N::W) s0 = N::add(s0, e(c));
  float s = N::reduce_add(N::add(N::add(s0, s1), N::add(s2, s3)));
  for (; c < n; c++) {
    const float v = S::exp(S::load(x + c) - shift);
    if constexpr (Keep) keep[c] = v;
    s += v;
  }
  return s;
}

// d[c] = f · e[c] = scale · exp(x[c] - lse), with f = scale · exp(shift - lse) for the chunk.
template <class V_, typename T>
static inline void grad_at(const float* e, T* d, int64_t c, typename V_::V f) {
  V_::store(d + c, V_::mul(f, V_::load(e + c)));
}

template <typename T>
static void run_chunked(int64_t N_, int64_t V, const T* logits, const int32_t* targets,
                        int32_t ignore, float* row_loss, T* dlogits, float grad_scale) {
  // With a gradient, each thread keeps its row's exps (fp32, V floats: in L2 for a 32k vocabulary)
  // and each chunk's shift; allocated here, since nothing may throw inside the parallel region.
  const bool parallel = N_ * V >= kParallelMin;
  const int nt = parallel ? num_threads() : 1;
  const int64_t nchunks = (V + kChunk - 1) / kChunk;
  std::vector<float> keep(dlogits ? size_t(nt) * size_t(V) : 0), shifts(dlogits ? size_t(nt) * size_t(nchunks) : 0);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t n = 0; n < N_; n++) {
    const int tid = thread_index();
    float* const e = dlogits ? keep.data() + size_t(tid) * size_t(V) : nullptr;
    float* const sh = dlogits ? shifts.data() + size_t(tid) * size_t(nchunks) : nullptr;
    const T* row = logits + n * V;
    const int32_t t = targets[n];
    if (t == ignore) {
      row_loss[n] = 0.f;
      if (dlogits) std::memset((void*)(dlogits + n * V), 0, sizeof(T) * size_t(V));
      continue;
    }
    float mx = -std::numeric_limits<float>::infinity();
    float sum = 0.f;
    for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
      const int64_t len = std::min(V, c0 + kChunk) - c0;
      const float cmx = chunk_max(row + c0, len, mx);
      if (sh) sh[c0 / kChunk] = cmx;
      if (cmx == -std::numeric_limits<float>::infinity()) continue;  // all -inf so far: nothing to add
      const float s = e ? chunk_sum_exp<true>(row + c0, len, cmx, e + c0) : chunk_sum_exp<false>(row + c0, len, cmx, nullptr);
      sum = sum * vexp::exp_scalar(mx - cmx) + s;
      mx = cmx;
    }
    const float lse = mx + std::log(sum);
    const float xt = load(row, t);  // read before the gradient may overwrite it (dlogits may alias)
    row_loss[n] = float(double(lse) - double(xt));
    if (dlogits) {
      T* drow = dlogits + n * V;
      for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
        const int64_t end = std::min(V, c0 + kChunk);
        const float shift = sh[c0 / kChunk];
        if (shift == -std::numeric_limits<float>::infinity()) {  // a leading all -inf chunk: p = 0
          for (int64_t c = c0; c < end; c++) store(drow, c, 0.f);
          continue;
        }
        const float f = grad_scale * vexp::exp_scalar(shift - lse);
        const typename N::V fv = N::set1(f);
        int64_t c = c0;
        for (; c + N::W <= end; c += N::W) grad_at<N>(e, drow, c, fv);
        for (; c < end; c++) grad_at<S>(e, drow, c, f);
      }
      // The target's probability from the same product, minus one (0 - 1 for a skipped -inf chunk).
      const float tshift = sh[t / kChunk];
      const float pt = tshift == -std::numeric_limits<float>::infinity() ? 0.f : e[t] * vexp::exp_scalar(tshift - lse);
      store(drow, t, grad_scale * pt - grad_scale);
    }
  }
}

#if PT_CE_AVX512
// One read of the logits for the loss. Each of the 16 lanes keeps its own shift m and sums of
// exp(x - m) over the logits it sees (32-logit blocks, as two f32 vectors). m is lazy: it is set
// to the lane's largest logit over the first group of blocks and raised only when a group's sums
// reach 2^64 (a logit more than ~44 above m), by doing that group again. On ordinary logits no
// max pass, no compare per vector and no horizontal reduction happen until the row's end. With
// the gradient, the exps are kept (fp32, in block order) and each span of blocks with one m is
// recorded, so the gradient is one multiply by scale · exp(m - lse) per logit (never subnormal:
// m is at most ~44 + log V below lse); a row whose m moves more than kMaxSpans times (logits
// sorted upwards) computes its gradient as scale · exp(x - lse) instead. One thread does a whole
// row in a fixed order and the tail block is masked (filled with -inf), so the results do not
// depend on the thread count.
static constexpr int64_t kGroup = 8;  // blocks between checks of the sums
static constexpr float kRedo = 0x1p64f;
static constexpr int kMaxSpans = 64;

static inline __mmask16 tail_mask16(int64_t n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

// The kept exps and the gradient use bf16_pairs' even/odd order; the tail reads -inf. bf16 logits
// are half the bytes of f32 for the same exps, so their kernel is compute bound: it takes the
// cheaper exp512_fast (its relative error, 1.7e-7 + |x|·7.3e-8, grows only for terms far below
// the lane's shift, which add nothing to the sum, and stays far below a bf16 gradient's rounding).
// f32 logits keep exp512_table (1.07 ulp): their kernel waits on memory either way.
struct Bf16Block {
  using T = bf16;
  static inline __m512 exp(__m512 x) { return vexp::exp512_fast(x); }
  static inline __m512 exp_finite(__m512 x) { return vexp::exp512_fast_finite(x); }
  static inline void load(const bf16* p, __m512& a, __m512& b) { bf16_pairs::split(_mm512_loadu_si512(p), a, b); }
  static inline void load_tail(const bf16* p, int64_t n, __m512& a, __m512& b) {
    bf16_pairs::split(_mm512_mask_loadu_epi16(_mm512_set1_epi16(int16_t(0xff80)), bf16_pairs::tail_mask(n), p), a, b);
  }
  static inline void store(bf16* p, __m512 a, __m512 b) { _mm512_storeu_si512(p, bf16_pairs::pack(a, b)); }
  static inline void store_tail(bf16* p, int64_t n, __m512 a, __m512 b) { _mm512_mask_storeu_epi16(p, bf16_pairs::tail_mask(n), bf16_pairs::pack(a, b)); }
};

struct F32Block {
  using T = float;
  static inline __m512 exp(__m512 x) { return vexp::exp512_table(x); }
  static inline __m512 exp_finite(__m512 x) { return vexp::exp512_table(x); }
  static inline void load(const float* p, __m512& a, __m512& b) { a = _mm512_loadu_ps(p); b = _mm512_loadu_ps(p + 16); }
  static inline void load_tail(const float* p, int64_t n, __m512& a, __m512& b) {
    const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    a = _mm512_mask_loadu_ps(ninf, tail_mask16(n), p);
    b = _mm512_mask_loadu_ps(ninf, tail_mask16(n - 16), p + 16);
  }
  static inline void store(float* p, __m512 a, __m512 b) { _mm512_storeu_ps(p, a); _mm512_storeu_ps(p + 16, b); }
  static inline void store_tail(float* p, int64_t n, __m512 a, __m512 b) {
    _mm512_mask_storeu_ps(p, tail_mask16(n), a);
    _mm512_mask_storeu_ps(p + 16, tail_mask16(n - 16), b);
  }
};

struct Span {
  int64_t begin;  // first block with this shift
  __m512 shift;
};

template <class B>
static inline void get_block(const typename B::T* row, int64_t V, int64_t b, __m512& xa, __m512& xb) {
  if (b * 32 + 32 <= V) B::load(row + b * 32, xa, xb);
  else B::load_tail(row + b * 32, V - b * 32, xa, xb);
}

template <class B, bool Keep>
static float row_lse(const typename B::T* row, int64_t V, float* keep, Span* spans, int& nspans) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::max());  // finite: -inf - m is -inf, not NaN
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  const int64_t nb = (V + 31) / 32;
  nspans = 0;
  // The group's sums of exp(x - m) from the sums before it (its exps kept for the gradient).
  // First pass over a group: B::exp_finite on full blocks (NaN for a -inf logit, which sends the
  // group to the redo below); the tail block (filled with -inf) and redone groups use B::exp.
  // Both give the same bits for finite inputs.
  auto sum_group = [&](int64_t g, int64_t ge, __m512 a0, __m512 a1, bool exact) {
    for (int64_t b = g; b < ge; b++) {
      __m512 xa, xb, ea, eb;
      if (b * 32 + 32 <= V && !exact) {
        B::load(row + b * 32, xa, xb);
        ea = B::exp_finite(_mm512_sub_ps(xa, m)), eb = B::exp_finite(_mm512_sub_ps(xb, m));
      } else {
        get_block<B>(row, V, b, xa, xb);
        ea = B::exp(_mm512_sub_ps(xa, m)), eb = B::exp(_mm512_sub_ps(xb, m));
      }
      if (Keep) {
        _mm512_storeu_ps(keep + b * 32, ea);
        _mm512_storeu_ps(keep + b * 32 + 16, eb);
      }
      a0 = _mm512_add_ps(a0, ea);
      a1 = _mm512_add_ps(a1, eb);
    }
    s0 = a0;
    s1 = a1;
  };
  // Each lane's shift to the largest logit it has seen up to the group's end, the sums before
  // the group rescaled to it.
  auto raise = [&](int64_t g, int64_t ge, __m512& a0, __m512& a1) {
    __m512 mx = m;
    for (int64_t b = g; b < ge; b++) {
      __m512 xa, xb;
      get_block<B>(row, V, b, xa, xb);
      mx = _mm512_maskz_max_ps(0xffff, mx, _mm512_maskz_max_ps(0xffff, xa, xb));
    }
    const __m512 r = vexp::exp512(_mm512_sub_ps(m, mx));
    a0 = _mm512_mul_ps(a0, r);
    a1 = _mm512_mul_ps(a1, r);
    m = mx;
    if (Keep && nspans++ < kMaxSpans) spans[nspans - 1] = {g, m};
  };
  const __m512 big = _mm512_set1_ps(kRedo);
  for (int64_t g = 0; g < nb; g += kGroup) {
    const int64_t ge = std::min(nb, g + kGroup);
    __m512 a0 = s0, a1 = s1;
    if (g == 0) raise(g, ge, a0, a1);
    sum_group(g, ge, a0, a1, false);
    // A sum at or past 2^64 (or inf, NaN): a -inf logit met by exp_finite, or a logit far above
    // its lane's shift. The group is done again with B::exp, then, if the sums are still that
    // large, with the shift raised; NaN from NaN or +inf logits stays.
    auto too_big = [&] { return _mm512_kor(_mm512_cmp_ps_mask(s0, big, _CMP_NLT_UQ), _mm512_cmp_ps_mask(s1, big, _CMP_NLT_UQ)) != 0; };
    if (__builtin_expect(too_big(), 0)) {
      sum_group(g, ge, a0, a1, true);
      if (too_big()) {
        raise(g, ge, a0, a1);
        sum_group(g, ge, a0, a1, true);
      }
    }
  }
  // Lanes to the row's largest shift, then one fixed-order reduction.
  const float mg = vec::Avx512::reduce_max(m);
  const __m512 w = vexp::exp512(_mm512_sub_ps(m, _mm512_set1_ps(mg)));
  const float sum = vec::Avx512::reduce_add(_mm512_mul_ps(_mm512_add_ps(s0, s1), w));
  return sum == 0.f ? -std::numeric_limits<float>::infinity() : mg + std::log(sum);
}

template <class B>
static void row_grad(const typename B::T* row, typename B::T* drow, int64_t V, float lse, float scale,
                     const float* keep, const Span* spans, int nspans) {
  const int64_t nb = (V + 31) / 32;
  auto put = [&](int64_t b, __m512 da, __m512 db) {
    if (b * 32 + 32 <= V) B::store(drow + b * 32, da, db);
    else B::store_tail(drow + b * 32, V - b * 32, da, db);
  };
  const __m512 sv = _mm512_set1_ps(scale), lv = _mm512_set1_ps(lse);
  if (nspans <= kMaxSpans) {
    for (int i = 0; i < nspans; i++) {
      const __m512 f = _mm512_mul_ps(sv, vexp::exp512(_mm512_sub_ps(spans[i].shift, lv)));
      const int64_t end = i + 1 < nspans ? spans[i + 1].begin : nb;
      for (int64_t b = spans[i].begin; b < end; b++)
        put(b, _mm512_mul_ps(f, _mm512_loadu_ps(keep + b * 32)), _mm512_mul_ps(f, _mm512_loadu_ps(keep + b * 32 + 16)));
    }
  } else {
    for (int64_t b = 0; b < nb; b++) {
      __m512 xa, xb;
      if (b * 32 + 32 <= V) B::load(row + b * 32, xa, xb);
      else B::load_tail(row + b * 32, V - b * 32, xa, xb);
      put(b, _mm512_mul_ps(sv, vexp::exp512(_mm512_sub_ps(xa, lv))), _mm512_mul_ps(sv, vexp::exp512(_mm512_sub_ps(xb, lv))));
    }
  }
}

template <class B>
static void run_avx512(int64_t N_, int64_t V, const typename B::T* logits, const int32_t* targets,
                       int32_t ignore, float* row_loss, typename B::T* dlogits, float grad_scale) {
  using T = typename B::T;
  const bool parallel = N_ * V >= kParallelMin;
  const int nt = parallel ? num_threads() : 1;
  const size_t kept = size_t((V + 31) / 32 * 32);
  // Allocated here, since nothing may throw inside the parallel region.
  std::vector<float> keep(dlogits ? size_t(nt) * kept : 0);
  std::vector<Span> spans(dlogits ? size_t(nt) * kMaxSpans : 0);
  // Runs of up to 16 consecutive rows per thread: a thread's reads then continue from one row into
  // the next, which the hardware prefetcher follows (rows dealt one at a time leave a gap after each
  // row, and each row's stream starts cold: 0.89-0.91x the time with 16, two threads, 512 x 32000,
  // bf16 and f32, loss and gradient); at least 8 runs per thread, so short batches still balance.
  const int64_t run = std::max<int64_t>(1, std::min<int64_t>(16, N_ / (8 * int64_t(nt))));
#pragma omp parallel for schedule(dynamic, run) if (parallel)
  for (int64_t n = 0; n < N_; n++) {
    const int tid = thread_index();
    const T* row = logits + n * V;
    const int32_t t = targets[n];
    if (t == ignore) {
      row_loss[n] = 0.f;
      if (dlogits) std::memset((void*)(dlogits + n * V), 0, sizeof(T) * size_t(V));
      continue;
    }
    const float xt = load(row, t);  // read before the gradient may overwrite it (dlogits may alias)
    int nspans = 0;
    if (!dlogits) {
      row_loss[n] = float(double(row_lse<B, false>(row, V, nullptr, nullptr, nspans)) - double(xt));
      continue;
    }
    float* const e = keep.data() + size_t(tid) * kept;
    Span* const sp = spans.data() + size_t(tid) * kMaxSpans;
    const float lse = row_lse<B, true>(row, V, e, sp, nspans);
    row_loss[n] = float(double(lse) - double(xt));
    T* drow = dlogits + n * V;
    if (lse == -std::numeric_limits<float>::infinity()) {  // every logit -inf: p = 0
      std::memset((void*)drow, 0, sizeof(T) * size_t(V));
    } else {
      row_grad<B>(row, drow, V, lse, grad_scale, e, sp, nspans);
    }
    const float pt = lse == -std::numeric_limits<float>::infinity() ? 0.f : vexp::exp_scalar(xt - lse);
    store(drow, t, grad_scale * pt - grad_scale);
  }
}
#endif

void cross_entropy(DType dt, int64_t N, int64_t V, const void* logits, const int32_t* targets,
                   int32_t ignore_index, float* row_loss, void* dlogits, float grad_scale) {
  for (int64_t n = 0; n < N; n++) {
    if (targets[n] != ignore_index && (targets[n] < 0 || targets[n] >= V)) {
      throw OpError("cross_entropy: target " + std::to_string(targets[n]) + " at row " +
                    std::to_string(n) + " is outside the vocabulary [0, " + std::to_string(V) +
                    ") and is not the ignore index " + std::to_string(ignore_index));
    }
  }
#if PT_CE_AVX512
  if (dt == DType::BF16)
    return run_avx512<Bf16Block>(N, V, (const bf16*)logits, targets, ignore_index, row_loss, (bf16*)dlogits, grad_scale);
  return run_avx512<F32Block>(N, V, (const float*)logits, targets, ignore_index, row_loss, (float*)dlogits, grad_scale);
#else
  if (dt == DType::BF16)
    return run_chunked(N, V, (const bf16*)logits, targets, ignore_index, row_loss, (bf16*)dlogits, grad_scale);
  return run_chunked(N, V, (const float*)logits, targets, ignore_index, row_loss, (float*)dlogits, grad_scale);
#endif
}

}  // namespace pt
