// Checks native/cpu/cross_entropy.cc and swiglu.cc as compiled for one ISA (the test builds them for
// this machine's AVX-512, for AVX2 and for plain x86-64, so the paths another CPU would take run
// here too) against double-precision references on the inputs as stored, with the tolerances of
// the addon's op tests, and that one and two OpenMP threads give the same bits.
// Prints one JSON line: {"isa", "ce": {"checked", "bad"}, "swiglu": {"checked", "bad"}, "threadMismatches"}.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "check_common.h"
#include "cpu/cross_entropy.h"
#include "cpu/swiglu.h"

using namespace check;

namespace {

std::mt19937 rng(1234);
int bad_ce = 0, bad_sw = 0, thread_mismatches = 0;
long checked_ce = 0, checked_sw = 0;

// One bf16 unit in the last place at |v| (the spacing of bf16 values there).
double bf16_ulp(double v) {
  const double a = std::fabs(v);
  return a < 1e-38 ? std::ldexp(1.0, -133) : std::ldexp(1.0, std::ilogb(a) - 7);
}

void check_ce(DType dt, int64_t N, int64_t V, double spread, bool in_place) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(size_t(N * V));
  for (auto& v : x) v = float(spread) * g(rng);
  std::vector<int32_t> t(static_cast<size_t>(N));
  const int32_t ignore = -100;
  int64_t trained = 0;
  for (int64_t n = 0; n < N; n++) {
    t[size_t(n)] = n == 1 ? ignore : int32_t(rng() % uint32_t(V));
    trained += t[size_t(n)] != ignore;
  }
  const float scale = trained ? 1.f / float(trained) : 0.f;
  Buf logits(dt, x);
  const std::string label = std::string(dt == DType::BF16 ? "bf16" : "f32") + " N=" + std::to_string(N) + " V=" +
                            std::to_string(V) + (in_place ? " in place" : "");

  // Reference: log Σ exp in double with the max taken out, and scale·(softmax − onehot).
  // The gradient's bound per element: fp32 arithmetic on a logit x gives p = exp(x − lse) a relative
  // error of a few units of 2^-24 times (|lse| + |x − lse|) (lse and the difference are rounded
  // before exp), the exp's own ulps, the two roundings of scale·p − scale, and for bf16 the final
  // rounding (half a bf16 ulp, 2^-9 relative).
  std::vector<double> loss_ref(static_cast<size_t>(N)), d_ref(static_cast<size_t>(N * V), 0.0), d_tol(static_cast<size_t>(N * V), 0.0);
  const double out_rel = dt == DType::BF16 ? std::ldexp(1.0, -8) : 0.0, eps = std::ldexp(1.0, -24);
  for (int64_t n = 0; n < N; n++) {
    if (t[size_t(n)] == ignore) continue;
    double mx = -INFINITY, s = 0;
    for (int64_t v = 0; v < V; v++) mx = std::fmax(mx, double(logits.f[size_t(n * V + v)]));
    for (int64_t v = 0; v < V; v++) s += std::exp(double(logits.f[size_t(n * V + v)]) - mx);
    const double lse = mx + std::log(s);
    loss_ref[size_t(n)] = lse - double(logits.f[size_t(n * V + t[size_t(n)])]);
    for (int64_t v = 0; v < V; v++) {
      const double x = logits.f[size_t(n * V + v)], p = std::exp(x - lse), d = double(scale) * (p - (v == t[size_t(n)]));
      d_ref[size_t(n * V + v)] = d;
      d_tol[size_t(n * V + v)] = out_rel * std::fabs(d) + double(scale) * (4 * eps * p * (4 + std::fabs(lse) + std::fabs(x - lse)) + 2 * eps) + 1e-38;
    }
  }

  std::vector<std::vector<float>> losses;
  std::vector<Buf> grads;
  for (int threads : {1, 2}) {
    set_threads(threads);
    Buf in = logits;
    Buf d(dt, size_t(N * V));
    std::vector<float> loss(size_t(N), NAN);
    pt::cross_entropy(dt, N, V, in.raw(), t.data(), ignore, loss.data(), in_place ? in.data() : d.data(), scale);
    losses.push_back(loss);
    grads.push_back(in_place ? in : d);
  }
  if (std::memcmp(losses[0].data(), losses[1].data(), losses[0].size() * 4) ||
      std::memcmp(grads[0].raw(), grads[1].raw(), grads[0].bytes()))
    fail(thread_mismatches, "cross_entropy " + label + ": 1 and 2 threads differ");
  for (int64_t n = 0; n < N; n++) {
    checked_ce++;
    const double got = losses[0][size_t(n)], want = loss_ref[size_t(n)];
    if (!(std::fabs(got - want) <= 1e-6 * std::fmax(1.0, want)))
      fail(bad_ce, "cross_entropy " + label + ": row " + std::to_string(n) + " loss " + fmt(got) + ", want " + fmt(want));
  }
  for (int64_t i = 0; i < N * V; i++) {
    checked_ce++;
    const double have = grads[0].at(size_t(i)), want = d_ref[size_t(i)];
    if (!(std::fabs(have - want) <= d_tol[size_t(i)]))
      fail(bad_ce, "cross_entropy " + label + ": dlogits[" + std::to_string(i / V) + "][" + std::to_string(i % V) + "] = " + fmt(have) + ", want " + fmt(want));
  }
  // Loss only (no gradient): the same losses.
  std::vector<float> loss_only(size_t(N), NAN);
  pt::cross_entropy(dt, N, V, logits.raw(), t.data(), ignore, loss_only.data(), nullptr, scale);
  if (std::memcmp(loss_only.data(), losses[0].data(), loss_only.size() * 4))
    fail(bad_ce, "cross_entropy " + label + ": the loss without the gradient differs from the loss with it");
}

