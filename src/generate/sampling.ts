// Next-token choice with Hugging Face generate()'s semantics: repetition penalty, then (when
// sampling) temperature, top-k, top-p, softmax and one draw. Each sequence has its own seeded
// generator, so a sequence samples the same tokens alone or in any batch.
import { seededRandom } from '../data/random.js';

export interface SamplingParams {
  /** Below 1e-4 (FastChat's threshold; HF's do_sample=False): greedy. Default 1. */
  temperature?: number;
  /** Nucleus sampling: the smallest set of most likely tokens whose probability reaches topP. Default 1 (off). */
  topP?: number;
  /** Only the topK most likely tokens (ties at the cut kept, as HF does). 0 = off (default). */
  topK?: number;
  /** HF's CTRL-style penalty on every token already in the sequence (prompt included). 1 = off (default). */
  repetitionPenalty?: number;
  /** Seed of this sequence's generator; default a random one. */
  seed?: number;
}

export const GREEDY_BELOW = 1e-4;

export function checkSampling(p: SamplingParams, where = 'sampling'): void {
  const bad = (field: string, v: unknown, want: string) => new Error(`${where}: ${field} must be ${want}, got ${JSON.stringify(v)}`);
  if (p.temperature !== undefined && !(Number.isFinite(p.temperature) && p.temperature >= 0)) throw bad('temperature', p.temperature, 'a number >= 0');
  if (p.topP !== undefined && !(p.topP > 0 && p.topP <= 1)) throw bad('top_p', p.topP, 'in (0, 1]');
  if (p.topK !== undefined && !(Number.isInteger(p.topK) && p.topK >= 0)) throw bad('top_k', p.topK, 'an integer >= 0');
  if (p.repetitionPenalty !== undefined && !(Number.isFinite(p.repetitionPenalty) && p.repetitionPenalty > 0)) throw bad('repetition_penalty', p.repetitionPenalty, 'a number > 0');
  if (p.seed !== undefined && !Number.isSafeInteger(p.seed)) throw bad('seed', p.seed, 'an integer');
}

export class Sampler {
  private readonly rand: () => number;
  readonly greedy: boolean;
  // Reused between tokens: a 250k vocabulary would otherwise allocate megabytes per token.
  private probs = new Float64Array(0);
  private idx = new Int32Array(0);

  constructor(readonly params: SamplingParams = {}) {
    checkSampling(params);
    this.greedy = (params.temperature ?? 1) < GREEDY_BELOW;
    this.rand = seededRandom(params.seed ?? Math.floor(Math.random() * 2 ** 48));
  }

  /** Picks the next token. `logits` is modified (penalty); `seen` holds the ids so far. */
  next(logits: Float32Array, seen: Iterable<number>): number {
    const pen = this.params.repetitionPenalty ?? 1;
    if (pen !== 1) {
      for (const id of new Set(seen)) {
        const s = logits[id];
        logits[id] = s < 0 ? s * pen : s / pen;
      }
    }
    if (this.greedy) return argmax(logits);
    const V = logits.length;
    if (this.idx.length < V) {
      this.idx = new Int32Array(V);
      this.probs = new Float64Array(V);
    }
    const idx = this.idx, probs = this.probs;
    // Candidates: the top-k (ties at the cut kept), else every token.
    const k = this.params.topK ?? 0;
    const cut = k > 0 && k < V ? kthLargest(logits, k) : -Infinity;
    let n = 0;
    let max = -Infinity;
    for (let i = 0; i < V; i++) {
      const v = logits[i];
      if (v >= cut && v > -Infinity) {
        idx[n++] = i;
        if (v > max) max = v;
      }
    }
    if (n === 0) return argmax(logits);
    const invT = 1 / (this.params.temperature ?? 1);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += probs[j] = Math.exp((logits[idx[j]] - max) * invT);
    const topP = this.params.topP ?? 1;
    if (topP < 1) {
      const keep = nucleus(idx, probs, n, sum, topP);
      return this.draw(keep.cand, keep.probs, keep.cand.length);
    }
    return this.draw(idx, probs, n);
  }

  private draw(cand: Int32Array, probs: Float64Array, n: number): number {
    let total = 0;
    for (let j = 0; j < n; j++) total += probs[j];
    let u = this.rand() * total;
    for (let j = 0; j < n; j++) {
      u -= probs[j];
      if (u < 0) return cand[j];
    }
    // Rounding left u at ~0: the last candidate with any probability.
    for (let j = n - 1; j >= 0; j--) if (probs[j] > 0) return cand[j];
    return cand[n - 1];
  }
}

/** The first index of the largest value, as torch.argmax (NaN never wins). */
export function argmax(a: Float32Array): number {
  let best = 0;
  while (best < a.length - 1 && Number.isNaN(a[best])) best++;
  let bv = a[best];
  for (let i = best + 1; i < a.length; i++) {
    if (a[i] > bv) {
      bv = a[i];
      best = i;
    }
  }
  return best;
}

/** The k-th largest value (a min-heap of the k largest seen so far). */
function kthLargest(a: Float32Array, k: number): number {
  const heap = new Float64Array(k);
  let size = 0;
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < size && heap[l] < heap[m]) m = l;
      if (r < size && heap[r] < heap[m]) m = r;
      if (m === i) return;
      const tmp = heap[i];
      heap[i] = heap[m];
      heap[m] = tmp;
      i = m;
    }
  };
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v !== v) continue; // NaN
    if (size < k) {
      let j = size++;
      heap[j] = v;
      while (j > 0 && heap[(j - 1) >> 1] > heap[j]) {
        const p = (j - 1) >> 1;
        const tmp = heap[p];
        heap[p] = heap[j];
        heap[j] = tmp;
        j = p;
      }
    } else if (v > heap[0]) {
      heap[0] = v;
      down(0);
    }
  }
  return size < k ? -Infinity : heap[0];
}

/**
 * HF's TopPLogitsWarper: sorted ascending, a token goes when the cumulative probability up to and
 * including it is <= 1 - topP; the most likely token always stays. Only tokens that can survive
 * are sorted: once the tokens with probability >= t hold >= topP of the mass, every token below t
 * is removed whatever the order (its ascending cumulative sum is at most the mass below t).
 * `weights` are unnormalised (sum `total`).
 */
function nucleus(cand: Int32Array, weights: Float64Array, n: number, total: number, topP: number): { cand: Int32Array; probs: Float64Array } {
  let pick: number[] = [];
  for (let t = 1e-3; ; t /= 16) {
    pick = [];
    let mass = 0;
    const wt = t * total;
    for (let j = 0; j < n; j++) {
      if (weights[j] >= wt || t < 1e-12) {
        pick.push(j);
        mass += weights[j];
      }
    }
    if (mass >= topP * total || t < 1e-12) break;
  }
  pick.sort((a, b) => weights[a] - weights[b] || cand[b] - cand[a]);
  // The mass left out of `pick` (all removed) starts the ascending cumulative sum.
  let cum = total - pick.reduce((s, j) => s + weights[j], 0);
  const keep: number[] = [];
  pick.forEach((j, r) => {
    cum += weights[j];
    if (cum > (1 - topP) * total || r === pick.length - 1) keep.push(j);
  });
  keep.reverse();
  return { cand: Int32Array.from(keep, (j) => cand[j]), probs: Float64Array.from(keep, (j) => weights[j]) };
}
