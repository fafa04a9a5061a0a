// pt::gemm on every shape class its driver routes differently (the small-M weight-streaming path
// for x·Wᵀ with up to 16 rows, the packed path above it and for the other forms; edge tiles and
// k tails), against double-precision sums of the same (bf16-rounded) inputs, and bit-identical
// whatever the thread count.
import { describe, expect, it } from 'vitest';
import { Tensor, bf16ToF32, f32ToBf16, native, ops, withScope, type DType } from '../../src/tensor/index.js';
import { randn, rng } from '../helpers/random.js';
import { canCompileChecks, checksNote, runNativeCheck } from '../helpers/native-check.js';
import { digestsPerThreadCount } from '../helpers/threads.js';

const q = (a: Float32Array) => bf16ToF32(f32ToBf16(a));
const mk = (a: Float32Array, shape: number[], dt: DType) => (dt === 'bf16' ? Tensor.fromArray(f32ToBf16(a), shape, 'bf16') : Tensor.fromArray(a, shape, 'f32'));
const read = (t: Tensor) => (t.dtype === 'bf16' ? bf16ToF32(t.toArray() as Uint16Array) : (t.toArray() as Float32Array));

/**
 * Checks C (+)= op(A)·op(B) against double precision: each output within fp32 accumulation error
 * (K·2^-24 of the sum of |products|) plus, for bf16 C, its rounding (half an ulp, at most 2^-8 relative).
 */
function check(dt: DType, M: number, N: number, K: number, transA: boolean, transB: boolean, accumulate: boolean, seed: number) {
  const r = rng(seed);
  const a = q(randn(M * K, r)), b = q(randn(N * K, r)), c0 = q(randn(M * N, r));
  const A = (m: number, k: number) => (transA ? a[k * M + m] : a[m * K + k]);
  const B = (k: number, n: number) => (transB ? b[n * K + k] : b[k * N + n]);
  withScope(() => {
    const out = mk(c0, [M, N], dt);
    ops.matmul(mk(a, transA ? [K, M] : [M, K], dt), mk(b, transB ? [N, K] : [K, N], dt), { transA, transB, out, accumulate });
    const got = read(out);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = accumulate ? c0[m * N + n] : 0, mag = Math.abs(s);
        for (let k = 0; k < K; k++) {
          s += A(m, k) * B(k, n);
          mag += Math.abs(A(m, k) * B(k, n));
        }
        const tol = (K + 2) * 2 ** -24 * mag + (dt === 'bf16' ? 2 ** -8 * Math.abs(s) : 0) + 1e-30;
        const err = Math.abs(got[m * N + n] - s);
        if (!(err <= tol)) throw new Error(`${dt} ${M}x${N}x${K} tA=${transA} tB=${transB} acc=${accumulate}: C[${m}][${n}] = ${got[m * N + n]}, want ${s} (tolerance ${tol})`);
      }
    }
  });
}

describe('gemm against double-precision sums', () => {
  for (const dt of ['f32', 'bf16'] as const) {
    it(`${dt} x·Wᵀ with 1..17 rows (small-M path and the packed path beside it), k tails, edge columns, accumulate`, () => {
      let seed = 100;
      for (const M of [1, 2, 3, 4, 5, 8, 13, 16, 17])
        for (const [N, K] of [[1, 1], [7, 31], [9, 33], [33, 64], [5, 300]])
          for (const acc of [false, true]) check(dt, M, N, K, false, true, acc, seed++);
    });
    it(`${dt} dY·W, dYᵀ·X and x·Wᵀ on the packed path (edge tiles, deep K)`, () => {
      let seed = 200;
      // 120×1060×300: several column chunks (op(A) packed once and shared by them) and row blocks;
      // 20×40×4133: more than one of x·Wᵀ's deeper k-slices, the last one odd.
      for (const [M, N, K] of [[1, 5, 7], [15, 33, 17], [29, 65, 600], [40, 3, 2], [120, 1060, 300], [20, 40, 4133]])
        for (const [tA, tB] of [[false, false], [true, false], [false, true]] as const) check(dt, M, N, K, tA, tB, tA, seed++);
    });
  }
});

