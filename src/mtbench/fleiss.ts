import type { FleissResult } from './types.js';

/** erfc(x) for x >= 0 (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7 everywhere). */
function erfc(x: number): number {
  const t = 1 / (1 + 0.5 * x);
  const poly = -x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * Math.exp(poly);
}

/** Two-sided p-value of a standard normal z. */
export function twoSidedP(z: number): number {
  return Math.min(1, erfc(Math.abs(z) / Math.SQRT2));
}

/**
 * Fleiss' kappa (Fleiss 1971) of counts[item][category], the number of raters who put each item in
 * each category; every item must have the same number of raters. z and the p-value use the
 * standard error under kappa = 0 of Fleiss, Nee & Landis (1979), as R's irr::kappam.fleiss.
 */
export function fleissKappa(counts: number[][], categories: string[] = counts[0]?.map((_, j) => String(j)) ?? []): FleissResult {
  const N = counts.length;
  const k = categories.length;
  const empty = (reason: string, raters = 0): FleissResult => ({ kappa: null, z: null, pValue: null, items: N, raters, categories, reason });
  if (N === 0) return empty('no item was rated by every rater');
  const n = counts[0].reduce((a, b) => a + b, 0);
  counts.forEach((row, i) => {
    if (row.length !== k) throw new Error(`fleissKappa: item ${i} has ${row.length} categories, expected ${k}`);
    const s = row.reduce((a, b) => a + b, 0);
    if (s !== n) throw new Error(`fleissKappa: item ${i} has ${s} ratings, item 0 has ${n}; every item needs the same number of raters`);
  });
  if (n < 2) return empty('fewer than 2 raters', n);
  let pBar = 0;
  const p = new Array<number>(k).fill(0);
  for (const row of counts) {
    let sq = 0;
    row.forEach((c, j) => { sq += c * c; p[j] += c; });
    pBar += (sq - n) / (n * (n - 1));
  }
  pBar /= N;
  for (let j = 0; j < k; j++) p[j] /= N * n;
  const pe = p.reduce((a, x) => a + x * x, 0);
  if (pe >= 1) return empty('every rating is in one category, so chance agreement is 1 and kappa is undefined', n);
  const kappa = (pBar - pe) / (1 - pe);
  const spq = p.reduce((a, x) => a + x * (1 - x), 0);
  const spqqp = p.reduce((a, x) => a + x * (1 - x) * (1 - 2 * x), 0);
  const var0 = (2 / (spq * spq * N * n * (n - 1))) * (spq * spq - spqqp);
  const z = kappa / Math.sqrt(var0);
  return { kappa, z, pValue: twoSidedP(z), items: N, raters: n, categories };
}