void check_swiglu(DType dt, int64_t n) {
  std::normal_distribution<float> g(0.f, 4.f);
  const size_t len = static_cast<size_t>(n);
  std::vector<float> a(len), b(len), c(len);
  for (int64_t i = 0; i < n; i++) {
    a[size_t(i)] = i % 97 == 3 ? 30.f * g(rng) : g(rng);  // a few far into the tails of the sigmoid
    b[size_t(i)] = g(rng);
    c[size_t(i)] = g(rng);
  }
  Buf gate(dt, a), up(dt, b), dout(dt, c);
  std::vector<double> y_ref(len), dg_ref(len), du_ref(len), dg_scale(len);
  for (int64_t i = 0; i < n; i++) {
    const double x = gate.f[size_t(i)], u = up.f[size_t(i)], d = dout.f[size_t(i)];
    const double sig = 1 / (1 + std::exp(-x));
    y_ref[size_t(i)] = x * sig * u;
    du_ref[size_t(i)] = d * x * sig;
    dg_ref[size_t(i)] = d * u * sig * (1 + x * (1 - sig));
    dg_scale[size_t(i)] = d * u * sig * (1 + std::fabs(x * (1 - sig)));
  }
  const std::string label = std::string(dt == DType::BF16 ? "bf16" : "f32") + " n=" + std::to_string(n);
  std::vector<Buf> outs;
  for (int threads : {1, 2}) {
    set_threads(threads);
    Buf y(dt, size_t(n)), dg(dt, size_t(n)), du(dt, size_t(n));
    pt::swiglu_forward(dt, n, gate.raw(), up.raw(), y.data());
    pt::swiglu_backward(dt, n, gate.raw(), up.raw(), dout.raw(), dg.data(), du.data());
    outs.push_back(y);
    outs.push_back(dg);
    outs.push_back(du);
  }
  for (int k = 0; k < 3; k++)
    if (std::memcmp(outs[size_t(k)].raw(), outs[size_t(k + 3)].raw(), outs[size_t(k)].bytes()))
      fail(thread_mismatches, "swiglu " + label + ": 1 and 2 threads differ");
  const std::vector<double>* refs[3] = {&y_ref, &dg_ref, &du_ref};
  const std::vector<double>* scales[3] = {&y_ref, &dg_scale, &du_ref};
  const char* names[3] = {"y", "dgate", "dup"};
  for (int k = 0; k < 3; k++) {
    const Buf& got = outs[size_t(k)];
    checked_sw += n;
    for (int64_t i = 0; i < n; i++) {
      const double want = (*refs[k])[size_t(i)], have = got.at(size_t(i));
      // fp32: a few ulps of the terms' size (dgate's 1 + x·(1 − sig) cancels near x = -1.28), plus
      // the smallest normal float for results that pass through subnormals; bf16: one bf16 ulp.
      const double tol = dt == DType::F32 ? 1e-6 * std::fabs((*scales[k])[size_t(i)]) + FLT_MIN : bf16_ulp(want);
      if (!(std::fabs(have - want) <= tol))
        fail(bad_sw, "swiglu " + label + " " + names[k] + "[" + std::to_string(i) + "] = " + fmt(have) + ", want " + fmt(want) + " (gate " + fmt(gate.f[size_t(i)]) + ")");
    }
  }
}

}  // namespace

int main() {
  const char* isa =
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
      "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
      "avx2";
#else
      "portable";
#endif
  for (DType dt : {DType::F32, DType::BF16}) {
    // Vocabularies on both sides of the 4096-wide chunks and the AVX-512 blocks; a spread that puts
    // most of a row's mass on a few logits; the gradient written over the logits.
    check_ce(dt, 1, 7, 3.0, false);
    check_ce(dt, 5, 4095, 3.0, false);
    check_ce(dt, 6, 4097, 3.0, true);
    check_ce(dt, 3, 12000, 20.0, false);
    check_ce(dt, 4, 33001, 3.0, true);
    for (int64_t n : {1, 15, 1001, 70001}) check_swiglu(dt, n);  // 70001: over the parallel threshold
  }
  std::printf("{\"isa\":\"%s\",\"ce\":{\"checked\":%ld,\"bad\":%d},\"swiglu\":{\"checked\":%ld,\"bad\":%d},\"threadMismatches\":%d}\n",
              isa, checked_ce, bad_ce, checked_sw, bad_sw, thread_mismatches);
  return 0;
}
