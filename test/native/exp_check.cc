// Checks native/cpu/vec_exp.h as compiled for one ISA (the test builds it for AVX-512, AVX2 and
// plain C++): every float whose bits are a multiple of `stride` apart, plus the special values,
// against double-precision exp, and the vector form against the scalar form bit for bit.
// Prints one JSON line: {"isa", "checked", "maxUlpNormal", "maxUlpSubnormal", "mismatches", "specialsOk"}.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "cpu/vec_exp.h"

static float from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
static uint32_t to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

int main(int argc, char** argv) {
  const uint64_t stride = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1;
  const char* isa =
#if defined(__AVX512F__)
      "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
      "avx2";
#else
      "scalar";
#endif
  std::vector<float> xs, ys;
  xs.reserve(1 << 16);
  double max_norm = 0, max_sub = 0;
  uint64_t checked = 0, mismatches = 0;
  auto flush = [&]() {
    ys.resize(xs.size());
    pt::vexp::exp_array(int64_t(xs.size()), xs.data(), ys.data());
    for (size_t i = 0; i < xs.size(); i++) {
      const float x = xs[i], y = ys[i];
      if (to_bits(y) != to_bits(pt::vexp::exp_scalar(x)) && !(std::isnan(y) && std::isnan(pt::vexp::exp_scalar(x)))) mismatches++;
      if (std::isnan(x)) { if (!std::isnan(y)) mismatches++; continue; }
      const double ref = std::exp(double(x));
      checked++;
      if (ref > double(std::numeric_limits<float>::max())) {
        // Overflow: inf, or FLT_MAX within the 2 ulp bound right at the threshold.
        if (!(std::isinf(y) || double(y) >= ref * (1 - 2.5e-7))) mismatches++;
        continue;
      }
      if (ref >= double(std::numeric_limits<float>::min())) {
        const double ulp = std::ldexp(1.0, std::ilogb(ref) - 23);
        max_norm = std::fmax(max_norm, std::fabs(double(y) - ref) / ulp);
      } else {
        max_sub = std::fmax(max_sub, std::fabs(double(y) - ref) / std::ldexp(1.0, -149));
      }
    }
    xs.clear();
  };
  for (uint64_t u = 0; u <= 0xffffffffull; u += stride) {
    xs.push_back(from_bits(uint32_t(u)));
    if (xs.size() == (1 << 16)) flush();
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {0.f, -0.f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), 88.7228f, 88.7229f, -87.3365f, -103.97f, -103.98f, -104.f, 1e-30f, -1e-30f})
    xs.push_back(x);
  flush();
  float s[5] = {0.f, -inf, inf, std::numeric_limits<float>::quiet_NaN(), 1.f}, o[5];
  pt::vexp::exp_array(5, s, o);
  const bool specials = o[0] == 1.f && o[1] == 0.f && std::isinf(o[2]) && o[2] > 0 && std::isnan(o[3]) && o[4] == float(std::exp(1.0));
  std::printf("{\"isa\":\"%s\",\"checked\":%" PRIu64 ",\"maxUlpNormal\":%.4f,\"maxUlpSubnormal\":%.4f,\"mismatches\":%" PRIu64 ",\"specialsOk\":%s}\n",
              isa, checked, max_norm, max_sub, mismatches, specials ? "true" : "false");
  return 0;
}
