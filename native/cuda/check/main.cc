// polytune_cuda_check: every CUDA kernel of native/cuda/ against its CPU twin in native/cpu/ on the same
// random inputs, without Node.js (the GPU machine has none). Shapes hit the edges: one row, widths that
// are not multiples of a warp or a tile, documents of one token, head_dim 8 to 128, GQA ratios 1, 4
// and 8, the cross-entropy vocabulary chunk boundary. Exit 0: every case passed; 1: a case failed;
// 2: no CUDA device (nothing was checked).
// Usage: polytune_cuda_check [op-name-substring ...] | --bench out.json
#include <cstring>

#include "cpu/adamw.h"
#include "cpu/attention.h"
#include "cpu/cross_entropy.h"
#include "cpu/elementwise.h"
#include "cpu/embedding.h"
#include "cpu/gemm.h"
#include "cpu/kv_attention.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "cpu/swiglu.h"
#include "cuda/context.h"  // the context's own workspace allocation, in the leak check
#include "cuda/check/bench.h"
#include "cuda/check/harness.h"

using namespace check;
namespace cu = pt::cuda;

static const DType kTypes[] = {DType::F32, DType::BF16};

static void check_add_cast(cu::Context& c) {
  for (DType dt : kTypes)
    for (int64_t n : {int64_t(1), int64_t(1000003)}) {
      Host a = uniform(dt, n), b = uniform(dt, n), want = poisoned(dt, n);
      pt::add(dt, n, a.data(), b.data(), want.data());
      Dev da(c, a), db(c, b), out(c, dt, n);
      cu::add(c, dt, n, da.p, db.p, out.p);
      compare("add", dims({n}), out.get(), want, tol(dt, 1e-14, 1e-6));
      // in place, out aliasing a (the residual stream)
      cu::add(c, dt, n, da.p, db.p, da.p);
      compare("add.inplace", dims({n}), da.get(), want, tol(dt, 1e-14, 1e-6));
      Host s = uniform(dt, n);
      Dev ds(c, s);
      pt::scale(dt, n, 0.37f, s.data());
      cu::scale(c, dt, n, 0.37f, ds.p);
      compare("scale", dims({n}), ds.get(), s, tol(dt, 1e-14, 1e-6));
    }
  for (DType dt : {DType::F32, DType::BF16, DType::I32}) {
    const int64_t n = 100001;
    Host want = poisoned(dt, n);
    pt::fill(dt, n, -1.2345678, want.data());
    Dev out(c, dt, n);
    cu::fill(c, dt, n, -1.2345678, out.p);
    compare("fill", dims({n}), out.get(), want, 0.0);
  }
  for (auto [src, dst] : {std::pair{DType::F32, DType::BF16}, std::pair{DType::BF16, DType::F32}}) {
    const int64_t n = 77777;
    Host x = uniform(src, n, -300.f, 300.f), want = poisoned(dst, n);
    pt::cast(src, dst, n, x.data(), want.data());
    Dev dx(c, x), out(c, dst, n);
    cu::cast(c, src, dst, n, dx.p, out.p);
    compare(std::string("cast.from_") + pt::dtype_name(src), dims({n}), out.get(), want, 0.0);
  }
}

static void check_swiglu(cu::Context& c) {
  // The last case: gates far below zero, where exp(-x) overflows and silu(x) is a tiny normal float.
  struct Case { int64_t n; float lo, hi; };
  for (DType dt : kTypes)
    for (const Case& k : {Case{3, -6, 6}, Case{11008 * 5 + 1, -6, 6}, Case{4097, -100, -80}}) {
      const int64_t n = k.n;
      Host g = uniform(dt, n, k.lo, k.hi), u = uniform(dt, n), d = uniform(dt, n);
      Host out = poisoned(dt, n), dg = poisoned(dt, n), du = poisoned(dt, n);
      pt::swiglu_forward(dt, n, g.data(), u.data(), out.data());
      pt::swiglu_backward(dt, n, g.data(), u.data(), d.data(), dg.data(), du.data());
      Dev Dg(c, g), Du(c, u), Dd(c, d), Dout(c, dt, n), Ddg(c, dt, n), Ddu(c, dt, n);
      cu::swiglu_forward(c, dt, n, Dg.p, Du.p, Dout.p);
      cu::swiglu_backward(c, dt, n, Dg.p, Du.p, Dd.p, Ddg.p, Ddu.p);
      compare("swiglu", dims({n}), Dout.get(), out, tol(dt, 1e-12, 1e-5));
      compare("swiglu.dgate", dims({n}), Ddg.get(), dg, tol(dt, 1e-12, 1e-5));
      compare("swiglu.dup", dims({n}), Ddu.get(), du, tol(dt, 1e-12, 1e-5));
    }
}

