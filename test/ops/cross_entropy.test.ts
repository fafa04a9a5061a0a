// crossEntropy: per-row losses -log softmax(logits)[target] over logits [N, V] written into an f32
// [N] tensor (0 for rows with ignore index -100), read in vocabulary chunks of 4096; with dlogits (here the logits
// themselves, as the model calls it) the gradient gradScale · (softmax - onehot) is written in place.
import { describe, expect, it } from 'vitest';
import { Tensor, native, ops, withScope, type DType, type Device } from '../../src/tensor/index.js';
import { gradCheck } from '../helpers/gradcheck.js';
import { randint, randn, rng } from '../helpers/random.js';
import { backends, caseLabel, compare, host, put, q, type Tolerance } from './harness.js';

interface Case {
  N: number;
  V: number;
  dtype: DType;
  tol: Tolerance;
}
// The vocabulary chunk's edges (4095, 4096, 4097), one row, and ignored rows in every case.
const cases: Case[] = [
  { N: 1, V: 7, dtype: 'f32', tol: { nmse: 1e-12 } },
  { N: 5, V: 4095, dtype: 'f32', tol: { nmse: 1e-12 } },
  { N: 5, V: 4096, dtype: 'f32', tol: { nmse: 1e-12 } },
  { N: 6, V: 4097, dtype: 'f32', tol: { nmse: 1e-12 } },
  { N: 6, V: 4097, dtype: 'bf16', tol: { nmse: 1e-5 } },
  { N: 3, V: 12000, dtype: 'bf16', tol: { nmse: 1e-5 } },
];
const GRAD_SCALE = 0.25;

function inputs(c: Case) {
  const r = rng(c.N * 7 + c.V);
  const t = randint(c.N, c.V, r);
  if (c.N > 2) t[1] = -100;
  t[c.N - 1] = c.V - 1;
  return { x: q(randn(c.N * c.V, r, 6)), t };
}

function run(c: Case, device: Device) {
  const { x, t } = inputs(c);
  return withScope(() => {
    const logits = put(x, [c.N, c.V], c.dtype, device);
    // Poisoned: an ignored row's 0 must be written, not left.
    const losses = put(new Float32Array(c.N).fill(NaN), [c.N], 'f32', device);
    native().crossEntropy(logits.handle, put(t, [c.N], 'i32', device).handle, -100, losses.handle, logits.handle, GRAD_SCALE);
    return { loss: host(losses), d: host(logits) };
  });
}

function reference(c: Case) {
  const { x, t } = inputs(c);
  const loss = new Float64Array(c.N);
  const d = new Float64Array(c.N * c.V);
  for (let n = 0; n < c.N; n++) {
    if (t[n] === -100) continue;
    let mx = -Infinity;
    for (let v = 0; v < c.V; v++) mx = Math.max(mx, x[n * c.V + v]);
    let s = 0;
    for (let v = 0; v < c.V; v++) s += Math.exp(x[n * c.V + v] - mx);
    const lse = mx + Math.log(s);
    loss[n] = lse - x[n * c.V + t[n]];
    for (let v = 0; v < c.V; v++) d[n * c.V + v] = GRAD_SCALE * (Math.exp(x[n * c.V + v] - lse) - (v === t[n] ? 1 : 0));
  }
  return { loss, d };
}

describe('crossEntropy', () => {
  describe('reference', () => {
    it.each(cases)('$dtype [$N, $V] against double precision', (c) => {
      const got = run(c, 'cpu'), want = reference(c);
      const label = caseLabel('crossEntropy', c.dtype, [c.N, c.V], 'cpu');
      got.loss.forEach((l, n) => expect(Math.abs(l - want.loss[n]), `${label} loss row ${n}`).toBeLessThanOrEqual(1e-6 * Math.max(1, want.loss[n])));
      compare(`${label} dlogits`, got.d, want.d, c.tol);
    });

    it('ignores whole vocabulary chunks of -inf logits (masked vocabulary)', () => {
      const V = 9000;
      const x = new Float32Array(V).fill(-Infinity);
      x[8000] = 1;
      x[8001] = 0.5;
      x[8999] = -1;
      const want = Math.log(Math.exp(1) + Math.exp(0.5) + Math.exp(-1)) - 1;
      const got = withScope(() => {
        const losses = Tensor.zeros([1], 'f32');
        ops.crossEntropy(Tensor.fromArray(x, [1, V]), Tensor.fromArray(new Int32Array([8000]), [1]), losses);
        return host(losses)[0];
      });
      expect(got).toBeCloseTo(want, 6);
    });
  });

  describe('gradients', () => {
    it('with ignored rows, against finite differences (f32)', () => {
      const r = rng(10);
      // V spans more than one vocabulary chunk; few rows keep the float32 loss precise enough for
      // differences of single logits.
      const [N, V] = [3, 4500];
      const x = randn(N * V, r, 4);
      const t = new Int32Array([4321, -100, 7]);
      const scale = 1 / 4;
      const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);
      const f = () => withScope(() => {
        const losses = Tensor.zeros([N], 'f32');
        ops.crossEntropy(Tensor.fromArray(x, [N, V]), Tensor.fromArray(t, [N]), losses);
        return sum(host(losses)) * scale;
      });
      const dx = withScope(() => {
        const logits = Tensor.fromArray(x.slice(), [N, V]);
        ops.crossEntropy(logits, Tensor.fromArray(t, [N]), Tensor.zeros([N], 'f32'), { dlogits: logits, gradScale: scale });
        return host(logits);
      });
      for (let c = 0; c < V; c++) expect(dx[V + c]).toBe(0);
      gradCheck('cross-entropy', [x], [dx], f, { h: 5e-2, coords: 20 });
    });
  });

  describe.each(backends())('backends: $name', ({ device, skip }) => {
    it.skipIf(!!skip).each(cases)('$dtype [$N, $V] against the cpu', (c) => {
      const got = run(c, device), want = run(c, 'cpu');
      const label = caseLabel('crossEntropy', c.dtype, [c.N, c.V], device);
      compare(`${label} loss`, got.loss, want.loss, { nmse: 1e-10 });
      compare(`${label} dlogits`, got.d, want.d, c.tol);
    });
  });
});
