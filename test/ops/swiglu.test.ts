// swiglu: out = silu(gate) · up elementwise, and its backward (dgate, dup overwritten).
import { describe, it } from 'vitest';
import { Tensor, native, ops, withScope, type DType, type Device } from '../../src/tensor/index.js';
import { dot, gradCheck } from '../helpers/gradcheck.js';
import { randn, rng } from '../helpers/random.js';
import { backends, caseLabel, compare, host, out, put, q, type Tolerance } from './harness.js';

interface Case {
  n: number;
  dtype: DType;
  tol: Tolerance;
}
// Lengths that are no multiple of the vector width, and one above the parallel threshold.
const cases: Case[] = [
  { n: 1, dtype: 'f32', tol: { nmse: 1e-12 } },
  { n: 1001, dtype: 'f32', tol: { nmse: 1e-12 } },
  { n: 70001, dtype: 'f32', tol: { nmse: 1e-12 } },
  { n: 1001, dtype: 'bf16', tol: { ulp: 1 } },
  { n: 70001, dtype: 'bf16', tol: { ulp: 1 } },
];

function inputs(c: Case) {
  const r = rng(c.n);
  return { g: q(randn(c.n, r, 6)), u: q(randn(c.n, r, 2)), dy: q(randn(c.n, r)) };
}

function run(c: Case, device: Device) {
  const { g, u, dy } = inputs(c);
  return withScope(() => {
    const [gt, ut] = [put(g, [c.n], c.dtype, device), put(u, [c.n], c.dtype, device)];
    const y = out([c.n], c.dtype, device), dg = out([c.n], c.dtype, device), du = out([c.n], c.dtype, device);
    native().swiglu(gt.handle, ut.handle, y.handle);
    native().swigluBackward(gt.handle, ut.handle, put(dy, [c.n], c.dtype, device).handle, dg.handle, du.handle);
    return { y: host(y), dg: host(dg), du: host(du) };
  });
}

function reference(c: Case) {
  const { g, u, dy } = inputs(c);
  const y = new Float64Array(c.n), dg = new Float64Array(c.n), du = new Float64Array(c.n);
  for (let i = 0; i < c.n; i++) {
    const s = 1 / (1 + Math.exp(-g[i]));
    y[i] = g[i] * s * u[i];
    du[i] = dy[i] * g[i] * s;
    dg[i] = dy[i] * u[i] * s * (1 + g[i] * (1 - s));
  }
  return { y, dg, du };
}

describe('swiglu', () => {
  describe('reference', () => {
    it.each(cases)('$dtype [$n] against double precision', (c) => {
      const got = run(c, 'cpu'), want = reference(c);
      for (const k of ['y', 'dg', 'du'] as const) compare(`${caseLabel('swiglu', c.dtype, [c.n], 'cpu')} ${k}`, got[k], want[k], c.tol);
    });
  });

  describe('gradients', () => {
    it('f32 backward against finite differences', () => {
      const r = rng(6);
      const n = 40;
      const g = randn(n, r, 3), u = randn(n, r), G = randn(n, r);
      const f32 = (a: Float32Array) => Tensor.fromArray(a, [n], 'f32');
      const f = () => withScope(() => dot(host(ops.swiglu(f32(g), f32(u))), G));
      const [dg, du] = withScope(() => {
        const { dgate, dup } = ops.swigluBackward(f32(g), f32(u), f32(G));
        return [host(dgate), host(dup)];
      });
      gradCheck('swiglu', [g, u], [dg, du], f);
    });
  });

  describe.each(backends())('backends: $name', ({ device, skip }) => {
    it.skipIf(!!skip).each(cases)('$dtype [$n] against the cpu', (c) => {
      const got = run(c, device), want = run(c, 'cpu');
      for (const k of ['y', 'dg', 'du'] as const) compare(`${caseLabel('swiglu', c.dtype, [c.n], device)} ${k}`, got[k], want[k], c.tol);
    });
  });
});
