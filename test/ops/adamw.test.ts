// adamw: one AdamW update (decoupled weight decay, bias correction, a gradient scale for clipping) of
// an f32 parameter in place, or of a bf16 parameter rewritten from its fp32 master weights.
import { describe, expect, it } from 'vitest';
import { Tensor, native, ops, withScope, type Device } from '../../src/tensor/index.js';
import { randn, rng } from '../helpers/random.js';
import { backends, caseLabel, compare, host, put, q } from './harness.js';

interface Case {
  n: number;
  dtype: 'f32' | 'bf16';
  steps: number;
}
const cases: Case[] = [
  { n: 1, dtype: 'f32', steps: 2 },
  { n: 257, dtype: 'f32', steps: 5 },
  { n: 70001, dtype: 'f32', steps: 3 },
  { n: 257, dtype: 'bf16', steps: 5 },
  { n: 70001, dtype: 'bf16', steps: 3 },
];
const O = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
const scaleAt = (step: number) => (step === 3 ? 0.5 : 1);

function inputs(c: Case) {
  const r = rng(c.n + c.steps);
  return { w0: randn(c.n, r), grads: Array.from({ length: c.steps }, () => q(randn(c.n, r))) };
}

/** The updated master (or f32 param), the bf16 param where there is one, and the moments. */
function run(c: Case, device: Device) {
  const { w0, grads } = inputs(c);
  return withScope(() => {
    const master = put(w0, [c.n], 'f32', device);
    const param = c.dtype === 'bf16' ? put(w0, [c.n], 'bf16', device) : master;
    const m = Tensor.zeros([c.n], 'f32', device), v = Tensor.zeros([c.n], 'f32', device);
    for (let step = 1; step <= c.steps; step++) {
      const g = put(grads[step - 1], [c.n], c.dtype, device);
      native().adamw(param.handle, g.handle, c.dtype === 'bf16' ? master.handle : null, m.handle, v.handle, { ...O, step, gradScale: scaleAt(step) });
    }
    return { master: host(master), param: host(param), m: host(m), v: host(v) };
  });
}

/** torch.optim.AdamW in double. */
function reference(c: Case) {
  const { w0, grads } = inputs(c);
  const w = Float64Array.from(w0), m = new Float64Array(c.n), v = new Float64Array(c.n);
  for (let step = 1; step <= c.steps; step++) {
    for (let i = 0; i < c.n; i++) {
      const gi = grads[step - 1][i] * scaleAt(step);
      m[i] = O.beta1 * m[i] + (1 - O.beta1) * gi;
      v[i] = O.beta2 * v[i] + (1 - O.beta2) * gi * gi;
      const mh = m[i] / (1 - O.beta1 ** step), vh = v[i] / (1 - O.beta2 ** step);
      w[i] = w[i] * (1 - O.lr * O.weightDecay) - (O.lr * mh) / (Math.sqrt(vh) + O.eps);
    }
  }
  return { master: w, m, v };
}

describe('adamw', () => {
  describe('reference', () => {
    it.each(cases)('$dtype [$n], $steps steps, against torch.optim.AdamW in double', (c) => {
      const got = run(c, 'cpu'), want = reference(c);
      const label = caseLabel('adamw', c.dtype, [c.n], 'cpu');
      for (let i = 0; i < c.n; i++) if (Math.abs(got.master[i] - want.master[i]) >= 1e-5) throw new Error(`${label}: master[${i}] ${got.master[i]} vs ${want.master[i]}`);
      compare(`${label} m`, got.m, want.m, { nmse: 1e-12 });
      compare(`${label} v`, got.v, want.v, { nmse: 1e-10 });
      // The bf16 working weights are the fp32 master rounded once.
      if (c.dtype === 'bf16') compare(`${label} param`, got.param, q(got.master), { ulp: 0 });
    });

    it('refuses a step that is not an integer >= 1', () => {
      withScope(() => {
        const p = Tensor.zeros([2], 'f32'), g = Tensor.zeros([2], 'f32');
        for (const step of [0, 1.5, NaN]) expect(() => ops.adamw(p, g, null, Tensor.zeros([2], 'f32'), Tensor.zeros([2], 'f32'), { lr: 1, step })).toThrow(/^adamw: option 'step' must be an integer >= 1$/);
      });
    });
  });

  // No gradients block: an optimizer step has no backward.

  describe.each(backends())('backends: $name', ({ device, skip }) => {
    it.skipIf(!!skip).each(cases)('$dtype [$n], $steps steps, against the cpu', (c) => {
      const got = run(c, device), want = run(c, 'cpu');
      const label = caseLabel('adamw', c.dtype, [c.n], device);
      compare(`${label} master`, got.master, want.master, { nmse: 1e-12 });
      compare(`${label} param`, got.param, want.param, { ulp: 1 });
      for (const k of ['m', 'v'] as const) compare(`${label} ${k}`, got[k], want[k], { nmse: 1e-12 });
    });
  });
});
