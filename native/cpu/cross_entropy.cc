#include "cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace pt {

static constexpr int64_t kChunk = 4096;

template <typename T>
static CrossEntropyResult run(int64_t N, int64_t V, const T* logits, const int32_t* targets,
                              int32_t ignore, T* dlogits, float grad_scale) {
  // Per-row losses summed in row order afterwards: the same total whatever the thread count.
  std::vector<double> row_loss(size_t(N), 0.0);
#pragma omp parallel for schedule(dynamic, 1) if (N * V >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const T* row = logits + n * V;
    const int32_t t = targets[n];
    if (t == ignore) {
      if (dlogits) std::memset((void*)(dlogits + n * V), 0, sizeof(T) * size_t(V));
      continue;
    }
    float mx = -std::numeric_limits<float>::infinity();
    float sum = 0.f;
    for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
      const int64_t c1 = std::min(V, c0 + kChunk);
      float cmx = mx;
      for (int64_t c = c0; c < c1; c++) cmx = std::max(cmx, load(row, c));
      if (cmx == -std::numeric_limits<float>::infinity()) continue;  // all -inf so far: nothing to add
      float s = 0.f;
      for (int64_t c = c0; c < c1; c++) s += std::exp(load(row, c) - cmx);
      sum = sum * std::exp(mx - cmx) + s;
      mx = cmx;
    }
    const float lse = mx + std::log(sum);
    row_loss[size_t(n)] = double(lse) - double(load(row, t));
    if (dlogits) {
      T* drow = dlogits + n * V;
      for (int64_t c = 0; c < V; c++) {
        const float p = std::exp(load(row, c) - lse);
        store(drow, c, grad_scale * (p - (c == t ? 1.f : 0.f)));
      }
    }
  }
  double loss = 0;
  int64_t count = 0;
  for (int64_t n = 0; n < N; n++) {
    if (targets[n] == ignore) continue;
    loss += row_loss[size_t(n)];
    count++;
  }
  return {loss, count};
}

CrossEntropyResult cross_entropy(DType dt, int64_t N, int64_t V, const void* logits,
                                 const int32_t* targets, int32_t ignore_index, void* dlogits,
                                 float grad_scale) {
  for (int64_t n = 0; n < N; n++) {
    if (targets[n] != ignore_index && (targets[n] < 0 || targets[n] >= V)) {
      throw OpError("cross_entropy: target " + std::to_string(targets[n]) + " at row " +
                    std::to_string(n) + " is outside the vocabulary [0, " + std::to_string(V) +
                    ") and is not the ignore index " + std::to_string(ignore_index));
    }
  }
  if (dt == DType::BF16)
    return run(N, V, (const bf16*)logits, targets, ignore_index, (bf16*)dlogits, grad_scale);
  return run(N, V, (const float*)logits, targets, ignore_index, (float*)dlogits, grad_scale);
}

}  // namespace pt
