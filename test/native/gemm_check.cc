// pt::gemm as compiled for one ISA path (the flags the test passes pick AVX512-BF16 pairs, AVX-512
// or AVX2 fp32 tiles, or the portable loops) against double-precision sums: the three training
// forms, edge tiles, k tails, accumulate. Prints {"isa", "checked", "bad"}; the first bad outputs
// go to stderr.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include "cpu/gemm.h"
int main() {
  std::mt19937 rng(3);
  std::normal_distribution<float> N01;
  int bad = 0, checked = 0;
  const long shapes[][3] = {{1, 5, 7}, {15, 33, 17}, {29, 65, 600}, {40, 3, 2}, {70, 259, 130}, {33, 47, 1031}};
  for (int d = 0; d < 2; d++)
    for (auto& s : shapes)
      for (int form = 0; form < 3; form++) {
        const long M = s[0], Nn = s[1], K = s[2];
        const bool tA = form == 1, tB = form == 2, acc = form == 1;
        const bool bf = d == 0;
        std::vector<float> a(M * K), b(K * Nn), c0(M * Nn);
        auto q = [&](float x) { return bf ? pt::bf16_to_f32(pt::f32_to_bf16(x)) : x; };
        for (auto& x : a) x = q(N01(rng));
        for (auto& x : b) x = q(N01(rng));
        for (auto& x : c0) x = q(N01(rng));
        std::vector<uint16_t> ah(a.size()), bh(b.size()), ch(c0.size());
        for (size_t i = 0; i < a.size(); i++) ah[i] = pt::f32_to_bf16(a[i]);
        for (size_t i = 0; i < b.size(); i++) bh[i] = pt::f32_to_bf16(b[i]);
        for (size_t i = 0; i < c0.size(); i++) ch[i] = pt::f32_to_bf16(c0[i]);
        std::vector<float> cf = c0;
        const long lda = tA ? M : K, ldb = tB ? K : Nn;
        if (bf) pt::gemm(pt::DType::BF16, tA, tB, M, Nn, K, ah.data(), lda, bh.data(), ldb, ch.data(), Nn, acc);
        else pt::gemm(pt::DType::F32, tA, tB, M, Nn, K, a.data(), lda, b.data(), ldb, cf.data(), Nn, acc);
        for (long m = 0; m < M; m++)
          for (long n = 0; n < Nn; n++) {
            double sum = acc ? c0[m * Nn + n] : 0, mag = std::fabs(sum);
            for (long k = 0; k < K; k++) {
              const double p = double(tA ? a[k * M + m] : a[m * K + k]) * (tB ? b[n * K + k] : b[k * Nn + n]);
              sum += p; mag += std::fabs(p);
            }
            const double got = bf ? pt::bf16_to_f32(ch[m * Nn + n]) : cf[m * Nn + n];
            const double tol = (K + 2) * std::ldexp(1.0, -24) * mag + (bf ? std::ldexp(1.0, -8) * std::fabs(sum) : 0) + 1e-30;
            checked++;
            if (!(std::fabs(got - sum) <= tol) && bad++ < 5) fprintf(stderr, "bad %s %ldx%ldx%ld form %d [%ld][%ld] %g vs %g\n", bf ? "bf16" : "f32", M, Nn, K, form, m, n, got, sum);
          }
      }
#if defined(__AVX512BF16__)
  const char* isa = "avx512bf16";
#elif defined(__AVX512F__)
  const char* isa = "avx512";
#elif defined(__AVX2__)
  const char* isa = "avx2";
#else
  const char* isa = "portable";
#endif
  printf("{\"isa\": \"%s\", \"checked\": %d, \"bad\": %d}\n", isa, checked, bad);
  return bad != 0;
}
