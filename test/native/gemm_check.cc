// pt::gemm as compiled for one ISA path (the flags the test passes pick AVX512-BF16 pairs, AVX-512
// or AVX2 fp32 tiles, or the portable loops) against double-precision sums: the three training
// forms, edge tiles, k tails, accumulate (K = 4133: more than one of x·Wᵀ's deeper k-slices, the
// last one odd), x·Wᵀ also with padded rows (NaN in the padding). Then C's single rounding to
// bf16, exactly: with K = 1 (or 2, the second k's A zero) the fp32 sum is the exact product (plus
// the old C with accumulate), so every bf16 output must equal
// f32_to_bf16 of it bit for bit: ties to even, old C values that are bf16 subnormals kept (not
// flushed), NaN kept NaN, at row widths that end inside a 16-lane vector; both with C written by
// plain and by non-temporal stores (POLYTUNE_GEMM_STREAM_MB=0 forces the latter at any size).
// dY·W's B over several column chunks is packed whole in stripes, or chunk by chunk in a ring
// (POLYTUNE_GEMM_STRIPE_MB=0); shapes take turns, and 24×1100×2101 has an odd K over three of
// the f32 path's k-slices and two of the pair path's.
// Prints {"isa", "checked", "bad", "rounded", "roundBad"}; the first bad outputs go to stderr.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"  // POLYTUNE_GEMM_AMX and amx_available(), for the ISA label
int main() {
  std::mt19937 rng(3);
  std::normal_distribution<float> N01;
  int bad = 0, checked = 0;
  const long shapes[][3] = {{1, 5, 7},       {15, 33, 17},     {29, 65, 600},  {40, 3, 2},    {70, 259, 130},
                            {33, 47, 1031},  {120, 1060, 530}, {20, 40, 4133}, {24, 1100, 2101}, {60, 1030, 300}};
  for (int d = 0; d < 2; d++)
    for (auto& s : shapes)
      for (int form = 0; form < 3; form++) {
        // Every other shape with C written by non-temporal stores (the path of a C over 16 MiB).
        setenv("POLYTUNE_GEMM_STREAM_MB", (&s - shapes) % 2 ? "" : "0", 1);
        setenv("POLYTUNE_GEMM_STRIPE_MB", (&s - shapes) / 2 % 2 ? "0" : "", 1);
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
        // x·Wᵀ on every other shape with padded rows whose padding is NaN: a kernel that reads W or x
        // past K (the direct path reads W where it lies) turns its outputs into NaN.
        const long pad = tB && (&s - shapes) % 2 ? 6 : 0;
        const long lda = (tA ? M : K) + pad / 3, ldb = (tB ? K : Nn) + pad;
        auto padded = [&](auto& v, long rows, long cols, long ld, auto nan) {
          std::remove_reference_t<decltype(v)> out(size_t(rows * ld), nan);
          for (long r = 0; r < rows; r++) std::copy(v.begin() + r * cols, v.begin() + (r + 1) * cols, out.begin() + r * ld);
          v = out;
        };
        if (pad) {
          padded(a, M, K, lda, std::nanf(""));
          padded(ah, M, K, lda, uint16_t(0x7fc0));
          padded(b, Nn, K, ldb, std::nanf(""));
          padded(bh, Nn, K, ldb, uint16_t(0x7fc0));
        }
        if (bf) pt::gemm(pt::DType::BF16, tA, tB, M, Nn, K, ah.data(), lda, bh.data(), ldb, ch.data(), Nn, acc);
        else pt::gemm(pt::DType::F32, tA, tB, M, Nn, K, a.data(), lda, b.data(), ldb, cf.data(), Nn, acc);
        for (long m = 0; m < M; m++)
          for (long n = 0; n < Nn; n++) {
            double sum = acc ? c0[m * Nn + n] : 0, mag = std::fabs(sum);
            for (long k = 0; k < K; k++) {
              const double p = double(tA ? a[k * M + m] : a[m * lda + k]) * (tB ? b[n * ldb + k] : b[k * Nn + n]);
              sum += p; mag += std::fabs(p);
            }
            const double got = bf ? pt::bf16_to_f32(ch[m * Nn + n]) : cf[m * Nn + n];
            const double tol = (K + 2) * std::ldexp(1.0, -24) * mag + (bf ? std::ldexp(1.0, -8) * std::fabs(sum) : 0) + 1e-30;
            checked++;
            if (!(std::fabs(got - sum) <= tol) && bad++ < 5) fprintf(stderr, "bad %s %ldx%ldx%ld form %d [%ld][%ld] %g vs %g\n", bf ? "bf16" : "f32", M, Nn, K, form, m, n, got, sum);
          }
      }
  int rounded = 0, round_bad = 0;
  std::uniform_int_distribution<int> pick(0, 15);
  // K = 2 with A's second k zero is as exact, and takes x·Wᵀ down the direct path where there is
  // one (it reads W's k pairs where they lie and writes Cᵀ tiles transposed into C).
  for (long K : {1L, 2L})
  for (const char* stream : {"", "0"})
  for (long Nn : {5L, 16L, 33L, 70L})
    for (int form = 0; form < 3; form++)
      for (int acc = 0; acc < 2; acc++) {
        const long M = 37;
        const bool tA = form == 1, tB = form == 2;
        std::vector<uint16_t> a0(M), b0(Nn), ch(M * Nn);
        for (auto& x : a0) x = pt::f32_to_bf16(N01(rng));
        for (auto& x : b0) x = pt::f32_to_bf16(N01(rng));
        for (auto& x : ch) x = pt::f32_to_bf16(N01(rng));
        a0[3] = 0;                                                   // row 3: C = old C exactly
        for (long n = 0; n < Nn; n++) ch[3 * Nn + n] = uint16_t(1 + n % 0x7f);  // bf16 subnormals
        a0[5] = 0x7fc1;                                              // row 5: NaN
        for (long m = 0; m < M; m++)
          if (pick(rng) == 0 && m != 3 && m != 5) a0[m] = pt::f32_to_bf16(std::ldexp(1.f, -(m % 7)));  // exact products
        std::vector<uint16_t> ah(M * K, 0), bh(Nn * K);
        for (auto& x : bh) x = pt::f32_to_bf16(N01(rng));            // k = 1: finite, times A's zero
        for (long m = 0; m < M; m++) ah[tA ? m : m * K] = a0[m];
        for (long n = 0; n < Nn; n++) bh[tB ? n * K : n] = b0[n];
        const std::vector<uint16_t> c0 = ch;
        setenv("POLYTUNE_GEMM_STREAM_MB", stream, 1);
        pt::gemm(pt::DType::BF16, tA, tB, M, Nn, K, ah.data(), tA ? M : K, bh.data(), tB ? K : Nn, ch.data(), Nn, acc != 0);
        for (long m = 0; m < M; m++)
          for (long n = 0; n < Nn; n++) {
            const float p = pt::bf16_to_f32(a0[m]) * pt::bf16_to_f32(b0[n]);
            const float sum = (acc ? pt::bf16_to_f32(c0[m * Nn + n]) : 0.f) + p;  // the kernels start from +0
            const uint16_t want = pt::f32_to_bf16(sum), got = ch[m * Nn + n];
            const bool ok = std::isnan(sum) ? std::isnan(pt::bf16_to_f32(got)) : got == want;
            rounded++;
            if (!ok && round_bad++ < 5)
              fprintf(stderr, "rounding K=%ld N=%ld form %d acc %d [%ld][%ld]: 0x%04x, want 0x%04x\n", K, Nn, form, acc, m, n, got, want);
          }
      }
#if defined(POLYTUNE_GEMM_AMX)
  // Built with AMX, the bf16 products ran on the tiles only where the kernel lets this process use them.
  const char* isa = pt::gemm_detail::amx_available() ? "amx" : "avx512bf16";
#elif defined(__AVX512BF16__)
  const char* isa = "avx512bf16";
#elif defined(__AVX512F__)
  const char* isa = "avx512";
#elif defined(__AVX2__)
  const char* isa = "avx2";
#else
  const char* isa = "portable";
#endif
  printf("{\"isa\": \"%s\", \"checked\": %d, \"bad\": %d, \"rounded\": %d, \"roundBad\": %d}\n", isa, checked, bad, rounded, round_bad);
  return bad != 0 || round_bad != 0;
}
