// Timing for benches on a shared machine: the cases of one comparison run interleaved (ours, the
// peer, ours, ...) so load changes hit both alike, and each reports its median.
import { performance } from 'node:perf_hooks';

export interface Timed {
  name: string;
  fn: () => void;
}

/** Median milliseconds per call of each case, over `reps` interleaved rounds (after one warm-up round). */
export function interleavedMs(cases: Timed[], reps: number): Record<string, number> {
  for (const c of cases) c.fn();
  const times: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.name, []]));
  for (let r = 0; r < reps; r++) {
    for (const c of cases) {
      const t0 = performance.now();
      c.fn();
      times[c.name].push(performance.now() - t0);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

export function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
