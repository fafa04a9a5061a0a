// rope: rotates pairs (i, i + D/2) by pos · theta^(-2i/D) (Hugging Face's rotate_half layout), from
// f32 tables shared by every backend; the inverse rotation is the backward.
import { describe, expect, it } from 'vitest';
import { ropeTables } from '../../src/model/rope-tables.js';
import { Tensor, native, ops, withScope, type DType, type Device } from '../../src/tensor/index.js';
import { dot, gradCheck } from '../helpers/gradcheck.js';
import { randn, rng } from '../helpers/random.js';
import { backends, caseLabel, compare, host, out, put, q, type Tolerance } from './harness.js';

interface Case {
  N: number;
  H: number;
  D: number;
  dtype: DType;
  inverse: boolean;
  tol: Tolerance;
}
const P = 300, THETA = 10000;
// head_dim 64 and 128, a small odd one (6); one row; positions up to the table's end.
const cases: Case[] = [
  { N: 3, H: 2, D: 6, dtype: 'f32', inverse: false, tol: { nmse: 1e-12 } },
  { N: 1, H: 4, D: 64, dtype: 'f32', inverse: true, tol: { nmse: 1e-12 } },
  { N: 17, H: 3, D: 128, dtype: 'f32', inverse: false, tol: { nmse: 1e-12 } },
  { N: 17, H: 3, D: 64, dtype: 'bf16', inverse: false, tol: { ulp: 1 } },
  { N: 5, H: 2, D: 128, dtype: 'bf16', inverse: true, tol: { ulp: 1 } },
];

function inputs(c: Case) {
  const r = rng(c.N * 100 + c.D + (c.inverse ? 7 : 0));
  const pos = Int32Array.from({ length: c.N }, (_, i) => (i === c.N - 1 ? P - 1 : Math.floor(r() * P)));
  return { x: q(randn(c.N * c.H * c.D, r, 2)), pos };
}

function run(c: Case, device: Device): Float32Array {
  const { x, pos } = inputs(c);
  return withScope(() => {
    const { cos, sin } = ropeTables(P, c.D, THETA);
    const shape = [c.N, c.H, c.D];
    const y = out(shape, c.dtype, device);
    native().rope(put(x, shape, c.dtype, device).handle, put(pos, [c.N], 'i32', device).handle, cos.to(device).handle, sin.to(device).handle, y.handle, c.inverse);
    return host(y);
  });
}

/** In double, from the f32 tables' values (as every backend reads them). */
function reference(c: Case): Float64Array {
  const { x, pos } = inputs(c);
  const { N, H, D } = c;
  const half = D / 2;
  const [cosT, sinT] = withScope(() => {
    const t = ropeTables(P, D, THETA);
    return [t.cos.toArray() as Float32Array, t.sin.toArray() as Float32Array];
  });
  const y = new Float64Array(N * H * D);
  for (let n = 0; n < N; n++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < half; i++) {
        const cs = cosT[pos[n] * half + i], sn = (c.inverse ? -1 : 1) * sinT[pos[n] * half + i];
        const b = (n * H + h) * D;
        y[b + i] = x[b + i] * cs - x[b + i + half] * sn;
        y[b + i + half] = x[b + i + half] * cs + x[b + i] * sn;
      }
  return y;
}

describe('rope', () => {
  describe('reference', () => {
    it.each(cases)('$dtype [$N, $H, $D] inverse $inverse against double precision', (c) => {
      compare(caseLabel('rope', c.dtype, [c.N, c.H, c.D], 'cpu'), run(c, 'cpu'), reference(c), c.tol);
    });

    it('rotates as Hugging Face rotate_half does, with angles from pos · theta^(-2i/D)', () => {
      const [N, H, D] = [3, 2, 6];
      const x = randn(N * H * D, rng(23));
      const pos = new Int32Array([0, 4, 9]);
      const { cos, sin } = ropeTables(16, D, 500);
      const got = withScope(() => host(ops.rope(Tensor.fromArray(x, [N, H, D]), Tensor.fromArray(pos, [N]), cos, sin)));
      for (let n = 0; n < N; n++)
        for (let h = 0; h < H; h++)
          for (let i = 0; i < D / 2; i++) {
            const a = pos[n] * Math.pow(500, (-2 * i) / D);
            const base = (n * H + h) * D;
            const [x1, x2] = [x[base + i], x[base + i + D / 2]];
            expect(got[base + i]).toBeCloseTo(x1 * Math.cos(a) - x2 * Math.sin(a), 5);
            expect(got[base + i + D / 2]).toBeCloseTo(x2 * Math.cos(a) + x1 * Math.sin(a), 5);
          }
      cos.dispose();
      sin.dispose();
    });
  });

  describe('gradients', () => {
    it('the inverse rotation is the backward (finite differences, f32)', () => {
      const r = rng(5);
      const [N, H, D] = [6, 3, 8];
      const { cos, sin } = ropeTables(32, D, 10000);
      const x = randn(N * H * D, r), G = randn(N * H * D, r);
      const pos = new Int32Array([0, 1, 2, 5, 17, 31]);
      const rot = (src: Float32Array, inverse: boolean) =>
        withScope(() => host(ops.rope(Tensor.fromArray(src, [N, H, D]), Tensor.fromArray(pos, [N]), cos, sin, { inverse })));
      const dx = rot(G, true);
      gradCheck('rope', [x], [dx], () => dot(rot(x, false), G));
      cos.dispose();
      sin.dispose();
    });
  });

  describe.each(backends())('backends: $name', ({ device, skip }) => {
    it.skipIf(!!skip).each(cases)('$dtype [$N, $H, $D] inverse $inverse against the cpu', (c) => {
      compare(caseLabel('rope', c.dtype, [c.N, c.H, c.D], device), run(c, device), run(c, 'cpu'), c.tol);
    });
  });
});
