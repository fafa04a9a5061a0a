// The shared vectorised exp (native/cpu/vec_exp.h) and the ops built on it (cross-entropy, SwiGLU):
// accuracy against double-precision exp on every ISA form, results against double-precision
// references over the whole input range that matters, and bit-identical outputs whatever the
// OpenMP thread count.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Tensor, bf16ToF32, f32ToBf16, ops, withScope } from '../../src/tensor/index.js';
import { randint, randn, rng } from '../helpers/random.js';
import { canCompileChecks, checksNote, runNativeCheck } from '../helpers/native-check.js';
import { digestsPerThreadCount } from '../helpers/threads.js';

/** log Σ exp(row), in double with the max taken out: the reference for the kernels' row loss. */
function logSumExp(row: Float32Array): number {
  const mx = row.reduce((a, b) => Math.max(a, b), -Infinity);
  let s = 0;
  for (const v of row) s += Math.exp(v - mx);
  return mx + Math.log(s);
}

describe('vectorised exp against double-precision exp', () => {
  // Every 1009th float bit pattern (4.3M values, all exponents and both signs) plus the special values;
  // the same check run over all 2^32 floats gave 1.01 ulp (normal) and 0.75 ulp (subnormal results).
  const isas: [string, string[]][] = [
    ['avx512', ['-mavx512f', '-mavx512dq', '-mfma']],
    ['avx2', ['-mavx2', '-mfma']],
    ['scalar', ['-mfma', '-mno-avx2']],
    // A portable build without FMA: the scalar form rounds a·b + c twice.
    ['scalar', ['-mno-fma', '-mno-avx2']],
  ];
  for (const [isa, flags] of isas) {
    it.skipIf(!canCompileChecks)(`${isa} form (${flags.join(' ')}): ≤ 2 ulp where exp is normal, ≤ 1 subnormal ulp below, bit-identical to the scalar form${checksNote}`, (ctx) => {
        const r = runNativeCheck<{
          isa: string; checked: number; maxUlpNormal: number; maxUlpSubnormal: number; mismatches: number; specialsOk: boolean;
          table?: { checked: number; maxUlpNormal: number; maxUlpSubnormal: number; bad: number };
          fast?: { checked: number; maxRelLessGrowth: number; maxSubnormalUlpBeyond: number; bad: number; finiteMismatches: number };
        }>('exp_check.cc', [], flags, { args: ['1009'], openmp: false });
        // The machine may lack the ISA (no AVX-512): then the compiled check cannot run, say so.
        if (!r) return ctx.skip(`exp ${isa}: this CPU cannot run it, not checked`);
        expect(r.isa).toBe(isa);
        expect(r.checked).toBeGreaterThan(4.2e6);
        expect(r.maxUlpNormal).toBeLessThanOrEqual(2);
        expect(r.maxUlpSubnormal).toBeLessThanOrEqual(1);
        expect(r.mismatches).toBe(0);
        expect(r.specialsOk).toBe(true);
        // exp512_table (cross-entropy's exp): no scalar twin, so accuracy only; all 2^32 floats gave 1.07 and 1.01
        // (its subnormal results round twice).
        if (isa === 'avx512') {
          expect(r.table?.checked).toBeGreaterThan(4.2e6);
          expect(r.table?.maxUlpNormal).toBeLessThanOrEqual(1.5);
          expect(r.table?.maxUlpSubnormal).toBeLessThanOrEqual(1.5);
          expect(r.table?.bad).toBe(0);
          // exp512_fast (bf16 cross-entropy and SwiGLU): relative error ≤ 1.7e-7 + 7.3e-8·|x| (all 2^32
          // floats gave 1.69e-7 beyond the |x| term), one subnormal ulp beyond that below.
          expect(r.fast?.checked).toBeGreaterThan(4.2e6);
          expect(r.fast?.maxRelLessGrowth).toBeLessThanOrEqual(1.7e-7);
          expect(r.fast?.maxSubnormalUlpBeyond).toBeLessThanOrEqual(1);
          expect(r.fast?.bad).toBe(0);
          // exp512_fast_finite (cross-entropy's first pass): bit-identical wherever x·log2e is finite.
          expect(r.fast?.finiteMismatches).toBe(0);
        }
    }, 60_000);
  }
});