describe('x·Wᵀ with W read in place gives the packed path\'s bits', () => {
  // The AVX-512 build computes x·Wᵀ as Cᵀ = W·xᵀ with W unpacked (gemm.cc); POLYTUNE_GEMM_DIRECT=0
  // sends the same call down the packed path. Both sum each output over the same k-slices in the
  // same order, so every bit must agree: edge tiles of W's 8 rows and x's 48 (and 16) columns, two
  // chunks of x (529 rows), several k-slices, odd K (where the pair path must fall back), W as a
  // view at an odd element offset (its pairs 2 bytes off a 4-byte boundary), accumulate. Other
  // builds have one path: same bits.
  const run = (dt: DType, M: number, N: number, K: number, acc: boolean, direct: boolean, seed: number, offset: number) =>
    withScope(() => {
      const r = rng(seed);
      const x = mk(q(randn(M * K, r)), [M, K], dt);
      const wAll = mk(q(randn(N * K + offset, r)), [N * K + offset, 1], dt);
      const w = offset ? new Tensor(wAll.handle.view([N, K], offset), wAll.device) : mk(q(randn(N * K, r)), [N, K], dt);
      const out = mk(q(randn(M * N, r)), [M, N], dt);
      const before = process.env.POLYTUNE_GEMM_DIRECT;
      process.env.POLYTUNE_GEMM_DIRECT = direct ? '1' : '0';
      try {
        ops.matmul(x, w, { transB: true, out, accumulate: acc });
      } finally {
        if (before === undefined) delete process.env.POLYTUNE_GEMM_DIRECT;
        else process.env.POLYTUNE_GEMM_DIRECT = before;
      }
      return out.toArray();
    });
  // Observable where it is taken: W is never packed, so repeated products with one W fill no
  // packed-weights cache entry, where the packed path fills one from W's second use.
  const info = native().buildInfo();
  const off = process.env.POLYTUNE_GEMM_DIRECT === '0';
  const taken = { f32: !off && info.simd.startsWith('avx512'), bf16: !off && info.simd === 'avx512bf16' && !info.amx };
  it('buildInfo().gemmXwtInPlace names those dtypes', () => {
    expect(info.gemmXwtInPlace).toEqual((['f32', 'bf16'] as const).filter((dt) => taken[dt]));
  });
  for (const dt of ['f32', 'bf16'] as const) {
    it.skipIf(!taken[dt])(`${dt}: taken on this build (no packing of W, so no cache fill)${taken[dt] ? '' : ` (skipped: ${off ? "POLYTUNE_GEMM_DIRECT=0" : `${info.isa} packs W`})`}`, () => {
      withScope(() => {
        const r = rng(dt === 'f32' ? 590 : 591);
        const x = mk(randn(40 * 96, r), [40, 96], dt), w = mk(randn(70 * 96, r), [70, 96], dt);
        const fills = () => native().packCacheStats().fills;
        const f0 = fills();
        for (let i = 0; i < 3; i++) ops.matmul(x, w, { transB: true });
        expect(fills()).toBe(f0);
        process.env.POLYTUNE_GEMM_DIRECT = '0';
        try {
          for (let i = 0; i < 3; i++) ops.matmul(x, w, { transB: true });
        } finally {
          delete process.env.POLYTUNE_GEMM_DIRECT;
        }
        expect(fills()).toBeGreaterThan(f0);
      });
    });
    it(`${dt}: edges, chunks, k-slices, odd K, an odd offset, accumulate`, () => {
      let seed = 500;
      const shapes = [[17, 1, 2], [33, 7, 30], [47, 9, 64], [48, 8, 66], [49, 15, 130], [100, 17, 4100], [529, 65, 40], [64, 130, 31], [20, 9, 1031]];
      for (const [M, N, K] of shapes)
        for (const acc of [false, true])
          for (const offset of [0, 1]) {
            const s = seed++;
            const a = run(dt, M, N, K, acc, true, s, offset), b = run(dt, M, N, K, acc, false, s, offset);
            expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${dt} ${M}x${N}x${K} acc=${acc} offset=${offset}`).toBe(true);
          }
    });
  }
});

describe('gemm is bit-identical whatever the thread count', () => {
  const child = `
    const n = require(process.argv[1]);
    let s = 7;
    const rnd = (k) => { const a = new Float32Array(k); for (let i = 0; i < k; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; a[i] = s / 2 ** 32 * 2 - 1; } return a; };
    const bf = (a) => { const u = new Uint32Array(a.buffer); const h = new Uint16Array(a.length); for (let i = 0; i < a.length; i++) h[i] = u[i] >>> 16; return h; };
    const make = (shape, dt) => { const k = shape[0] * shape[1]; const t = new n.NativeTensor(shape, dt); const d = rnd(k); t.writeBytes(0, dt === 'bf16' ? bf(d) : d); return t; };
    const h = require('node:crypto').createHash('sha256');
    for (const dt of ['f32', 'bf16'])
      for (const [M, N, K] of [[1, 1027, 515], [16, 515, 300], [70, 259, 130], [40, 1100, 600], [200, 1300, 300], [30, 600, 2200]])
        for (const [tA, tB] of [[false, true], [false, false], [true, false]]) {
          const a = make(tA ? [K, M] : [M, K], dt), b = make(tB ? [N, K] : [K, N], dt), c = new n.NativeTensor([M, N], dt);
          n.matmul(a, b, c, tA, tB, false);
          h.update(c.readBytes());
        }
    console.log(h.digest('hex'));`;
  // The shapes over 512 columns span several column chunks, so tasks wait on B panels, stripes and
  // op(A) blocks other threads pack (split by columns at 30 and 40 rows, by rows at 200). dY·W's B
  // is packed whole in stripes there, or chunk by chunk in a ring with POLYTUNE_GEMM_STRIPE_MB=0:
  // the same packing, so the same bits.
  it('small-M and packed x·Wᵀ, dY·W and dYᵀ·X, f32 and bf16, with 1, 2 and 3 OpenMP threads, B in stripes or a ring', () => {
    const digests = [...digestsPerThreadCount(child), ...digestsPerThreadCount(child, [1, 2], { POLYTUNE_GEMM_STRIPE_MB: '0' })];
    expect(digests[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(digests).size).toBe(1);
  }, 60_000);
});

describe('gemm on every ISA path the same source compiles to', () => {
  // The addon is built for this machine's CPU, so the other kernels and packers (AVX-512 without
  // bf16 dot products, AVX2, portable) are compiled here into a standalone check, as on a CPU that
  // picks them, and run against double-precision sums.
  // AMX off in the native entries, so a Sapphire Rapids machine checks the vdpbf16ps and AVX-512
  // kernels too, and the AMX tiles in an entry of their own (skipped where the CPU has none).
  const noAmx = ['-mno-amx-tile', '-mno-amx-bf16', '-mno-amx-int8'];
  const paths: [string, string[]][] = [
    ['amx', ['-march=sapphirerapids']],
    ['avx512bf16', ['-march=native', ...noAmx]],
    ['avx512', ['-march=native', '-mno-avx512bf16', ...noAmx]],
    ['avx2', ['-march=x86-64-v3']],
    ['portable', ['-march=x86-64']],
  ];
  for (const [isa, flags] of paths) {
    it.skipIf(!canCompileChecks)(`${isa} (${flags.join(' ')}): f32 and bf16, three forms, edges, k tails, accumulate${checksNote}`, (ctx) => {
      const r = runNativeCheck<{ isa: string; checked: number; bad: number; rounded: number; roundBad: number }>(
        'gemm_check.cc', ['gemm.cc', 'pack_cache.cc', 'gemm_small_m.cc'], flags, { env: { ...process.env, OMP_NUM_THREADS: '2' } });
      // -march=native on a CPU without the ISA compiles a different path (reported below); a
      // compiled path this CPU cannot run stops with SIGILL: say so.
      if (!r) return ctx.skip(`gemm ${isa}: this CPU cannot run it, not checked`);
      // Checked all the same (r.bad below); only the label is another path's.
      if (r.isa !== isa) {
        expect(r.bad).toBe(0);
        return ctx.skip(`gemm ${isa}: this CPU runs ${r.isa} for it (checked, see that path's test)`);
      }
      expect(r.checked).toBe(1430316);
      expect(r.bad).toBe(0);
      expect(r.rounded).toBe(110112);
      expect(r.roundBad).toBe(0);
    }, 120_000);
  }
});
