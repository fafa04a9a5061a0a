// Checks native/cpu/vec_exp.h as compiled for one ISA (the test builds it for AVX-512, AVX2 and
// plain C++): every float whose bits are a multiple of `stride` apart, plus the special values,
// against double-precision exp, and the vector form against the scalar form bit for bit.
// Prints one JSON line: {"isa", "checked", "maxUlpNormal", "maxUlpSubnormal", "mismatches", "specialsOk"},
// and for AVX-512 the same figures for exp512_table ("table": x below 89 only, as its callers pass)
// and, where AVX512DQ is built, for exp512_fast ("fast": its relative error less the part that
// grows with |x|, 7.3e-8·|x|, for normal results; subnormal ulps beyond that relative bound).
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
  double max_norm = 0, max_sub = 0, t_norm = 0, t_sub = 0;
  uint64_t checked = 0, mismatches = 0, t_checked = 0, t_bad = 0, f_checked = 0, f_bad = 0, ff_mismatches = 0;
  double f_rel = 0, f_sub = 0;
  // Error of y against double exp(x): ulps of a normal result or of the subnormal spacing;
  // overflow must give inf (or FLT_MAX within the bound right at the threshold).
  auto judge = [](float x, float y, double& norm, double& sub) -> bool {
    const double ref = std::exp(double(x));
    if (ref > double(std::numeric_limits<float>::max())) return std::isinf(y) || double(y) >= ref * (1 - 2.5e-7);
    if (ref >= double(std::numeric_limits<float>::min()))
      norm = std::fmax(norm, std::fabs(double(y) - ref) / std::ldexp(1.0, std::ilogb(ref) - 23));
    else
      sub = std::fmax(sub, std::fabs(double(y) - ref) / std::ldexp(1.0, -149));
    return true;
  };
  auto flush = [&]() {
    ys.resize(xs.size());
    pt::vexp::exp_array(int64_t(xs.size()), xs.data(), ys.data());
    for (size_t i = 0; i < xs.size(); i++) {
      const float x = xs[i], y = ys[i];
      if (to_bits(y) != to_bits(pt::vexp::exp_scalar(x)) && !(std::isnan(y) && std::isnan(pt::vexp::exp_scalar(x)))) mismatches++;
      if (std::isnan(x)) { if (!std::isnan(y)) mismatches++; continue; }
      checked++;
      if (!judge(x, y, max_norm, max_sub)) mismatches++;
    }
#if defined(__AVX512F__)
    for (size_t i = 0; i + 16 <= xs.size(); i += 16) {
      float in[16], out[16];
      for (int l = 0; l < 16; l++) in[l] = xs[i + l] < 89.f || std::isnan(xs[i + l]) ? xs[i + l] : 0.f;
      _mm512_storeu_ps(out, pt::vexp::exp512_table(_mm512_loadu_ps(in)));
      for (int l = 0; l < 16; l++) {
        if (std::isnan(in[l])) { if (!std::isnan(out[l])) t_bad++; continue; }
        t_checked++;
        if (!judge(in[l], out[l], t_norm, t_sub)) t_bad++;
      }
    }
#endif
#if defined(__AVX512DQ__)
    for (size_t i = 0; i + 16 <= xs.size(); i += 16) {
      float out[16], fin[16];
      _mm512_storeu_ps(out, pt::vexp::exp512_fast(_mm512_loadu_ps(xs.data() + i)));
      _mm512_storeu_ps(fin, pt::vexp::exp512_fast_finite(_mm512_loadu_ps(xs.data() + i)));
      for (int l = 0; l < 16; l++) {
        const float x = xs[i + l], y = out[l];
        // exp512_fast_finite: the same bits wherever x·log2e is finite.
        if (std::isfinite(x * 1.44269504f) && to_bits(fin[l]) != to_bits(y)) ff_mismatches++;
        if (std::isnan(x)) { if (!std::isnan(y)) f_bad++; continue; }
        f_checked++;
        const double ref = std::exp(double(x)), grow = 7.3e-8 * std::fabs(double(x));
        if (ref > double(std::numeric_limits<float>::max())) {
          if (!(std::isinf(y) || double(y) >= ref * (1 - 2.5e-7))) f_bad++;
        } else if (ref >= double(std::numeric_limits<float>::min())) {
          f_rel = std::fmax(f_rel, std::fabs(double(y) - ref) / ref - grow);
        } else {
          f_sub = std::fmax(f_sub, (std::fabs(double(y) - ref) - ref * (1.7e-7 + grow)) / std::ldexp(1.0, -149));
        }
      }
    }
#endif
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
#if defined(__AVX512F__)
  {
    float in[16] = {-std::numeric_limits<float>::infinity(), -120.f, -1e30f, 0.f, -0.f, 1.f, 88.7f, 88.8f, std::numeric_limits<float>::quiet_NaN()}, out[16];
    _mm512_storeu_ps(out, pt::vexp::exp512_table(_mm512_loadu_ps(in)));
    const bool ok = out[0] == 0.f && out[1] == 0.f && out[2] == 0.f && out[3] == 1.f && out[4] == 1.f &&
                    std::fabs(out[5] - 2.7182818f) < 3e-7f && std::isfinite(out[6]) && std::isinf(out[7]) && std::isnan(out[8]);
    if (!ok) t_bad++;
  }
#if defined(__AVX512DQ__)
  {
    float in[16] = {-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity(), -150.f, -1e30f, 1e30f, 0.f, -0.f, 88.7f, 88.8f, std::numeric_limits<float>::quiet_NaN()}, out[16];
    _mm512_storeu_ps(out, pt::vexp::exp512_fast(_mm512_loadu_ps(in)));
    const bool ok = out[0] == 0.f && std::isinf(out[1]) && out[1] > 0 && out[2] == 0.f && out[3] == 0.f && std::isinf(out[4]) && out[5] == 1.f &&
                    out[6] == 1.f && std::isfinite(out[7]) && std::isinf(out[8]) && std::isnan(out[9]);
    if (!ok) f_bad++;
  }
  std::printf("{\"isa\":\"%s\",\"checked\":%" PRIu64 ",\"maxUlpNormal\":%.4f,\"maxUlpSubnormal\":%.4f,\"mismatches\":%" PRIu64 ",\"specialsOk\":%s,"
              "\"table\":{\"checked\":%" PRIu64 ",\"maxUlpNormal\":%.4f,\"maxUlpSubnormal\":%.4f,\"bad\":%" PRIu64 "},"
              "\"fast\":{\"checked\":%" PRIu64 ",\"maxRelLessGrowth\":%.4g,\"maxSubnormalUlpBeyond\":%.4f,\"bad\":%" PRIu64 ",\"finiteMismatches\":%" PRIu64 "}}\n",
              isa, checked, max_norm, max_sub, mismatches, specials ? "true" : "false", t_checked, t_norm, t_sub, t_bad, f_checked, f_rel, f_sub, f_bad, ff_mismatches);
  return 0;
#endif
  std::printf("{\"isa\":\"%s\",\"checked\":%" PRIu64 ",\"maxUlpNormal\":%.4f,\"maxUlpSubnormal\":%.4f,\"mismatches\":%" PRIu64 ",\"specialsOk\":%s,"
              "\"table\":{\"checked\":%" PRIu64 ",\"maxUlpNormal\":%.4f,\"maxUlpSubnormal\":%.4f,\"bad\":%" PRIu64 "}}\n",
              isa, checked, max_norm, max_sub, mismatches, specials ? "true" : "false", t_checked, t_norm, t_sub, t_bad);
  return 0;
#endif
  std::printf("{\"isa\":\"%s\",\"checked\":%" PRIu64 ",\"maxUlpNormal\":%.4f,\"maxUlpSubnormal\":%.4f,\"mismatches\":%" PRIu64 ",\"specialsOk\":%s}\n",
              isa, checked, max_norm, max_sub, mismatches, specials ? "true" : "false");
  return 0;
}
