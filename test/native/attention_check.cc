// Checks native/cpu/attention.cc and kv_attention.cc as compiled for one ISA (the test builds them
// for AVX512-BF16, AVX-512 without it, AVX2 and portable x86-64, so the fp32-arithmetic paths that
// bf16 takes on a CPU without vdpbf16ps run here too) against double-precision attention on the
// inputs as stored: causal, grouped-query, packed documents, queries at the end of longer keys,
// forward (out, lse) and backward (dq, dk, dv), and decoding over a KV cache; with the tolerances
// of the addon's op tests; and one thread against two, bit for bit.
// Prints one JSON line: {"isa", "checked", "bad", "threadMismatches"}.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "check_common.h"
#include "cpu/attention.h"
#include "cpu/kv_attention.h"

using namespace check;

namespace {

std::mt19937 rng(99);
int bad = 0, thread_mismatches = 0;
long checked = 0;

void compare(const std::string& what, const std::vector<double>& want, const Buf& got, double tol) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); i++) {
    const double d = got.at(i) - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  checked += long(want.size());
  const double e = den > 0 ? num / den : num;
  if (!(e <= tol)) {
    char b[64];
    std::snprintf(b, sizeof b, ": NMSE %.3g > %.3g", e, tol);
    fail(bad, what + b);
  }
}

void compare(const std::string& what, const std::vector<double>& want, const std::vector<float>& got, double tol) {
  Buf b(DType::F32, got.size());
  b.f = got;
  compare(what, want, b, tol);
}

struct Case {
  int64_t B, Tq, Tk, Hq, Hkv, D;
  std::vector<int> docs;  // per row, the same split in every row (empty: one document a row)
};

std::string label(DType dt, const Case& c) {
  std::string s = std::string(dt == DType::BF16 ? "bf16" : "f32") + " B" + std::to_string(c.B) + " Tq" + std::to_string(c.Tq) +
                  " Tk" + std::to_string(c.Tk) + " Hq" + std::to_string(c.Hq) + " Hkv" + std::to_string(c.Hkv) + " D" + std::to_string(c.D);
  for (size_t i = 0; i < c.docs.size(); i++) s += (i ? "+" : " docs ") + std::to_string(c.docs[i]);
  return s;
}