static void check_rmsnorm(cu::Context& c) {
  for (DType dt : kTypes)
    for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 64}, {13, 4096}, {130, 4095}, {65, 288}}) {
      const std::string sh = dims({N, C});
      Host x = uniform(dt, N * C, -2, 2), w = uniform(dt, C, 0.5f, 1.5f), g = uniform(dt, N * C);
      Host dw0 = uniform(dt, C);  // dw accumulates: start from the same values on both sides
      Host out = poisoned(dt, N * C), rstd = poisoned(DType::F32, N), dx = poisoned(dt, N * C), dw = dw0;
      pt::rmsnorm_forward(dt, N, C, 1e-5f, x.data(), w.data(), out.data(), rstd.f32());
      pt::rmsnorm_backward(dt, N, C, x.data(), w.data(), rstd.f32(), g.data(), dx.data(), dw.data());
      Dev Dx(c, x), Dw(c, w), Dg(c, g), Dout(c, dt, N * C), Drstd(c, DType::F32, N), Ddx(c, dt, N * C), Ddw(c, dw0);
      cu::rmsnorm_forward(c, dt, N, C, 1e-5f, Dx.p, Dw.p, Dout.p, Drstd.as<float>());
      compare("rmsnorm", sh, Dout.get(), out, tol(dt, 1e-12, 1e-5));
      // From bf16 inputs the CPU sums exact bf16 squares in its own order (AMX or vdpbf16ps where the
      // machine has them): fp32 summation noise, ~2e-6 relative at 4096 (seen on the H200 machine).
      compare("rmsnorm.rstd", sh, Drstd.get(), rstd, tol(dt, 1e-12, 1e-10));
      // backward from the CPU's rstd, so a forward difference does not leak into the backward check
      Dev Drc(c, rstd);
      cu::rmsnorm_backward(c, dt, N, C, Dx.p, Dw.p, Drc.as<float>(), Dg.p, Ddx.p, Ddw.p);
      compare("rmsnorm.dx", sh, Ddx.get(), dx, tol(dt, 1e-11, 1e-5));
      compare("rmsnorm.dw(+=)", sh, Ddw.get(), dw, tol(dt, 1e-11, 1e-5));
      {
        Dev again(c, dw0), ddx2(c, dt, N * C);
        cu::rmsnorm_backward(c, dt, N, C, Dx.p, Dw.p, Drc.as<float>(), Dg.p, ddx2.p, again.p);
        same_bits("rmsnorm.dw.determinism", sh, again.get(), Ddw.get());
      }
    }
}

static void check_rope(cu::Context& c) {
  const int64_t P = 300;
  for (int64_t D : {int64_t(64), int64_t(128)}) {
    Host cosT(DType::F32, P * D / 2), sinT(DType::F32, P * D / 2);
    for (int64_t p = 0; p < P; p++)
      for (int64_t i = 0; i < D / 2; i++) {
        const double a = p * std::pow(10000.0, -2.0 * i / double(D));
        cosT.f32()[p * D / 2 + i] = float(std::cos(a));
        sinT.f32()[p * D / 2 + i] = float(std::sin(a));
      }
    for (DType dt : kTypes)
      for (bool inverse : {false, true}) {
        const int64_t N = 37, H = 5;
        // positions of packed documents: 0..19, 0, 0..15
        Host pos(DType::I32, N);
        for (int64_t n = 0; n < N; n++) pos.i32()[n] = int32_t(n < 20 ? n : n == 20 ? 0 : n - 21);
        pos.i32()[N - 1] = int32_t(P - 1);  // the table's last row
        Host x = uniform(dt, N * H * D), want = poisoned(dt, N * H * D);
        pt::rope_apply(dt, N, H, D, P, pos.i32(), cosT.f32(), sinT.f32(), x.data(), want.data(), inverse);
        Dev Dp(c, pos), Dc(c, cosT), Ds(c, sinT), Dx(c, x), Dout(c, dt, N * H * D);
        cu::rope_apply(c, dt, N, H, D, P, Dp.as<int32_t>(), Dc.as<float>(), Ds.as<float>(), Dx.p, Dout.p, inverse);
        const std::string nm = inverse ? "rope.inverse" : "rope";
        compare(nm, dims({N, H, D}), Dout.get(), want, tol(dt, 1e-13, 1e-6));
        cu::rope_apply(c, dt, N, H, D, P, Dp.as<int32_t>(), Dc.as<float>(), Ds.as<float>(), Dx.p, Dx.p, inverse);
        compare(nm + ".inplace", dims({N, H, D}), Dx.get(), want, tol(dt, 1e-13, 1e-6));
      }
  }
}

