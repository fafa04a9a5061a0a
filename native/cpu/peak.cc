#include "peak.h"

#include <chrono>

#include "gemm_kernels.h"

namespace pt {

namespace {
#if defined(__AVX512F__)
// 12 independent accumulators cover the FMA latency (4 cycles) × 2 pipes with room to spare.
template <bool BF16>
inline __m512 step(__m512 acc, __m512 a, __m512 b) {
#if defined(__AVX512BF16__)
  if constexpr (BF16) return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_castps_si512(a), (__m512bh)_mm512_castps_si512(b));
#endif
  return _mm512_fmadd_ps(acc, a, b);
}

// 12 independent chains (named registers, never stored) cover the FMA latency on every core we know.
template <bool BF16>
double chains(int64_t iters) {
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
  // Distinct starting values, or the compiler merges identical chains into one.
  volatile float seed = 1e-3f;
  const __m512 d = _mm512_set1_ps(seed);
  __m512 c0 = d, c1 = _mm512_add_ps(c0, d), c2 = _mm512_add_ps(c1, d), c3 = _mm512_add_ps(c2, d),
         c4 = _mm512_add_ps(c3, d), c5 = _mm512_add_ps(c4, d), c6 = _mm512_add_ps(c5, d), c7 = _mm512_add_ps(c6, d),
         c8 = _mm512_add_ps(c7, d), c9 = _mm512_add_ps(c8, d), c10 = _mm512_add_ps(c9, d), c11 = _mm512_add_ps(c10, d);
  for (int64_t it = 0; it < iters; it++) {
    c0 = step<BF16>(c0, a, b); c1 = step<BF16>(c1, a, b); c2 = step<BF16>(c2, a, b);
    c3 = step<BF16>(c3, a, b); c4 = step<BF16>(c4, a, b); c5 = step<BF16>(c5, a, b);
    c6 = step<BF16>(c6, a, b); c7 = step<BF16>(c7, a, b); c8 = step<BF16>(c8, a, b);
    c9 = step<BF16>(c9, a, b); c10 = step<BF16>(c10, a, b); c11 = step<BF16>(c11, a, b);
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                                 _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)),
                                               _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11))));
  return double(_mm512_cvtss_f32(s));
}
constexpr double kFlopsPerIter[2] = {12 * 16 * 2, 12 * 16 * 4};
#endif
}  // namespace

double peak_gflops(bool bf16, double ms) {
#if defined(__AVX512F__)
#if !defined(__AVX512BF16__)
  if (bf16) return 0;
#endif
  // Each thread keeps its best rate over short rounds (about 0.5 ms): on a shared machine a round
  // that was preempted or waited for a sibling is not the peak. Peak = the sum of those rates.
  const int64_t iters = 1 << 13;
  const auto t_end = std::chrono::steady_clock::now() + std::chrono::microseconds(int64_t(ms * 1000));
  double total = 0;
  volatile double sink = 0;
#pragma omp parallel reduction(+ : total, sink)
  {
    double best = 0;
    do {
      const auto t0 = std::chrono::steady_clock::now();
      sink += bf16 ? chains<true>(iters) : chains<false>(iters);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, double(iters) * kFlopsPerIter[bf16 ? 1 : 0] / s / 1e9);
    } while (std::chrono::steady_clock::now() < t_end);
    total += best;
  }
  return total;
#else
  (void)bf16;
  (void)ms;
  return 0;  // the portable paths are not measured
#endif
}

const char* isa_path() {
#if defined(POLYTUNE_GEMM_AMX)
  if (gemm_detail::amx_available()) return "amx-bf16 + avx512f";
#endif
#if defined(__AVX512BF16__)
  return "avx512bf16 + avx512f (no amx)";
#elif defined(__AVX512F__)
  return "avx512f (no bf16 dot products)";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2 + fma";
#else
  return "generic C++";
#endif
}

bool amx_usable() {
#if defined(POLYTUNE_GEMM_AMX)
  return gemm_detail::amx_available();
#else
  return false;
#endif
}

}  // namespace pt