void check_attention(DType dt, const Case& c) {
  const int64_t B = c.B, Tq = c.Tq, Tk = c.Tk, Hq = c.Hq, Hkv = c.Hkv, D = c.D, G = Hq / Hkv;
  const std::string name = label(dt, c);
  Buf q(dt, normal(rng, size_t(B * Tq * Hq * D))), k(dt, normal(rng, size_t(B * Tk * Hkv * D))), v(dt, normal(rng, size_t(B * Tk * Hkv * D)));
  Buf dout(dt, normal(rng, size_t(B * Tq * Hq * D)));
  std::vector<int32_t> cu, doc(size_t(B * Tk), 0);
  if (!c.docs.empty()) {
    cu.push_back(0);
    for (int64_t b = 0, id = 0; b < B; b++) {
      int64_t at = 0;
      for (int n : c.docs) {
        for (int64_t j = 0; j < n; j++) doc[size_t(b * Tk + at + j)] = int32_t(id);
        at += n;
        id++;
        cu.push_back(int32_t(b * Tk + at));
      }
    }
  } else {
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < Tk; j++) doc[size_t(b * Tk + j)] = int32_t(b);
  }
  const int32_t* cu_p = cu.empty() ? nullptr : cu.data();
  const int64_t docs = cu.empty() ? 0 : int64_t(cu.size()) - 1;
  const double scale = 1.0 / std::sqrt(double(D));

  // Reference in double: P = softmax(scale·q·kᵀ) over the keys a query sees, out = P·v; backward
  // dP = dout·vᵀ, dS = P ∘ (dP − Σ dout∘out), dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dout.
  const auto qi = [&](int64_t b, int64_t t, int64_t h) { return size_t(((b * Tq + t) * Hq + h) * D); };
  const auto ki = [&](int64_t b, int64_t t, int64_t h) { return size_t(((b * Tk + t) * Hkv + h) * D); };
  std::vector<double> out_ref(q.f.size(), 0.0), lse_ref(size_t(B * Hq * Tq), 0.0);
  std::vector<double> dq_ref(q.f.size(), 0.0), dk_ref(k.f.size(), 0.0), dv_ref(v.f.size(), 0.0);
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < Hq; h++) {
      const int64_t hk = h / G;
      for (int64_t i = 0; i < Tq; i++) {
        const int64_t pos = Tk - Tq + i;
        std::vector<double> p(size_t(Tk), 0.0);
        double mx = -INFINITY;
        for (int64_t j = 0; j <= pos; j++) {
          if (doc[size_t(b * Tk + j)] != doc[size_t(b * Tk + pos)]) continue;
          double s = 0;
          for (int64_t d = 0; d < D; d++) s += double(q.f[qi(b, i, h) + size_t(d)]) * k.f[ki(b, j, hk) + size_t(d)];
          p[size_t(j)] = s * scale;
          mx = std::fmax(mx, p[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= pos; j++)
          if (doc[size_t(b * Tk + j)] == doc[size_t(b * Tk + pos)]) sum += std::exp(p[size_t(j)] - mx);
        const double lse = mx + std::log(sum);
        lse_ref[size_t((b * Hq + h) * Tq + i)] = lse;
        for (int64_t j = 0; j <= pos; j++)
          p[size_t(j)] = doc[size_t(b * Tk + j)] == doc[size_t(b * Tk + pos)] ? std::exp(p[size_t(j)] - lse) : 0.0;
        for (int64_t j = 0; j <= pos; j++)
          for (int64_t d = 0; d < D; d++) out_ref[qi(b, i, h) + size_t(d)] += p[size_t(j)] * v.f[ki(b, j, hk) + size_t(d)];
        if (Tq != Tk) continue;
        double delta = 0;
        for (int64_t d = 0; d < D; d++) delta += double(dout.f[qi(b, i, h) + size_t(d)]) * out_ref[qi(b, i, h) + size_t(d)];
        for (int64_t j = 0; j <= pos; j++) {
          if (p[size_t(j)] == 0.0) continue;
          double dp = 0;
          for (int64_t d = 0; d < D; d++) dp += double(dout.f[qi(b, i, h) + size_t(d)]) * v.f[ki(b, j, hk) + size_t(d)];
          const double ds = p[size_t(j)] * (dp - delta);
          for (int64_t d = 0; d < D; d++) {
            dq_ref[qi(b, i, h) + size_t(d)] += scale * ds * k.f[ki(b, j, hk) + size_t(d)];
            dk_ref[ki(b, j, hk) + size_t(d)] += scale * ds * q.f[qi(b, i, h) + size_t(d)];
            dv_ref[ki(b, j, hk) + size_t(d)] += p[size_t(j)] * dout.f[qi(b, i, h) + size_t(d)];
          }
        }
      }
    }

  // The op tests' tolerances (test/ops/attention.test.ts): NMSE 1e-10 f32, 2e-5 bf16; lse 1e-10, 1e-7.
  const double tol = dt == DType::BF16 ? 2e-5 : 1e-10, lse_tol = dt == DType::BF16 ? 1e-7 : 1e-10;
  std::vector<Buf> outs;
  std::vector<std::vector<float>> lses;
  for (int threads : {1, 2}) {
    set_threads(threads);
    Buf out(dt, q.f.size());
    std::vector<float> lse(lse_ref.size(), NAN);
    pt::attention_forward(dt, B, Tq, Tk, Hq, Hkv, D, 0.f, q.raw(), k.raw(), v.raw(), cu_p, docs, out.data(), lse.data());
    outs.push_back(out);
    lses.push_back(lse);
    if (Tq != Tk) continue;
    Buf dq(dt, q.f.size()), dk(dt, k.f.size()), dv(dt, v.f.size());
    pt::attention_backward(dt, B, Tq, Hq, Hkv, D, 0.f, q.raw(), k.raw(), v.raw(), cu_p, docs, out.raw(), dout.raw(),
                           lse.data(), dq.data(), dk.data(), dv.data());
    outs.push_back(dq);
    outs.push_back(dk);
    outs.push_back(dv);
  }
  const size_t per = outs.size() / 2;
  for (size_t i = 0; i < per; i++)
    if (std::memcmp(outs[i].raw(), outs[i + per].raw(), outs[i].bytes())) fail(thread_mismatches, "attention " + name + ": 1 and 2 threads differ");
  if (std::memcmp(lses[0].data(), lses[1].data(), lses[0].size() * 4)) fail(thread_mismatches, "attention " + name + ": lse, 1 and 2 threads differ");
  compare("attention " + name + " out", out_ref, outs[0], tol);
  compare("attention " + name + " lse", lse_ref, lses[0], lse_tol);
  if (Tq != Tk) return;
  compare("attention " + name + " dq", dq_ref, outs[1], tol);
  compare("attention " + name + " dk", dk_ref, outs[2], tol);
  compare("attention " + name + " dv", dv_ref, outs[3], tol);
}

// Decoding: each segment appends its new keys and values to its slot's cache and attends causally
// over all the slot holds; the cache rows before `start` hold earlier tokens (random here).
// Segments of one token each take the kernel's decode path on AVX-512 builds (a single long one
// splits its heads over the threads); longer segments go through attention_forward.
void check_kv(DType dt, int64_t Hq, int64_t Hkv, int64_t D, int64_t maxLen, const std::vector<pt::KvSegment>& segs) {
  const int64_t slots = 3, G = Hq / Hkv;
  int64_t rows = 0;
  for (const auto& s : segs) rows = std::max<int64_t>(rows, s.row + s.n);
  std::string name = std::string(dt == DType::BF16 ? "bf16" : "f32") + " Hq" + std::to_string(Hq) + " Hkv" + std::to_string(Hkv) + " D" + std::to_string(D) + " segments";
  for (const auto& s : segs) name += " " + std::to_string(s.slot) + ":" + std::to_string(s.start) + "+" + std::to_string(s.n);
  Buf q(dt, normal(rng, size_t(rows * Hq * D))), kn(dt, normal(rng, size_t(rows * Hkv * D))), vn(dt, normal(rng, size_t(rows * Hkv * D)));
  Buf kc0(dt, normal(rng, size_t(slots * maxLen * Hkv * D))), vc0(dt, normal(rng, size_t(slots * maxLen * Hkv * D)));
  // The caches as they must end: the new rows copied in.
  Buf kc_want = kc0, vc_want = vc0;
  for (const auto& s : segs)
    for (int64_t t = 0; t < s.n; t++)
      for (int64_t x = 0; x < Hkv * D; x++) {
        const size_t dst = size_t(((s.slot * maxLen) + s.start + t) * Hkv * D + x), src = size_t((s.row + t) * Hkv * D + x);
        kc_want.f[dst] = kn.f[src];
        vc_want.f[dst] = vn.f[src];
        if (dt == DType::BF16) {
          kc_want.h[dst] = kn.h[src];
          vc_want.h[dst] = vn.h[src];
        }
      }
  std::vector<double> out_ref(q.f.size(), 0.0);
  const double scale = 1.0 / std::sqrt(double(D));
  for (const auto& s : segs)
    for (int64_t t = 0; t < s.n; t++)
      for (int64_t h = 0; h < Hq; h++) {
        const int64_t hk = h / G, keys = s.start + t + 1;
        const size_t qo = size_t(((s.row + t) * Hq + h) * D);
        std::vector<double> p(static_cast<size_t>(keys));
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < keys; j++) {
          double dot = 0;
          for (int64_t d = 0; d < D; d++) dot += double(q.f[qo + size_t(d)]) * kc_want.f[size_t(((s.slot * maxLen + j) * Hkv + hk) * D + d)];
          p[size_t(j)] = dot * scale;
          mx = std::fmax(mx, p[size_t(j)]);
        }
        for (double& x : p) sum += (x = std::exp(x - mx));
        for (int64_t j = 0; j < keys; j++)
          for (int64_t d = 0; d < D; d++)
            out_ref[qo + size_t(d)] += p[size_t(j)] / sum * vc_want.f[size_t(((s.slot * maxLen + j) * Hkv + hk) * D + d)];
      }
  std::vector<Buf> outs;
  for (int threads : {1, 2}) {
    set_threads(threads);
    Buf kc = kc0, vc = vc0, out(dt, q.f.size());
    pt::kv_attention(dt, segs.data(), int64_t(segs.size()), maxLen, Hq, Hkv, D, 0.f, q.raw(), kn.raw(), vn.raw(), kc.data(),
                     vc.data(), out.data());
    if (std::memcmp(kc.raw(), kc_want.raw(), kc.bytes()) || std::memcmp(vc.raw(), vc_want.raw(), vc.bytes()))
      fail(bad, "kv_attention " + name + ": the caches are not the old rows with the new ones copied in");
    outs.push_back(out);
  }
  if (std::memcmp(outs[0].raw(), outs[1].raw(), outs[0].bytes())) fail(thread_mismatches, "kv_attention " + name + ": 1 and 2 threads differ");
  compare("kv_attention " + name + " out", out_ref, outs[0], dt == DType::BF16 ? 2e-5 : 1e-10);
}

}  // namespace