// Data the host should have rejected (an id >= V, a position past the table, a target >= V) must not
// fault or assert on the device: the kernel clamps it and sets a bit read at the next sync point.
static void check_status_word(cu::Context& c) {
  cu::take_status(c);  // start clean
  const int64_t V = 50, C = 64, N = 4;
  Host ids = ints(N, 0, int32_t(V));
  ids.i32()[2] = int32_t(V + 7);
  Host w = uniform(DType::F32, V * C);
  Dev Di(c, ids), Dw(c, w), Dout(c, DType::F32, N * C);
  cu::embedding_forward(c, DType::F32, N, V, C, Di.as<int32_t>(), Dw.p, Dout.p);
  const uint32_t s1 = cu::take_status(c), s2 = cu::take_status(c);
  Host logits = uniform(DType::F32, N * V), t = ints(N, 0, int32_t(V));
  t.i32()[1] = int32_t(V);
  Dev Dl(c, logits), Dt(c, t), Dloss(c, DType::F32, N);
  cu::cross_entropy(c, DType::F32, N, V, Dl.p, Dt.as<int32_t>(), -100, Dloss.as<float>(), nullptr, 1.f);
  const uint32_t s3 = cu::take_status(c);
  const bool ok = s1 == cu::kBadTokenId && s2 == 0 && s3 == cu::kBadTarget && Dloss.get().get(1) == 0.f;
  std::printf("%-24s bad id, bad target cuda:0 status bits %u, %u (cleared: %u) %s\n", "status_word", s1, s3, s2,
              ok ? "OK" : "FAIL");
  (ok ? tally().passed : tally().failed)++;
}

static void check_embedding(cu::Context& c) {
  struct Sizes {
    int64_t N, V, C;
  };
  for (DType dt : kTypes)
    for (const Sizes& z : {Sizes{1, 7, 64}, Sizes{300, 1000, 257}, Sizes{4096, 32000, 288}}) {
      const int64_t N = z.N, V = z.V, C = z.C;
      const std::string sh = dims({N, V, C});
      Host ids = ints(N, 0, int32_t(std::min<int64_t>(V, N / 4 + 2)));  // many repeats
      ids.i32()[0] = int32_t(V - 1);
      Host w = uniform(dt, V * C), g = uniform(dt, N * C), dw0 = uniform(dt, V * C);
      Host out = poisoned(dt, N * C), dw = dw0;
      pt::embedding_forward(dt, N, V, C, ids.i32(), w.data(), out.data());
      pt::embedding_backward(dt, N, V, C, ids.i32(), g.data(), dw.data());
      Dev Di(c, ids), Dw(c, w), Dg(c, g), Dout(c, dt, N * C), Ddw(c, dw0);
      cu::embedding_forward(c, dt, N, V, C, Di.as<int32_t>(), Dw.p, Dout.p);
      cu::embedding_backward(c, dt, N, V, C, Di.as<int32_t>(), Dg.p, Ddw.p);
      compare("embedding", sh, Dout.get(), out, 0.0);
      // same order of additions as the CPU: expected bit-exact in f32 too
      compare("embedding.dw(+=)", sh, Ddw.get(), dw, tol(dt, 0.0, 0.0));
      {
        Dev again(c, dw0);
        cu::embedding_backward(c, dt, N, V, C, Di.as<int32_t>(), Dg.p, again.p);
        same_bits("embedding.dw.determinism", sh, again.get(), Ddw.get());
      }
      if (cu::take_status(c) != 0) {
        std::printf("embedding status word set on valid ids FAIL\n");
        tally().failed++;
      }
    }
}