describe('cross-entropy and SwiGLU on every ISA path the same source compiles to', () => {
  // The addon runs the AVX-512 kernels on this machine; a CPU without AVX-512 takes the AVX2 or the
  // portable loops, which only this check runs: native/cpu/cross_entropy.cc and swiglu.cc compiled
  // for each, against double precision on the inputs as stored (test/native/ce_swiglu_check.cc),
  // and one thread against two bit for bit.
  const paths: [string, string[]][] = [
    ['avx512', ['-march=native']],
    ['avx2', ['-march=x86-64-v3']],
    ['portable', ['-march=x86-64']],
  ];
  for (const [isa, flags] of paths) {
    it.skipIf(!canCompileChecks)(`${isa} (${flags.join(' ')}): loss and gradient, forward and backward, tails, in place${checksNote}`, (ctx) => {
      const r = runNativeCheck<{ isa: string; ce: { checked: number; bad: number }; swiglu: { checked: number; bad: number }; threadMismatches: number }>(
        'ce_swiglu_check.cc', ['cross_entropy.cc', 'swiglu.cc'], flags);
      if (!r) return ctx.skip(`ce/swiglu ${isa}: this CPU cannot run it, not checked`);
      expect(r.ce.bad).toBe(0);
      expect(r.swiglu.bad).toBe(0);
      expect(r.threadMismatches).toBe(0);
      expect(r.ce.checked).toBe(426174);
      expect(r.swiglu.checked).toBe(426108);
      // -march=native on a CPU without AVX-512 builds the AVX2 path: checked, under that name.
      if (r.isa !== isa) return ctx.skip(`ce/swiglu ${isa}: this CPU builds ${r.isa} for it (checked, see that path's test)`);
    }, 60_000);
  }
});

describe('ops on the shared exp, against double-precision references', () => {
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  // Gate values across the whole range: tails where exp(-x) under- or overflows, and ±0, ±inf.
  const gates = (n: number) => {
    const g = randn(n, rng(31), 110);
    g.set([0, -0, 1e-30, -1e-30, 88.8, -88.8, 104, -104, Infinity, -Infinity, 20, -20], 0);
    return g;
  };
  // Relative error against `size` (the magnitude of the terms, so a sum that cancels is judged by
  // its inputs); below 1e-30 absolute, since a float quotient by an overflowed exp is 0 there.
  const relErr = (got: number, want: number, size = Math.abs(want)) =>
    Number.isNaN(want) ? (Number.isNaN(got) ? 0 : Infinity) : got === want ? 0 : Math.abs(got - want) / Math.max(size, 1e-30);

  it('swiglu forward and backward within 1e-6 relative of double precision (f32, 4099 values, ±110 and ±inf)', () => {
    const n = 4099;
    const g = gates(n), u = randn(n, rng(32), 3), d = randn(n, rng(33), 2);
    withScope(() => {
      const gt = Tensor.fromArray(g, [n]), ut = Tensor.fromArray(u, [n]), dt = Tensor.fromArray(d, [n]);
      const out = ops.swiglu(gt, ut).toArray() as Float32Array;
      const { dgate, dup } = ops.swigluBackward(gt, ut, dt);
      const dg = dgate.toArray() as Float32Array, du = dup.toArray() as Float32Array;
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const x = g[i], s = sigmoid(x), dus = d[i] * u[i] * s;
        const dgWant = dus * (1 + x * (1 - s)), dgSize = Math.abs(dus) * (1 + Math.abs(x * (1 - s)));
        worst = Math.max(worst, relErr(out[i], x * s * u[i]), relErr(du[i], d[i] * x * s), relErr(dg[i], dgWant, Number.isFinite(dgSize) ? dgSize : Math.abs(dgWant)));
      }
      expect(worst).toBeLessThan(1e-6);
    });
  });

  it('swiglu bf16 forward and backward within bf16 rounding of double precision (4099 values, ±110, ±inf, -0)', () => {
    // The bf16 kernel has its own sigmoid (exp512_fast of -|x|, a reciprocal, the sign picking
    // s or 1 - s): inputs rounded to bf16 first, results judged against double precision on those.
    const n = 4099;
    const round = (a: Float32Array) => bf16ToF32(f32ToBf16(a));
    const g = round(gates(n)), u = round(randn(n, rng(32), 3)), d = round(randn(n, rng(33), 2));
    withScope(() => {
      const bf = (a: Float32Array) => Tensor.fromArray(f32ToBf16(a), [n], 'bf16');
      const gt = bf(g), ut = bf(u), dt = bf(d);
      const out = bf16ToF32(ops.swiglu(gt, ut).toArray() as Uint16Array);
      const { dgate, dup } = ops.swigluBackward(gt, ut, dt);
      const dg = bf16ToF32(dgate.toArray() as Uint16Array), du = bf16ToF32(dup.toArray() as Uint16Array);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const x = g[i], s = sigmoid(x), dus = d[i] * u[i] * s;
        const dgWant = dus * (1 + x * (1 - s)), dgSize = Math.abs(dus) * (1 + Math.abs(x * (1 - s)));
        worst = Math.max(worst, relErr(out[i], x * s * u[i]), relErr(du[i], d[i] * x * s), relErr(dg[i], dgWant, Number.isFinite(dgSize) ? dgSize : Math.abs(dgWant)));
      }
      // Half a bf16 ulp is at most 2^-8 of the value (8 significant bits); the f32 arithmetic
      // before the rounding adds ~1e-6.
      expect(worst).toBeLessThan(2 ** -8 + 1e-5);
    });
  });

  it('cross-entropy loss and gradient within 1e-6 of double precision (V 32003, logits spread ±60, a -inf logit)', () => {
    const [N, V] = [3, 32003];
    const x = randn(N * V, rng(34), 60);
    x[5] = -Infinity;
    const t = randint(N, V, rng(35));
    const scale = 1 / 3;
    withScope(() => {
      const l = Tensor.fromArray(x, [N, V]);
      const losses = Tensor.full([N], 'f32', -1);
      ops.crossEntropy(l, Tensor.fromArray(t, [N]), losses, { dlogits: l, gradScale: scale });
      const grad = l.toArray() as Float32Array;
      const got = losses.toArray() as Float32Array;
      let worstLoss = 0, worstGrad = 0;
      for (let n = 0; n < N; n++) {
        const row = x.subarray(n * V, (n + 1) * V);
        const lse = logSumExp(row);
        worstLoss = Math.max(worstLoss, Math.abs(got[n] - (lse - row[t[n]])) / (lse - row[t[n]]));
        for (let c = 0; c < V; c++) {
          const g = scale * (Math.exp(row[c] - lse) - (c === t[n] ? 1 : 0));
          // Absolute against the largest gradient (scale): probabilities near 0 have no relative meaning.
          worstGrad = Math.max(worstGrad, Math.abs(grad[n * V + c] - g) / scale);
        }
      }
      expect(worstLoss).toBeLessThan(1e-6);
      expect(worstGrad).toBeLessThan(1e-6);
      expect(grad[5]).toBe(0);
    });
  });
});

