import { expect } from 'vitest';
import { rng } from './random.js';

/**
 * Checks analytic gradients of a scalar function against centered finite differences (the five-point
 * stencil, whose O(h^4) truncation error allows a step large enough to drown float32 noise), along random
 * directions (all coordinates at once) and on a sample of single coordinates. Errors are relative to
 * the size of the derivative being compared, floored by the gradient's RMS so near-zero entries
 * don't demand impossible precision from float32 differences.
 */
export function gradCheck(
  name: string,
  inputs: Float32Array[],
  grads: Float32Array[],
  loss: () => number,
  opts: { h?: number; hCoord?: number; tol?: number; coords?: number; seed?: number } = {},
): void {
  const h = opts.h ?? 1e-2;
  // One coordinate moves the function less than a whole direction does, so it can take a larger step.
  const hCoord = opts.hCoord ?? h;
  const tol = opts.tol ?? 1e-3;
  const r = rng(opts.seed ?? 7);
  const base = loss();
  for (let k = 0; k < inputs.length; k++) {
    const x = inputs[k];
    const g = grads[k];
    expect(g.length, `${name}: gradient ${k} length`).toBe(x.length);
    let ss = 0;
    for (const v of g) ss += v * v;
    const rms = Math.sqrt(ss / g.length);
    expect(rms, `${name}: gradient ${k} must not vanish`).toBeGreaterThan(0);

    // Directional derivative along a random direction.
    for (let rep = 0; rep < 2; rep++) {
      const d = new Float32Array(x.length).map(() => r() * 2 - 1);
      const orig = x.slice();
      let an = 0;
      for (let i = 0; i < x.length; i++) an += g[i] * d[i];
      const at = (t: number) => {
        for (let i = 0; i < x.length; i++) x[i] = orig[i] + t * d[i];
        return loss();
      };
      const fd = stencil(at, h);
      x.set(orig);
      let dn = 0;
      for (let i = 0; i < x.length; i++) dn += d[i] * d[i];
      const floor = rms * Math.sqrt(dn);
      const err = Math.abs(fd - an) / Math.max(Math.abs(an), floor);
      expect(err, `${name}: input ${k} direction ${rep}: fd ${fd} vs analytic ${an}`).toBeLessThanOrEqual(tol);
    }

    const coords = Math.min(opts.coords ?? 12, x.length);
    for (let c = 0; c < coords; c++) {
      const i = Math.floor(r() * x.length);
      const orig = x[i];
      const fd = stencil((t) => {
        x[i] = orig + t;
        return loss();
      }, hCoord);
      x[i] = orig;
      // A single coordinate's derivative can sit near float32 evaluation noise: allow that noise
      // (stencil weight 1.5/h times a few ulps of the loss) on top of the relative tolerance.
      const noise = (1.5 / hCoord) * Math.abs(base) * 4 * 2 ** -23;
      const err = Math.max(0, Math.abs(fd - g[i]) - noise) / Math.max(Math.abs(g[i]), rms);
      expect(err, `${name}: input ${k} coordinate ${i}: fd ${fd} vs analytic ${g[i]}`).toBeLessThanOrEqual(tol);
    }
  }
}

/** sum(out * w) in double: a scalar whose gradient with respect to out is w. */
export function dot(out: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < out.length; i++) s += out[i] * w[i];
  return s;
}

function stencil(f: (t: number) => number, h: number): number {
  return (f(-2 * h) - 8 * f(-h) + 8 * f(h) - f(2 * h)) / (12 * h);
}