static void check_cross_entropy(cu::Context& c) {
  for (DType dt : kTypes)
    for (int64_t V : {int64_t(4095), int64_t(4096), int64_t(4097), int64_t(32000), int64_t(250680)}) {
      const int64_t N = V > 100000 ? 5 : 19;
      const std::string sh = dims({N, V});
      Host logits = uniform(dt, N * V, -8, 8), t = ints(N, 0, int32_t(V));
      t.i32()[1] = -100;                 // ignored row
      t.i32()[N - 1] = int32_t(V - 1);   // last column
      t.i32()[0] = 4095 < V ? 4095 : 0;  // the CPU's chunk edge
      const float gs = 1.f / 37.f;
      Host dl = poisoned(dt, N * V);
      std::vector<float> cpu_loss(static_cast<size_t>(N));  // not size_t(N): that parses as a function declaration
      pt::cross_entropy(dt, N, V, logits.data(), t.i32(), -100, cpu_loss.data(), dl.data(), gs);
      Dev Dlog(c, logits), Dt(c, t), Dloss(c, DType::F32, N), Ddl(c, dt, N * V);
      cu::cross_entropy(c, dt, N, V, Dlog.p, Dt.as<int32_t>(), -100, Dloss.as<float>(), Ddl.p, gs);
      Host loss = Dloss.get();
      double sum = 0, cpu_sum = 0;
      for (int64_t n = 0; n < N; n++) sum += loss.get(n), cpu_sum += cpu_loss[size_t(n)];
      compare_scalar("cross_entropy.loss", sh, sum, cpu_sum, tol(dt, 1e-6, 1e-5));
      compare("cross_entropy.dlogits", sh, Ddl.get(), dl, tol(dt, 1e-10, 1e-5));
      // in place, as the model calls it (dlogits aliasing logits)
      cu::cross_entropy(c, dt, N, V, Dlog.p, Dt.as<int32_t>(), -100, Dloss.as<float>(), Dlog.p, gs);
      compare("cross_entropy.inplace", sh, Dlog.get(), dl, tol(dt, 1e-10, 1e-5));
    }
}

static void check_norm_adamw(cu::Context& c) {
  for (DType dt : kTypes)
    for (int64_t n : {int64_t(1), int64_t(65536), int64_t(65537), int64_t(3000017)}) {
      Host x = uniform(dt, n);
      const double want = pt::sum_squares(dt, n, x.data());
      Dev Dx(c, x), Ds(c, DType::F32, 2);  // one double
      cu::sum_squares(c, dt, n, Dx.p, Ds.as<double>(), false);
      cu::sum_squares(c, dt, n, Dx.p, Ds.as<double>(), true);  // a second arena accumulates
      double got = 0;
      cu::copy_to_host(c, &got, Ds.p, sizeof got);
      compare_scalar("sum_squares(x2)", std::string(pt::dtype_name(dt)) + dims({n}), got, 2 * want, 1e-12);
      {
        double again = 0;
        cu::sum_squares(c, dt, n, Dx.p, Ds.as<double>(), false);
        cu::sum_squares(c, dt, n, Dx.p, Ds.as<double>(), true);
        cu::copy_to_host(c, &again, Ds.p, sizeof again);
        const bool same = std::memcmp(&again, &got, sizeof got) == 0;
        std::printf("%-24s %s%s cuda:0 rerun %s %s\n", "sum_squares.determinism", pt::dtype_name(dt),
                    dims({n}).c_str(), same ? "bit-identical" : "DIFFERS", same ? "OK" : "FAIL");
        (same ? tally().passed : tally().failed)++;
      }
      // clipping factor on the device, as src/train/adamw.ts computes it on the host
      Dev Dscale(c, DType::F32, 1);
      const float max_norm = float(std::sqrt(want));  // below the doubled norm: clips
      cu::clip_scale(c, Ds.as<double>(), max_norm, Dscale.as<float>());
      const double norm = std::sqrt(2 * want);
      compare_scalar("clip_scale", std::string(pt::dtype_name(dt)) + dims({n}), Dscale.get().get(0),
                     double(float(max_norm / (norm + 1e-6))), 1e-7);
    }
  // off 1: every stream starts one element in (a view into an arena, as ZeRO-1's ranges are), so the
  // 4-wide kernel's alignment test sends it all to the scalar one; off 0 runs both (n % 4 = 3).
  for (DType dt : kTypes)
    for (int64_t step : {int64_t(1), int64_t(10)})
      for (int64_t off : {int64_t(0), int64_t(1)}) {
        const int64_t n = 100003 - off;
        const std::string sh = dims({n}) + " step " + std::to_string(step) + (off ? " at +1" : "");
        Host param = uniform(dt, n + off), grad = uniform(dt, n + off, -0.1f, 0.1f), master = uniform(DType::F32, n + off);
        Host m = uniform(DType::F32, n + off, -0.01f, 0.01f), v = uniform(DType::F32, n + off, 0.f, 1e-4f);
        Dev Dp(c, param), Dg(c, grad), Dmaster(c, master), Dm(c, m), Dv(c, v);
        pt::AdamWParams p{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f};
        {
          const size_t es = pt::dtype_size(dt);
          pt::adamw_step(dt, n, (char*)param.data() + off * es, (char*)grad.data() + off * es, master.f32() + off, m.f32() + off,
                         v.f32() + off, p);
        }
        // grad_scale split between the host factor and a device factor (the clip path): 0.25 * 2
        Host two(DType::F32, 1);
        two.f32()[0] = 2.f;
        Dev Dtwo(c, two);
        cu::AdamWArgs a{p.lr, p.beta1, p.beta2, p.eps, p.weight_decay, step, 0.25f, Dtwo.as<float>()};
        const size_t es = pt::dtype_size(dt);
        cu::adamw_step(c, dt, n, Dp.as<char>() + off * es, Dg.as<char>() + off * es, Dmaster.as<float>() + off,
                       Dm.as<float>() + off, Dv.as<float>() + off, a);
        compare("adamw.param", sh, Dp.get(), param, tol(dt, 1e-13, 1e-6));
        compare("adamw.master", sh, Dmaster.get(), master, 1e-13);
        compare("adamw.m", sh, Dm.get(), m, 1e-13);
        compare("adamw.v", sh, Dv.get(), v, 1e-13);
      }
}