int main() {
  const char* isa =
#if defined(__AVX512BF16__)
      "avx512bf16";
#elif defined(__AVX512F__)
      "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
      "avx2";
#else
      "portable";
#endif
  // Shapes of the addon's op tests, plus rows longer than the kernels' 128- and 256-key blocks.
  const std::vector<Case> cases = {
      {2, 9, 9, 4, 4, 64, {}},
      {1, 70, 70, 4, 2, 128, {}},
      {1, 37, 37, 4, 1, 64, {1, 20, 1, 15}},
      {1, 45, 45, 8, 4, 8, {1, 35, 9}},
      {3, 34, 34, 4, 1, 32, {}},
      {1, 40, 40, 2, 2, 128, {17, 1, 22}},
      {1, 3, 21, 4, 2, 64, {}},
      {1, 300, 300, 2, 1, 128, {}},
      {1, 290, 290, 4, 2, 64, {130, 160}},
  };
  for (DType dt : {DType::F32, DType::BF16}) {
    for (const Case& c : cases) check_attention(dt, c);
    const std::vector<pt::KvSegment> mixed = {{2, 0, 5, 0}, {0, 17, 1, 5}, {1, 30, 3, 6}}, tokens = {{2, 0, 1, 0}, {0, 17, 1, 1}, {1, 38, 1, 2}};
    for (const auto& segs : {mixed, tokens}) {
      check_kv(dt, 4, 2, 128, 40, segs);
      check_kv(dt, 8, 8, 64, 40, segs);
      check_kv(dt, 2, 1, 16, 40, segs);
    }
    check_kv(dt, 8, 2, 128, 400, {{1, 350, 1, 0}});
  }
  std::printf("{\"isa\":\"%s\",\"checked\":%ld,\"bad\":%d,\"threadMismatches\":%d}\n", isa, checked, bad, thread_mismatches);
  return 0;
}
