// rmsnorm and its backward: y = x · rstd · w with rstd = 1/sqrt(mean(x²) + eps); dx overwritten, dw
// accumulated.
import { describe, expect, it } from 'vitest';
import { Tensor, native, ops, withScope, type DType, type Device } from '../../src/tensor/index.js';
import { dot, gradCheck } from '../helpers/gradcheck.js';
import { randn, rng } from '../helpers/random.js';
import { backends, caseLabel, compare, host, out, put, q, type Tolerance } from './harness.js';

interface Case {
  N: number;
  C: number;
  dtype: DType;
  tol: Tolerance;
}
// One row; widths that are no multiple of 16; a wide row (the 7B hidden size).
const cases: Case[] = [
  { N: 1, C: 64, dtype: 'f32', tol: { nmse: 1e-10 } },
  { N: 13, C: 67, dtype: 'f32', tol: { nmse: 1e-10 } },
  { N: 5, C: 4096, dtype: 'f32', tol: { nmse: 1e-10 } },
  { N: 13, C: 67, dtype: 'bf16', tol: { nmse: 2e-5 } },
  { N: 3, C: 4096, dtype: 'bf16', tol: { nmse: 2e-5 } },
];

function inputs(c: Case) {
  const r = rng(c.N * 1000 + c.C);
  return { x: q(randn(c.N * c.C, r, 2)), w: q(randn(c.C, r)), dy: q(randn(c.N * c.C, r)), dw0: q(randn(c.C, r, 0.5)) };
}

/** Forward and backward on one device from host inputs, every output poisoned first. */
function run(c: Case, device: Device): { y: Float32Array; rstd: Float32Array; dx: Float32Array; dw: Float32Array } {
  const { x, w, dy, dw0 } = inputs(c);
  return withScope(() => {
    const xt = put(x, [c.N, c.C], c.dtype, device), wt = put(w, [c.C], c.dtype, device);
    const y = out([c.N, c.C], c.dtype, device), rstd = out([c.N], 'f32', device);
    native().rmsnorm(xt.handle, wt.handle, 1e-5, y.handle, rstd.handle);
    const dx = out([c.N, c.C], c.dtype, device), dw = put(dw0, [c.C], c.dtype, device);
    native().rmsnormBackward(xt.handle, wt.handle, rstd.handle, put(dy, [c.N, c.C], c.dtype, device).handle, dx.handle, dw.handle);
    return { y: host(y), rstd: host(rstd), dx: host(dx), dw: host(dw) };
  });
}

/** Double-precision forward and backward (dw includes the accumulated dw0). */
function reference(c: Case) {
  const { x, w, dy, dw0 } = inputs(c);
  const { N, C } = c;
  const y = new Float64Array(N * C), rstd = new Float64Array(N), dx = new Float64Array(N * C), dw = Float64Array.from(dw0);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let i = 0; i < C; i++) ss += x[n * C + i] ** 2;
    const rs = 1 / Math.sqrt(ss / C + 1e-5);
    rstd[n] = rs;
    let g = 0; // sum of dy·w·x over the row
    for (let i = 0; i < C; i++) {
      y[n * C + i] = x[n * C + i] * rs * w[i];
      g += dy[n * C + i] * w[i] * x[n * C + i];
      dw[i] += dy[n * C + i] * x[n * C + i] * rs;
    }
    for (let i = 0; i < C; i++) dx[n * C + i] = rs * dy[n * C + i] * w[i] - (rs ** 3 * x[n * C + i] * g) / C;
  }
  return { y, rstd, dx, dw };
}

describe('rmsnorm', () => {
  describe('reference', () => {
    it.each(cases)('$dtype [$N, $C] against double precision', (c) => {
      const got = run(c, 'cpu'), want = reference(c);
      const label = caseLabel('rmsnorm', c.dtype, [c.N, c.C], 'cpu');
      compare(`${label} out`, got.y, want.y, c.tol);
      compare(`${label} rstd`, got.rstd, want.rstd, { nmse: 1e-10 });
      compare(`${label} dx`, got.dx, want.dx, c.tol);
      compare(`${label} dweight`, got.dw, want.dw, c.tol);
    });

    it('accumulates into dweight and overwrites dx', () => {
      const c = cases[1];
      const a = run(c, 'cpu'), b = run({ ...c }, 'cpu');
      expect(b.dw).toEqual(a.dw); // deterministic, whatever was in the poisoned dx before
      const { dw0 } = inputs(c);
      expect(a.dw.some((v, i) => v !== dw0[i])).toBe(true);
    });
  });

  describe('gradients', () => {
    it('f32 backward against finite differences', () => {
      const r = rng(4);
      const [N, C] = [4, 16];
      const x = randn(N * C, r), w = randn(C, r), G = randn(N * C, r);
      const f32 = (a: Float32Array, shape: number[]) => Tensor.fromArray(a, shape, 'f32');
      const arr = (t: Tensor) => t.toArray() as Float32Array;
      const f = () => withScope(() => dot(arr(ops.rmsnorm(f32(x, [N, C]), f32(w, [C]), 1e-5).out), G));
      const [dx, dw] = withScope(() => {
        const { rstd } = ops.rmsnorm(f32(x, [N, C]), f32(w, [C]), 1e-5);
        const dw = Tensor.zeros([C], 'f32');
        const dx = ops.rmsnormBackward(f32(x, [N, C]), f32(w, [C]), rstd, f32(G, [N, C]), dw);
        return [arr(dx), arr(dw)];
      });
      gradCheck('rmsnorm', [x, w], [dx, dw], f);
    });
  });

  describe.each(backends())('backends: $name', ({ device, skip }) => {
    it.skipIf(!!skip).each(cases)('$dtype [$N, $C] against the cpu', (c) => {
      const got = run(c, device), want = run(c, 'cpu');
      const label = caseLabel('rmsnorm', c.dtype, [c.N, c.C], device);
      for (const k of ['y', 'rstd', 'dx', 'dw'] as const) compare(`${label} ${k}`, got[k], want[k], c.tol);
    });
  });
});