static void check_attention(cu::Context& c) {
  struct Case {
    std::vector<int32_t> docs;
    int64_t Hq, Hkv, D;
  };
  const std::vector<Case> cases = {
      {{1}, 4, 4, 64},                  // a single one-token document
      {{37}, 4, 4, 64},                 // not a multiple of any tile
      {{1, 64, 5, 100, 1}, 8, 2, 128},  // packed, one-token documents at both ends, GQA 4
      {{130, 33}, 8, 1, 64},            // GQA 8 (multi-query)
      {{300}, 4, 1, 128},               // GQA 4, longer
      {{17, 16, 32, 33}, 2, 2, 128},    // around the 16- and 32-row tiles
      {{1, 40, 9}, 8, 4, 8},            // head_dim 8 (stories260K): lanes 8..31 hold no dimension
      {{45}, 4, 2, 16},                 // head_dim 16
      {{33, 2}, 4, 1, 32},              // head_dim 32
  };
  for (DType dt : kTypes)
    for (const Case& k : cases) {
      std::vector<int32_t> cu_seq{0};
      for (int32_t d : k.docs) cu_seq.push_back(cu_seq.back() + d);
      const int64_t T = cu_seq.back(), docs = int64_t(k.docs.size());
      int64_t maxlen = 0;
      for (int32_t d : k.docs) maxlen = std::max<int64_t>(maxlen, d);
      // the CPU reference: one batch row, the same cu_seqlens
      Host cus(DType::I32, docs + 1);
      std::copy(cu_seq.begin(), cu_seq.end(), cus.i32());
      const int64_t nq = T * k.Hq * k.D, nk = T * k.Hkv * k.D;
      Host q = uniform(dt, nq, -2, 2), kk = uniform(dt, nk, -2, 2), v = uniform(dt, nk), dout = uniform(dt, nq);
      Host out = poisoned(dt, nq), lse = poisoned(DType::F32, k.Hq * T);
      Host dq = poisoned(dt, nq), dk = poisoned(dt, nk), dv = poisoned(dt, nk);
      pt::attention_forward(dt, 1, T, T, k.Hq, k.Hkv, k.D, 0.f, q.data(), kk.data(), v.data(), cus.i32(), docs, out.data(), lse.f32());
      pt::attention_backward(dt, 1, T, k.Hq, k.Hkv, k.D, 0.f, q.data(), kk.data(), v.data(), cus.i32(), docs, out.data(),
                             dout.data(), lse.f32(), dq.data(), dk.data(), dv.data());
      Dev Dcu(c, cus), Dq(c, q), Dk(c, kk), Dv(c, v), Ddo(c, dout), Dout(c, dt, nq), Dlse(c, DType::F32, k.Hq * T);
      cu::attention_forward(c, dt, T, docs, maxlen, k.Hq, k.Hkv, k.D, 0.f, Dcu.as<int32_t>(), Dq.p, Dk.p, Dv.p, Dout.p,
                            Dlse.as<float>());
      std::string sh = dims({T, k.Hq, k.Hkv, k.D}) + " docs " + std::to_string(docs);
      compare("attention.out", sh, Dout.get(), out, tol(dt, 1e-10, 1e-5));
      // In bf16 the CPU sums the probabilities as rounded to bf16 for P·V (the output is normalised by
      // exactly what it summed); this kernel keeps P in fp32: lse moves by ~1e-4, NMSE ~1e-8 (the
      // harness's LSE_TOL in test/ops/attention.test.ts).
      compare("attention.lse", sh, Dlse.get(), lse, tol(dt, 1e-11, 1e-7));
      // backward from the CPU's out and lse, so it is checked on its own
      Dev Dco(c, out), Dcl(c, lse), Ddq(c, dt, nq), Ddk(c, dt, nk), Ddv(c, dt, nk);
      cu::attention_backward(c, dt, T, docs, maxlen, k.Hq, k.Hkv, k.D, 0.f, Dcu.as<int32_t>(), Dq.p, Dk.p, Dv.p,
                             Dco.p, Ddo.p, Dcl.as<float>(), Ddq.p, Ddk.p, Ddv.p);
      // A one-token document's dq and dk are exactly zero (its one probability is 1, so dP - delta
      // cancels): an RMS floor far under the inputs' scale (1) keeps that case a check of noise size.
      compare("attention.dq", sh, Ddq.get(), dq, tol(dt, 1e-8, 1e-4), false, 1e-3);
      compare("attention.dk", sh, Ddk.get(), dk, tol(dt, 1e-8, 1e-4), false, 1e-3);
      compare("attention.dv", sh, Ddv.get(), dv, tol(dt, 1e-8, 1e-4));
      {
        Dev dq2(c, dt, nq), dk2(c, dt, nk), dv2(c, dt, nk);
        cu::attention_backward(c, dt, T, docs, maxlen, k.Hq, k.Hkv, k.D, 0.f, Dcu.as<int32_t>(), Dq.p, Dk.p, Dv.p,
                               Dco.p, Ddo.p, Dcl.as<float>(), dq2.p, dk2.p, dv2.p);
        same_bits("attention.dq.determinism", sh, dq2.get(), Ddq.get());
        same_bits("attention.dk.determinism", sh, dk2.get(), Ddk.get());
        same_bits("attention.dv.determinism", sh, dv2.get(), Ddv.get());
      }
    }
}

