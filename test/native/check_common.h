// What the standalone op checks (test/native/*_check.cc) share: tensors as a kernel sees them, the
// OpenMP thread count, and failure reports (the first ten go to stderr, all are counted).
#pragma once
#include <cstdio>
#include <random>
#include <string>
#include <vector>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "common.h"

namespace check {

using pt::bf16;
using pt::DType;

inline void set_threads(int n) {
#if defined(_OPENMP)
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

inline std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

inline void fail(int& counter, const std::string& what) {
  if (counter++ < 10) std::fprintf(stderr, "%s\n", what.c_str());
}

inline std::vector<float> normal(std::mt19937& rng, size_t n, float sd = 1.f) {
  std::normal_distribution<float> g(0.f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

// A tensor as the kernel sees it: bf16 values are rounded once, here, and read back exactly, so a
// reference computed from f works on the stored inputs.
struct Buf {
  DType dt;
  std::vector<float> f;
  std::vector<bf16> h;
  Buf(DType d, const std::vector<float>& v) : dt(d), f(v) {
    if (dt != DType::BF16) return;
    h.resize(v.size());
    for (size_t i = 0; i < v.size(); i++) {
      h[i] = pt::f32_to_bf16(v[i]);
      f[i] = pt::bf16_to_f32(h[i]);
    }
  }
  Buf(DType d, size_t n) : dt(d), f(n, 0.f), h(d == DType::BF16 ? n : 0, 0) {}
  void* data() { return dt == DType::BF16 ? static_cast<void*>(h.data()) : static_cast<void*>(f.data()); }
  const void* raw() const { return dt == DType::BF16 ? static_cast<const void*>(h.data()) : static_cast<const void*>(f.data()); }
  size_t bytes() const { return dt == DType::BF16 ? h.size() * 2 : f.size() * 4; }
  double at(size_t i) const { return dt == DType::BF16 ? pt::bf16_to_f32(h[i]) : f[i]; }
};

}  // namespace check
