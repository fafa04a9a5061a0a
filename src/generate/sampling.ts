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

  constructor(readonly params: SamplingParams = {}) {
    checkSampling(params);
    this.greedy = (params.temperature ?? 1) < GREEDY_BELOW;
    this.rand = seededRandom(params.seed ?? Math.floor(Math.random() * 2 ** 48));
  }

  /** Picks the next token. `logits` is modified (penalty, temperature); `seen` holds the ids so far. */
  next(logits: Float32Array, seen: Iterable<number>): number {
    const pen = this.params.repetitionPenalty ?? 1;
    if (pen !== 1) {
      for (const id of new Set(seen)) {
        const s = logits[id];
        logits[id] = s < 0 ? s * pen : s / pen;
      }
    }
    if (this.greedy) return argmax(logits);
    const t = this.params.temperature ?? 1;
    const V = logits.length;
    // Candidates: every token, or the top-k; then probabilities over them.
    let cand: Int32Array = topCandidates(logits, this.params.topK ?? 0);
    let max = -Infinity;
    for (const i of cand) max = Math.max(max, logits[i]);
    if (max === -Infinity) return argmax(logits);
    let probs: Float64Array = new Float64Array(cand.length);
    let sum = 0;
    for (let j = 0; j < cand.length; j++) sum += probs[j] = Math.exp((logits[cand[j]] - max) / t);
    for (let j = 0; j < cand.length; j++) probs[j] /= sum;
    const topP = this.params.topP ?? 1;
    if (topP < 1) ({ cand, probs } = nucleus(cand, probs, topP));
    let total = 0;
    for (const p of probs) total += p;
    let u = this.rand() * total;
    for (let j = 0; j < cand.length; j++) {
      u -= probs[j];
      if (u < 0) return cand[j];
    }
    // Rounding left u at ~0: the last candidate with any probability.
    for (let j = cand.length - 1; j >= 0; j--) if (probs[j] > 0) return cand[j];
    return cand[cand.length - 1] ?? V - 1;
  }
}

/** The first index of the largest value, as torch.argmax. */
export function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best] || (Number.isNaN(a[best]) && !Number.isNaN(a[i]))) best = i;
  return best;
}

/** Indices of every token, or of those at least as large as the k-th largest (HF keeps ties at the cut). */
function topCandidates(logits: Float32Array, k: number): Int32Array {
  const V = logits.length;
  if (k <= 0 || k >= V) return Int32Array.from({ length: V }, (_, i) => i);
  const sorted = Float32Array.from(logits).sort();
  const cut = sorted[V - k];
  const out: number[] = [];
  for (let i = 0; i < V; i++) if (logits[i] >= cut) out.push(i);
  return Int32Array.from(out);
}

/**
 * HF's TopPLogitsWarper: sorted ascending, a token goes when the cumulative probability up to and
 * including it is <= 1 - topP; the most likely token always stays. Only tokens that can survive
 * are sorted: with threshold t, the tokens below t sum to less than V·t, so once the tokens at or
 * above t hold >= topP, everything below t is removed whatever its order.
 */
function nucleus(cand: Int32Array, probs: Float64Array, topP: number): { cand: Int32Array; probs: Float64Array } {
  const n = cand.length;
  let pick: number[] = [];
  for (let t = 1e-3; ; t /= 16) {
    pick = [];
    let mass = 0;
    for (let j = 0; j < n; j++) if (probs[j] >= t || t < 1e-12) {
      pick.push(j);
      mass += probs[j];
    }
    if (1 - mass <= 1 - topP || t < 1e-12) break;
  }
  pick.sort((a, b) => probs[a] - probs[b] || cand[b] - cand[a]);
  // Mass of the tokens left out of `pick` (all removed) starts the ascending cumulative sum.
  let cum = 1 - pick.reduce((s, j) => s + probs[j], 0);
  const keep: number[] = [];
  pick.forEach((j, r) => {
    cum += probs[j];
    if (cum > 1 - topP || r === pick.length - 1) keep.push(j);
  });
  keep.reverse();
  return { cand: Int32Array.from(keep, (j) => cand[j]), probs: Float64Array.from(keep, (j) => probs[j]) };
}