// kvAttention: the op's flattening of segments into (row, slot, position) entries, then the CUDA
// kernel against the CPU's pt::kv_attention on identical caches. Segments list slots out of order
// and take rows in reverse, so a mix-up of row, slot or position shows; the CPU takes its decode
// path where every segment is one token and attention_forward otherwise.
static void check_kv_attention(cu::Context& c) {
  struct Case {
    int64_t slots, maxLen, Hq, Hkv, D;
    std::vector<pt::KvSegment> segs;  // row filled in below
  };
  const std::vector<Case> cases = {
      {3, 40, 4, 4, 128, {{2, 17, 1, 0}, {0, 0, 1, 0}, {1, 39, 1, 0}}},  // decoding: first and last position
      {4, 300, 8, 2, 128, {{1, 0, 37, 0}, {3, 250, 1, 0}, {0, 100, 5, 0}}},  // prefill beside decoding, GQA 4
      {2, 64, 8, 4, 8, {{0, 0, 1, 0}, {1, 10, 20, 0}}},                  // head_dim 8 (stories260K)
      {2, 33, 4, 1, 64, {{1, 0, 33, 0}}},                                // multi-query, the whole cache
      {3, 50, 4, 2, 16, {{2, 3, 2, 0}, {0, 48, 1, 0}}},                  // head_dim 16
      {1, 70, 2, 1, 32, {{0, 64, 6, 0}}},                                // head_dim 32, up to the end
  };
  for (DType dt : kTypes)
    for (Case k : cases) {
      int64_t R = 0;
      for (auto it = k.segs.rbegin(); it != k.segs.rend(); ++it) {
        it->row = int32_t(R);
        R += it->n;
      }
      std::vector<int32_t> entries;
      for (const pt::KvSegment& g : k.segs)
        for (int32_t i = 0; i < g.n; i++) entries.insert(entries.end(), {g.row + i, g.slot, g.start + i});
      Host ent(DType::I32, int64_t(entries.size()));
      std::copy(entries.begin(), entries.end(), ent.i32());
      const int64_t nq = R * k.Hq * k.D, nk = R * k.Hkv * k.D, nc = k.slots * k.maxLen * k.Hkv * k.D;
      Host q = uniform(dt, nq, -2, 2), kn = uniform(dt, nk, -2, 2), vn = uniform(dt, nk);
      Host kc = uniform(dt, nc, -2, 2), vc = uniform(dt, nc), out = poisoned(dt, nq);
      Dev Dq(c, q), Dkn(c, kn), Dvn(c, vn), Dkc(c, kc), Dvc(c, vc), Dent(c, ent), Dout(c, dt, nq);
      const float scale = 1.f / std::sqrt(float(k.D));
      pt::kv_attention(dt, k.segs.data(), int64_t(k.segs.size()), k.maxLen, k.Hq, k.Hkv, k.D, scale, q.data(), kn.data(), vn.data(),
                       kc.data(), vc.data(), out.data());
      cu::kv_attention(c, dt, R, Dent.as<int32_t>(), k.maxLen, k.Hq, k.Hkv, k.D, scale, Dq.p, Dkn.p, Dvn.p, Dkc.p, Dvc.p, Dout.p);
      const std::string sh = dims({R, k.Hq, k.Hkv, k.D}) + " segs " + std::to_string(k.segs.size());
      compare("kv_attention.out", sh, Dout.get(), out, tol(dt, 1e-10, 1e-5));
      compare("kv_attention.kcache", sh, Dkc.get(), kc, 0.0);
      compare("kv_attention.vcache", sh, Dvc.get(), vc, 0.0);
    }
}

