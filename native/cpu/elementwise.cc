#include "elementwise.h"

#include <algorithm>
#include <vector>

namespace pt {

template <typename T>
static void add_t(int64_t n, const T* a, const T* b, T* out) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) store(out, i, load(a, i) + load(b, i));
}

void add(DType dt, int64_t n, const void* a, const void* b, void* out) {
  if (dt == DType::BF16) add_t(n, (const bf16*)a, (const bf16*)b, (bf16*)out);
  else add_t(n, (const float*)a, (const float*)b, (float*)out);
}

template <typename S, typename D>
static void cast_t(int64_t n, const S* src, D* dst) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) store(dst, i, load(src, i));
}

void cast(DType src_dt, DType dst_dt, int64_t n, const void* src, void* dst) {
  if (src_dt == dst_dt) {
    // The binding allows src and dst only disjoint or identical, so 1 MiB pieces copy in parallel.
    const size_t bytes = size_t(n) * dtype_size(src_dt);
    constexpr size_t kPiece = size_t(1) << 20;
    const int64_t pieces = int64_t((bytes + kPiece - 1) / kPiece);
    if (src == dst) return;
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (int64_t p = 0; p < pieces; p++) {
      const size_t off = size_t(p) * kPiece;
      std::memcpy(static_cast<char*>(dst) + off, static_cast<const char*>(src) + off, std::min(kPiece, bytes - off));
    }
  } else if (src_dt == DType::BF16 && dst_dt == DType::F32) {
    cast_t(n, (const bf16*)src, (float*)dst);
  } else if (src_dt == DType::F32 && dst_dt == DType::BF16) {
    cast_t(n, (const float*)src, (bf16*)dst);
  } else {
    throw OpError(std::string("cast: unsupported ") + dtype_name(src_dt) + " -> " + dtype_name(dst_dt));
  }
}

void fill(DType dt, int64_t n, double value, void* dst) {
  if (dt == DType::I32) {
    int32_t* d = (int32_t*)dst;
    for (int64_t i = 0; i < n; i++) d[i] = int32_t(value);
  } else if (dt == DType::F32) {
    float* d = (float*)dst;
    for (int64_t i = 0; i < n; i++) d[i] = float(value);
  } else {
    bf16 v = f32_to_bf16(float(value));
    bf16* d = (bf16*)dst;
    for (int64_t i = 0; i < n; i++) d[i] = v;
  }
}

template <typename T>
static void scale_t(int64_t n, float s, T* x) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) store(x, i, load(x, i) * s);
}

void scale(DType dt, int64_t n, float s, void* x) {
  if (dt == DType::BF16) scale_t(n, s, (bf16*)x);
  else scale_t(n, s, (float*)x);
}

// Fixed-size blocks summed in index order: the norm (and so the clipping and the weights) does not
// depend on how many threads ran, which exact resume on another machine needs. Within a block,
// element i goes to running sum i % 16 and the 16 sums are added in order at the end: 16
// independent chains the compiler vectorises, where one sum waited an add's latency per element
// (19 ms of a 196 ms bf16 step at h512, 15x its bandwidth bound). The same bits on every ISA: a
// square of a bf16 or f32 value is exact in double, so with or without FMA every add is the same.
template <typename T>
static double sumsq_t(int64_t n, const T* x) {
  constexpr int64_t kBlock = 1 << 16, kLanes = 16;
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> part(size_t(nb), 0.0);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t b = 0; b < nb; b++) {
    double acc[kLanes] = {};
    const int64_t begin = b * kBlock, end = std::min(n, begin + kBlock);
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes)
      for (int64_t j = 0; j < kLanes; j++) {
        const double v = load(x, i + j);
        acc[j] += v * v;
      }
    for (int64_t j = 0; i < end; i++, j++) {
      const double v = load(x, i);
      acc[j] += v * v;
    }
    double s = 0;
    for (int64_t j = 0; j < kLanes; j++) s += acc[j];
    part[size_t(b)] = s;
  }
  double total = 0;
  for (double p : part) total += p;
  return total;
}

double sum_squares(DType dt, int64_t n, const void* x) {
  return dt == DType::BF16 ? sumsq_t(n, (const bf16*)x) : sumsq_t(n, (const float*)x);
}

}  // namespace pt