describe('cross-entropy rows that move the running shift, against double precision', () => {
  // The kernel shifts each lane by the largest logit seen so far and moves the shift only when the
  // sums grow past 2^64; these rows take every path: a ramp upwards (the shift moves in every
  // group, more often than the kept spans allow, so the gradient is recomputed), a late spike
  // (one move), a leading run of -inf, and probabilities so small that their gradients are
  // subnormal (bf16 keeps them: a store that flushed them to zero fails here).
  const [N, V] = [4, 32003];
  const rows = (): Float32Array => {
    const x = new Float32Array(N * V);
    const r = rng(36), g = randn(V, rng(37), 3);
    for (let c = 0; c < V; c++) {
      x[c] = c < 17000 ? -3400 + 0.2 * c : g[c];  // up to 0: lse stays small, so f32 resolves it
      x[V + c] = g[c];
      x[2 * V + c] = c < 5000 ? -Infinity : g[c] * 2;
      x[3 * V + c] = c % 3001 === 0 ? 0 : -89 + 3 * r();
    }
    x[V + 20011] = 80;
    return x;
  };
  const targets = Int32Array.from([16999, 20011, 6002, 0]);
  const scale = 1 / 3;
  for (const dtype of ['f32', 'bf16'] as const) {
    it(`${dtype}: loss within 1e-6 relative, gradient within ${dtype === 'f32' ? '1e-6 · scale' : 'bf16 rounding'}`, () => {
      let x = rows();
      if (dtype === 'bf16') x = bf16ToF32(f32ToBf16(x));
      withScope(() => {
        const l = dtype === 'f32' ? Tensor.fromArray(x, [N, V]) : Tensor.fromArray(f32ToBf16(x), [N, V], 'bf16');
        const losses = Tensor.zeros([N], 'f32');
        ops.crossEntropy(l, Tensor.fromArray(targets, [N]), losses, { dlogits: l, gradScale: scale });
        const rowLoss = losses.toArray() as Float32Array;
        const out = l.toArray();
        const grad = dtype === 'f32' ? (out as Float32Array) : bf16ToF32(out as Uint16Array);
        let want = 0, worst = 0, subnormals = 0;
        for (let n = 0; n < N; n++) {
          const row = x.subarray(n * V, (n + 1) * V);
          const lse = logSumExp(row);
          want += lse - row[targets[n]];
          expect(Math.abs(rowLoss[n] - (lse - row[targets[n]]))).toBeLessThanOrEqual(1e-6 * Math.max(1, lse - row[targets[n]]));
          for (let c = 0; c < V; c++) {
            const g = scale * (Math.exp(row[c] - lse) - (c === targets[n] ? 1 : 0));
            const got = grad[n * V + c];
            if (g !== 0 && Math.abs(g) < 2 ** -126) subnormals += got !== 0 ? 1 : 0;
            // f32: absolute against scale; bf16: half a bf16 ulp of the value (2^-9 relative) or of
            // the subnormal spacing 2^-133, plus the f32 computation's error.
            const err = dtype === 'f32' ? Math.abs(got - g) / scale : Math.abs(got - g) / (2 ** -8 * Math.abs(g) + 2 ** -133);
            worst = Math.max(worst, err);
          }
        }
        expect(Math.abs(rowLoss.reduce((a, b) => a + b, 0) - want) / Math.abs(want)).toBeLessThan(1e-6);
        expect(worst).toBeLessThan(dtype === 'f32' ? 1e-6 : 1);
        expect(grad[2 * V]).toBe(0);
        expect(subnormals).toBeGreaterThan(1000);
      });
    });
  }
});

