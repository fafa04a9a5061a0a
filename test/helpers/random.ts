import { mulberry32 } from '../oracle/mulberry32.js';

/** A seeded generator, so failures reproduce. */
export const rng = mulberry32;

/** Uniform in [-scale, scale), never exactly zero. */
export function randn(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = (r() * 2 - 1) * scale;
    if (v === 0) v = scale * 1e-3;
    a[i] = v;
  }
  return a;
}

export function randint(n: number, hi: number, r: () => number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(r() * hi);
  return a;
}
