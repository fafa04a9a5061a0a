#include "cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "vec.h"

namespace pt {

// A chunk of a row stays in L1 between its max pass and its exp pass, so the logits come from
// memory once for the loss (and once more, from L2 for a 32k vocabulary, for the gradient).
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
static void run(int64_t N_, int64_t V, const T* logits, const int32_t* targets,
                int32_t ignore, float* row_loss, T* dlogits, float grad_scale) {
  // With a gradient, each thread keeps its row's exps (fp32, V floats: in L2 for a 32k vocabulary)
  // and each chunk's shift; allocated here, since nothing may throw inside the parallel region.
  const bool parallel = N_ * V >= kParallelMin;
  const int nt = parallel ? num_threads() : 1;
  const int64_t nchunks = (V + kChunk - 1) / kChunk;
  std::vector<float> keep(dlogits ? size_t(nt) * size_t(V) : 0), shifts(dlogits ? size_t(nt) * size_t(nchunks) : 0);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t n = 0; n < N_; n++) {
#ifdef _OPENMP
    const int tid = omp_get_thread_num();
#else
    const int tid = 0;
#endif
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

void cross_entropy(DType dt, int64_t N, int64_t V, const void* logits, const int32_t* targets,
                   int32_t ignore_index, float* row_loss, void* dlogits, float grad_scale) {
  for (int64_t n = 0; n < N; n++) {
    if (targets[n] != ignore_index && (targets[n] < 0 || targets[n] >= V)) {
      throw OpError("cross_entropy: target " + std::to_string(targets[n]) + " at row " +
                    std::to_string(n) + " is outside the vocabulary [0, " + std::to_string(V) +
                    ") and is not the ignore index " + std::to_string(ignore_index));
    }
  }
  if (dt == DType::BF16)
    return run(N, V, (const bf16*)logits, targets, ignore_index, row_loss, (bf16*)dlogits, grad_scale);
  return run(N, V, (const float*)logits, targets, ignore_index, row_loss, (float*)dlogits, grad_scale);
}

}  // namespace pt
