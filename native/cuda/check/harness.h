// The checker's harness, in the style of llama.cpp's test-backend-ops: host tensors with random
// contents, device copies whose outputs are poisoned with NaN before every run (a value the kernel
// forgot to write then fails the comparison), and a normalised-error comparison that prints one line
// per output: "rmsnorm.dx bf16[13,4096] cuda:0 NMSE 3.1e-07 <= 1e-05 OK".
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "common.h"
#include "cuda/api.h"

namespace check {

using pt::DType;

struct Host {
  DType dt = DType::F32;
  int64_t n = 0;
  std::vector<uint8_t> bytes;
  Host() = default;
  Host(DType dt, int64_t n) : dt(dt), n(n), bytes(size_t(n) * pt::dtype_size(dt)) {}
  void* data() { return bytes.data(); }
  const void* data() const { return bytes.data(); }
  float get(int64_t i) const {
    if (dt == DType::BF16) return pt::bf16_to_f32(((const uint16_t*)bytes.data())[i]);
    if (dt == DType::I32) return float(((const int32_t*)bytes.data())[i]);
    return ((const float*)bytes.data())[i];
  }
  void set(int64_t i, float v) {
    if (dt == DType::BF16) ((uint16_t*)bytes.data())[i] = pt::f32_to_bf16(v);
    else if (dt == DType::I32) ((int32_t*)bytes.data())[i] = int32_t(v);
    else ((float*)bytes.data())[i] = v;
  }
  int32_t* i32() { return (int32_t*)bytes.data(); }
  float* f32() { return (float*)bytes.data(); }
};

inline std::mt19937_64& rng() {
  static std::mt19937_64 g(20261130);
  return g;
}

// Uniform in [lo, hi), rounded to dt (so the CPU and the GPU start from the same representable values).
inline Host uniform(DType dt, int64_t n, float lo = -1.f, float hi = 1.f) {
  Host h(dt, n);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < n; i++) h.set(i, u(rng()));
  return h;
}

inline Host ints(int64_t n, int32_t lo, int32_t hi) {  // [lo, hi)
  Host h(DType::I32, n);
  std::uniform_int_distribution<int32_t> u(lo, hi - 1);
  for (int64_t i = 0; i < n; i++) h.i32()[i] = u(rng());
  return h;
}

// NaN in every dtype's encoding (0xFF bytes: bf16 0xFFFF and f32 0xFFFFFFFF are NaNs).
inline Host poisoned(DType dt, int64_t n) {
  Host h(dt, n);
  std::fill(h.bytes.begin(), h.bytes.end(), uint8_t(0xFF));
  return h;
}

// A device copy, freed on scope exit.
struct Dev {
  pt::cuda::Context* ctx;
  DType dt;
  int64_t n;
  void* p = nullptr;
  Dev(pt::cuda::Context& c, const Host& h) : ctx(&c), dt(h.dt), n(h.n) {
    p = pt::cuda::alloc(c, h.bytes.size(), "checker input");
    pt::cuda::copy_to_device(c, p, h.data(), h.bytes.size());
  }
  // An output: NaN until the kernel writes it.
  Dev(pt::cuda::Context& c, DType dt, int64_t n) : Dev(c, poisoned(dt, n)) {}
  Dev(const Dev&) = delete;
  // A destructor must not throw (a sticky fault unwinding through here would terminate the checker
  // before it reports); the fault itself is reported by whoever threw first.
  ~Dev() {
    try {
      pt::cuda::free(*ctx, p);
    } catch (...) {
    }
  }
  Host get() const {
    Host h(dt, n);
    pt::cuda::copy_to_host(*ctx, h.data(), p, h.bytes.size());
    return h;
  }
  template <typename T = void>
  T* as() const { return (T*)p; }
};

struct Tally {
  int passed = 0, failed = 0;
};
inline Tally& tally() {
  static Tally t;
  return t;
}

// NMSE = sum (got - want)^2 / sum want^2. Any non-finite value in `got` where `want` is finite fails,
// whatever the tolerance: that is a poisoned element the kernel never wrote.
// rms_floor: the reference's RMS is taken as at least this, for outputs that are exactly zero in exact
// arithmetic (the gradients of a one-token document), where both sides hold only rounding noise and
// a plain NMSE would divide noise by noise.
inline bool compare(const std::string& name, const std::string& shape, const Host& got, const Host& want, double tol,
                    bool quiet = false, double rms_floor = 0) {
  double num = 0, den = 0, maxd = 0;
  int64_t bad = -1;
  for (int64_t i = 0; i < want.n; i++) {
    const double w = want.get(i), g = got.get(i);
    if (std::isfinite(w) && !std::isfinite(g)) {
      if (bad < 0) bad = i;
      continue;
    }
    num += (g - w) * (g - w);
    den += w * w;
    maxd = std::max(maxd, std::fabs(g - w));
  }
  den = std::max(den, double(want.n) * rms_floor * rms_floor);
  const double nmse = den > 0 ? num / den : num;
  const bool ok = bad < 0 && nmse <= tol;
  if (quiet) return ok;
  std::printf("%-24s %s%s cuda:0 NMSE %.2e %s %.0e max|d| %.2e %s", name.c_str(), pt::dtype_name(want.dt),
              shape.c_str(), nmse, nmse <= tol ? "<=" : ">", tol, maxd, ok ? "OK" : "FAIL");
  if (bad >= 0) std::printf(" (non-finite at %lld: unwritten or overflow)", (long long)bad);
  std::printf("\n");
  std::fflush(stdout);
  (ok ? tally().passed : tally().failed)++;
  return ok;
}

inline bool compare_scalar(const std::string& name, const std::string& shape, double got, double want, double tol) {
  const double rel = std::fabs(got - want) / std::max(std::fabs(want), 1e-300);
  const bool ok = std::isfinite(got) && rel <= tol;
  std::printf("%-24s %s cuda:0 rel %.2e %s %.0e (got %.9g want %.9g) %s\n", name.c_str(), shape.c_str(), rel,
              rel <= tol ? "<=" : ">", tol, got, want, ok ? "OK" : "FAIL");
  std::fflush(stdout);
  (ok ? tally().passed : tally().failed)++;
  return ok;
}

// Run-to-run determinism: the kernels that promise it (no float atomics, fixed reduction orders) must
// give the same bits when run again on the same inputs.
inline bool same_bits(const std::string& name, const std::string& shape, const Host& a, const Host& b) {
  const bool ok = a.bytes == b.bytes;
  std::printf("%-24s %s%s cuda:0 rerun %s %s\n", name.c_str(), pt::dtype_name(a.dt), shape.c_str(),
              ok ? "bit-identical" : "DIFFERS", ok ? "OK" : "FAIL");
  std::fflush(stdout);
  (ok ? tally().passed : tally().failed)++;
  return ok;
}

inline std::string dims(std::initializer_list<int64_t> d) {
  std::string s = "[";
  for (int64_t v : d) s += (s.size() > 1 ? "," : "") + std::to_string(v);
  return s + "]";
}

// Tolerances by dtype: f32 differs from the CPU only in summation order (NMSE ~1e-12); bf16 outputs
// also flip a rounding now and then. These are first settings, not yet seen against a GPU.
inline double tol(DType dt, double f32, double bf16) { return dt == DType::F32 ? f32 : bf16; }

}  // namespace check
