#include "embedding.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace pt {

void check_ids(const char* op, int64_t N, int64_t V, const int32_t* ids) {
  for (int64_t n = 0; n < N; n++) {
    if (ids[n] < 0 || ids[n] >= V) {
      throw OpError(std::string(op) + ": token id " + std::to_string(ids[n]) + " at position " +
                    std::to_string(n) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
    }
  }
}

// Returns whether every id was inside the table; a row with one outside it is skipped, not read.
template <typename T>
static bool forward(int64_t N, int64_t V, int64_t C, const int32_t* ids, const T* w, T* out) {
  bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    if (ids[n] < 0 || ids[n] >= V) ok = false;
    else std::memcpy(out + n * C, w + int64_t(ids[n]) * C, C * sizeof(T));
  }
  return ok;
}

template <typename T>
static void backward(int64_t N, int64_t V, int64_t C, const int32_t* ids, const T* dout, T* dw) {
  if (N == 0) return;
  // Sorting positions by id gives each thread whole ids, so no two threads touch one row.
  std::vector<int64_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a] < ids[b]; });
  // Sorted, the ids are inside the table exactly when the smallest and the largest are: no extra
  // pass over them (the Batch checked them on the host), and still nothing written on an error.
  if (ids[order[0]] < 0 || ids[order[N - 1]] >= V) check_ids("embedding_backward", N, V, ids);
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < N; i++) {
    if (i == 0 || ids[order[i]] != ids[order[i - 1]]) starts.push_back(i);
  }
  starts.push_back(N);
  const int64_t groups = int64_t(starts.size()) - 1;
  // Scratch is allocated before the parallel region: an exception inside one would terminate.
  std::vector<float> scratch(size_t(num_threads()) * size_t(C));
#pragma omp parallel if (N * C >= kParallelMin)
  {
#ifdef _OPENMP
    float* acc = scratch.data() + size_t(omp_get_thread_num()) * size_t(C);
#else
    float* acc = scratch.data();
#endif
#pragma omp for schedule(dynamic, 16)
    for (int64_t g = 0; g < groups; g++) {
      const int64_t id = ids[order[starts[g]]];
      T* row = dw + id * C;
      for (int64_t c = 0; c < C; c++) acc[c] = load(row, c);
      for (int64_t i = starts[g]; i < starts[g + 1]; i++) {
        const T* src = dout + order[i] * C;
        for (int64_t c = 0; c < C; c++) acc[c] += load(src, c);
      }
      for (int64_t c = 0; c < C; c++) store(row, c, acc[c]);
    }
  }
}

void embedding_forward(DType dt, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                       const void* weight, void* out) {
  const bool ok = dt == DType::BF16 ? forward(N, V, C, ids, (const bf16*)weight, (bf16*)out)
                                    : forward(N, V, C, ids, (const float*)weight, (float*)out);
  if (!ok) check_ids("embedding", N, V, ids);
}

void embedding_backward(DType dt, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                        const void* dout, void* dweight) {
  if (dt == DType::BF16) backward(N, V, C, ids, (const bf16*)dout, (bf16*)dweight);
  else backward(N, V, C, ids, (const float*)dout, (float*)dweight);
}

}  // namespace pt