static void check_gemm(cu::Context& c) {
  if (!cu::has_gemm()) {
    std::printf("gemm                     SKIPPED: this build has no cuBLASLt\n");
    return;
  }
  struct Case {
    bool ta, tb, acc;
    int64_t M, N, K;
  };
  // the three training uses (y = x·Wᵀ, dX = dY·W, dW += dYᵀ·X) at odd sizes, and one 7B-like tile
  const Case cases[] = {{false, true, false, 37, 129, 65}, {false, false, false, 37, 65, 129},
                        {true, false, true, 129, 65, 37},  {false, true, false, 1, 4096, 4096},
                        {true, false, true, 288, 768, 513}};
  for (DType dt : kTypes)
    for (const Case& k : cases) {
      const int64_t lda = (k.ta ? k.M : k.K) + 3, ldb = (k.tb ? k.K : k.N) + 5, ldc = k.N + 7;  // padded rows
      const int64_t arows = k.ta ? k.K : k.M, brows = k.tb ? k.N : k.K;
      Host A = uniform(dt, arows * lda), B = uniform(dt, brows * ldb), C0 = uniform(dt, k.M * ldc);
      Host C = k.acc ? C0 : poisoned(dt, k.M * ldc);
      // the padding columns of C must survive: start both sides from C0's padding
      if (!k.acc)
        for (int64_t r = 0; r < k.M; r++)
          for (int64_t j = k.N; j < ldc; j++) C.set(r * ldc + j, C0.get(r * ldc + j));
      Host Cdev = C;
      pt::gemm(dt, k.ta, k.tb, k.M, k.N, k.K, A.data(), lda, B.data(), ldb, C.data(), ldc, k.acc);
      Dev DA(c, A), DB(c, B), DC(c, Cdev);
      cu::gemm(c, dt, k.ta, k.tb, k.M, k.N, k.K, DA.p, lda, DB.p, ldb, DC.p, ldc, k.acc);
      std::string nm = std::string("gemm.") + (k.ta ? "T" : "N") + (k.tb ? "T" : "N") + (k.acc ? "(+=)" : "");
      compare(nm, dims({k.M, k.N, k.K}), DC.get(), C, tol(dt, 1e-9, 1e-5));
    }
  // Views: operands one element past an aligned address (a parameter inside an arena, a chunk of
  // logits), which cuBLASLt's default 256-byte alignment assumption would get wrong.
  for (DType dt : kTypes) {
    const int64_t M = 33, N = 40, K = 24, es = int64_t(pt::dtype_size(dt));
    Host A = uniform(dt, M * K + 1), B = uniform(dt, N * K + 1), C = poisoned(dt, M * N + 1);
    Host Cdev = C;
    pt::gemm(dt, false, true, M, N, K, (char*)A.data() + es, K, (char*)B.data() + es, K, (char*)C.data() + es, N, false);
    Dev DA(c, A), DB(c, B), DC(c, Cdev);
    cu::gemm(c, dt, false, true, M, N, K, DA.as<char>() + es, K, DB.as<char>() + es, K, DC.as<char>() + es, N, false);
    Host got = DC.get(), want = C;
    got.set(0, 0.f), want.set(0, 0.f);  // the element before the view is not the op's
    compare("gemm.NT.view+1", dims({M, N, K}), got, want, tol(dt, 1e-10, 1e-5));
  }
}

