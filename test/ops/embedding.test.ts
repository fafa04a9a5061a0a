// embedding: out[i] = weight[ids[i]]; the backward adds dout rows into dweight (repeated ids summed,
// deterministically).
import { describe, expect, it } from 'vitest';
import { Tensor, native, ops, withScope, type DType, type Device } from '../../src/tensor/index.js';
import { dot, gradCheck } from '../helpers/gradcheck.js';
import { randint, randn, rng } from '../helpers/random.js';
import { backends, caseLabel, compare, host, out, put, q, type Tolerance } from './harness.js';

interface Case {
  N: number;
  V: number;
  C: number;
  dtype: DType;
  tol: Tolerance;
}
// One token; ids that repeat many times (a small table); the first and last rows of the table.
const cases: Case[] = [
  { N: 1, V: 7, C: 16, dtype: 'f32', tol: { nmse: 1e-12 } },
  { N: 200, V: 5, C: 33, dtype: 'f32', tol: { nmse: 1e-12 } },
  { N: 57, V: 1000, C: 64, dtype: 'f32', tol: { nmse: 1e-12 } },
  { N: 200, V: 5, C: 33, dtype: 'bf16', tol: { nmse: 1e-5 } },
  { N: 57, V: 1000, C: 64, dtype: 'bf16', tol: { nmse: 1e-5 } },
];

function inputs(c: Case) {
  const r = rng(c.N + c.V);
  const ids = randint(c.N, c.V, r);
  ids[0] = c.V - 1;
  if (c.N > 1) ids[1] = 0;
  return { ids, w: q(randn(c.V * c.C, r)), dy: q(randn(c.N * c.C, r)), dw0: q(randn(c.V * c.C, r, 0.25)) };
}

function run(c: Case, device: Device) {
  const { ids, w, dy, dw0 } = inputs(c);
  return withScope(() => {
    const it = put(ids, [c.N], 'i32', device);
    const y = out([c.N, c.C], c.dtype, device), dw = put(dw0, [c.V, c.C], c.dtype, device);
    native().embedding(it.handle, put(w, [c.V, c.C], c.dtype, device).handle, y.handle);
    native().embeddingBackward(it.handle, put(dy, [c.N, c.C], c.dtype, device).handle, dw.handle);
    return { y: host(y), dw: host(dw) };
  });
}

function reference(c: Case) {
  const { ids, w, dy, dw0 } = inputs(c);
  const y = new Float64Array(c.N * c.C), dw = Float64Array.from(dw0);
  for (let n = 0; n < c.N; n++)
    for (let i = 0; i < c.C; i++) {
      y[n * c.C + i] = w[ids[n] * c.C + i];
      dw[ids[n] * c.C + i] += dy[n * c.C + i];
    }
  return { y, dw };
}

describe('embedding', () => {
  describe('reference', () => {
    it.each(cases)('$dtype N $N of [$V, $C] against double precision', (c) => {
      const got = run(c, 'cpu'), want = reference(c);
      const label = caseLabel('embedding', c.dtype, [c.V, c.C], 'cpu');
      compare(`${label} out`, got.y, want.y, { ulp: 0 }); // a copy of the row: exact
      compare(`${label} dweight`, got.dw, want.dw, c.tol);
    });
  });

  describe('gradients', () => {
    it('backward scatter-adds repeated ids (finite differences, f32)', () => {
      const r = rng(3);
      const [V, C, N] = [11, 5, 9];
      const w = randn(V * C, r), G = randn(N * C, r);
      const ids = new Int32Array([3, 1, 3, 10, 0, 3, 1, 7, 7]);
      const f = () => withScope(() => dot(host(ops.embedding(Tensor.fromArray(ids, [N]), Tensor.fromArray(w, [V, C]))), G));
      const dw = withScope(() => {
        const d = Tensor.zeros([V, C], 'f32');
        ops.embeddingBackward(Tensor.fromArray(ids, [N]), Tensor.fromArray(G, [N, C]), d);
        return host(d);
      });
      // Only looked-up rows have a gradient; check those exactly and the rest are zero.
      const used = new Set(ids);
      for (let v = 0; v < V; v++) if (!used.has(v)) for (let c = 0; c < C; c++) expect(dw[v * C + c]).toBe(0);
      gradCheck('embedding', [w], [dw], f, { coords: 0 });
    });
  });

  describe.each(backends())('backends: $name', ({ device, skip }) => {
    it.skipIf(!!skip).each(cases)('$dtype N $N of [$V, $C] against the cpu (the backward bit for bit: deterministic)', (c) => {
      const got = run(c, device), want = run(c, 'cpu');
      const label = caseLabel('embedding', c.dtype, [c.V, c.C], device);
      compare(`${label} out`, got.y, want.y, { ulp: 0 });
      compare(`${label} dweight`, got.dw, want.dw, c.tol);
    });
  });
});