describe('cross-entropy on a row of -inf logits', () => {
  // Nothing to normalise: the loss is NaN (-inf - -inf), as the chunked kernel gave; the gradient
  // is 0 but -scale at the target, not NaN.
  for (const dtype of ['f32', 'bf16'] as const) {
    it(dtype, () => {
      const V = 1000;
      const x = new Float32Array(V).fill(-Infinity);
      withScope(() => {
        const l = dtype === 'f32' ? Tensor.fromArray(x, [1, V]) : Tensor.fromArray(f32ToBf16(x), [1, V], 'bf16');
        const losses = Tensor.zeros([1], 'f32');
        ops.crossEntropy(l, Tensor.fromArray(Int32Array.from([7]), [1]), losses, { dlogits: l, gradScale: 0.5 });
        const o = l.toArray();
        const g = dtype === 'f32' ? (o as Float32Array) : bf16ToF32(o as Uint16Array);
        expect(Number.isNaN((losses.toArray() as Float32Array)[0])).toBe(true);
        expect(g[7]).toBe(-0.5);
        expect([...g].filter((v, i) => i !== 7).every((v) => v === 0)).toBe(true);
      });
    });
  }
});

describe('bit-identical whatever the thread count', () => {
  // A child process per OMP_NUM_THREADS (the team size is fixed at load); it prints a hash of
  // every output. Sizes are above the parallel threshold and not multiples of the vector width.
  const child = `
    const n = require(process.argv[1]);
    let s = 12345;
    const rnd = (k, scale) => { const a = new Float32Array(k); for (let i = 0; i < k; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; a[i] = (s / 2 ** 32 * 2 - 1) * scale; } return a; };
    const bf = (a) => { const u = new Uint32Array(a.buffer); const h = new Uint16Array(a.length); for (let i = 0; i < a.length; i++) h[i] = u[i] >>> 16; return h; };
    const make = (data, shape, dt) => { const t = new n.NativeTensor(shape, dt); t.writeBytes(0, dt === 'bf16' ? bf(data) : data); return t; };
    const h = require('node:crypto').createHash('sha256');
    for (const dt of ['f32', 'bf16']) {
      const k = 3 * 32768 + 5;
      const g = make(rnd(k, 30), [k], dt), u = make(rnd(k, 2), [k], dt), d = make(rnd(k, 1), [k], dt);
      const out = new n.NativeTensor([k], dt), dg = new n.NativeTensor([k], dt), du = new n.NativeTensor([k], dt);
      n.swiglu(g, u, out); n.swigluBackward(g, u, d, dg, du);
      for (const t of [out, dg, du]) h.update(t.readBytes());
      const [N, V] = [7, 32003];
      const l = make(rnd(N * V, 20), [N, V], dt);
      const tg = new n.NativeTensor([N], 'i32'); tg.writeBytes(0, Int32Array.from([1, 32002, -100, 7, 16000, 0, 31999]));
      const ls = new n.NativeTensor([N], 'f32');
      n.crossEntropy(l, tg, -100, ls, l, 0.125);
      h.update(ls.readBytes()); h.update(l.readBytes());
    }
    console.log(h.digest('hex'));`;
  it('swiglu, its backward and cross-entropy (f32 and bf16) with 1, 2 and 3 OpenMP threads', () => {
    const digests = digestsPerThreadCount(child);
    expect(digests[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(digests).size).toBe(1);
    expect(createHash('sha256').update('').digest('hex')).not.toBe(digests[0]);
  }, 60_000);
});