// The harness must be able to fail: an unwritten (poisoned) element and an error above the tolerance
// are both caught, and an exact copy passes. Host-only, so it runs on machines without a GPU too.
static bool harness_selftest() {
  Host want = uniform(DType::BF16, 1000), same = want, poison = want, off = want;
  poison.set(517, NAN);
  for (int64_t i = 0; i < off.n; i++) off.set(i, off.get(i) * 1.01f);
  bool ok = compare("", "", same, want, 0.0, true) && !compare("", "", poison, want, 1e30, true) &&
            !compare("", "", off, want, 1e-5, true);
  // No device: asking for one is a CudaError that names it, not a crash.
  if (cu::device_count() == 0) {
    try {
      cu::context(0);
      ok = false;
    } catch (const cu::CudaError& e) {
      ok = ok && std::strstr(e.what(), "cuda:0 does not exist") != nullptr;
    }
  }
  ok = ok && cu::format_bytes(1536u << 20) == "1.50 GiB";
  std::printf("harness self-test (poison, tolerance, errors) %s\n", ok ? "OK" : "FAIL");
  return ok;
}

int main(int argc, char** argv) {
  if (!harness_selftest()) return 1;
  const int n = cu::device_count();
  if (n == 0) {
    std::printf("polytune_cuda_check: SKIPPED: no CUDA device visible (nothing was checked)\n");
    return 2;
  }
  cu::Context& c = cu::context(0);
  if (argc == 3 && std::strcmp(argv[1], "--bench") == 0) {
    try {
      return run_bench(c, argv[2]);
    } catch (const std::exception& e) {
      std::printf("bench ERROR: %s\n", e.what());
      return 1;
    }
  }
  struct Op {
    const char* name;
    void (*run)(cu::Context&);
  };
  const Op ops[] = {{"add_cast", check_add_cast}, {"swiglu", check_swiglu}, {"rmsnorm", check_rmsnorm},
                    {"rope", check_rope},         {"embedding", check_embedding},
                    {"cross_entropy", check_cross_entropy}, {"norm_adamw", check_norm_adamw},
                    {"status_word", check_status_word},
                    {"attention", check_attention}, {"kv_attention", check_kv_attention},
                    {"gemm", check_gemm}};
  for (const Op& op : ops) {
    bool want = argc < 2;
    for (int i = 1; i < argc; i++) want = want || std::strstr(op.name, argv[i]);
    if (!want) continue;
    try {
      op.run(c);
      cu::synchronize(c, op.name);
    } catch (const cu::CudaError& e) {
      std::printf("%-24s ERROR: %s\n", op.name, e.what());
      tally().failed++;
      if (e.sticky) break;  // every later call would fail the same way
    } catch (const std::exception& e) {
      std::printf("%-24s ERROR: %s\n", op.name, e.what());
      tally().failed++;
    }
  }
  const cu::MemoryStats s = cu::memory_stats(c);
  std::printf("memory: live %s, peak %s, reserved %s, %lld allocations left\n", cu::format_bytes(s.live).c_str(),
              cu::format_bytes(s.peak).c_str(), cu::format_bytes(s.reserved).c_str(), (long long)s.allocations);
  // The context keeps one allocation for its life: cuBLASLt's workspace, made by the first gemm.
  const long long own = c.workspace ? 1 : 0;
  if (s.allocations != own) {
    std::printf("allocator: %lld allocations not freed FAIL\n", (long long)(s.allocations - own));
    tally().failed++;
  }
  std::printf("%d passed, %d failed\n", tally().passed, tally().failed);
  return tally().failed ? 1 : 0;
}
