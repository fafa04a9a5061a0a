import { HAS_LEAF } from './darts.js';
import { PieceType } from './model-proto.js';
import type { Segments, Vocab } from './vocab.js';
import { oneCharLen } from './utf8.js';

/** SentencePiece's penalty for an unknown character, below the worst piece score. */
const UNK_PENALTY = 10;
const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38;

/**
 * Unigram Viterbi, as SentencePiece's EncodeOptimized (its default encoder): best path per
 * byte position, ties kept by the first candidate, path scores stored as float32 while
 * candidates are compared in the precision C++ computes them in.
 */
export class UnigramEncoder {
  private readonly minScore: number;
  private readonly maxScore: number;
  private score = new Float32Array(256);
  private from = new Int32Array(256);
  private id = new Int32Array(256);

  constructor(private readonly v: Vocab) {
    let min = FLT_MAX;
    let max = FLT_MIN;
    for (let i = 0; i < v.types.length; i++) {
      if (v.types[i] !== PieceType.NORMAL) continue;
      min = Math.min(min, v.scores[i]);
      max = Math.max(max, v.scores[i]);
    }
    this.minScore = min;
    this.maxScore = max;
  }

  encode(norm: Uint8Array, size: number, out: Segments): void {
    out.n = 0;
    if (size === 0) return;
    if (this.score.length < size + 1) {
      const cap = Math.max(size + 1, this.score.length * 2);
      this.score = new Float32Array(cap);
      this.from = new Int32Array(cap);
      this.id = new Int32Array(cap);
    }
    const best = this.score;
    const from = this.from;
    const ids = this.id;
    best.fill(0, 0, size + 1);
    from.fill(-1, 0, size + 1);
    const units = this.v.trie;
    // The root's children start at its XOR offset.
    const u0 = units[0];
    const rootBase = (u0 >>> 10) << ((u0 & (1 << 9)) >>> 6);
    const scores = this.v.scores;
    const types = this.v.types;
    const unkId = this.v.unkId;
    const maxScore = this.maxScore;
    // float arithmetic in C++: min_score() - kUnkPenalty, and unk_score + path score.
    const unkScore = Math.fround(this.minScore - UNK_PENALTY);

    for (let s = 0; s < size; ) {
      const tillHere = best[s];
      const mblen = Math.min(oneCharLen(norm[s]), size - s);
      let hasSingle = false;
      let node = rootBase;
      for (let k = s; k < size; k++) {
        const c = norm[k];
        node ^= c;
        const u = units[node];
        if ((u & 0x800000ff) !== c) break;
        node ^= (u >>> 10) << ((u & (1 << 9)) >>> 6);
        if ((u & HAS_LEAF) === 0) continue;
        const pid = units[node] & 0x7fffffff;
        const type = types[pid];
        if (type === PieceType.UNUSED) continue;
        const len = k + 1 - s;
        // User-defined symbols get a bonus so they always win: length * max_score - 0.1,
        // with the product in float and the rest in double, as in C++.
        const cand = (type === PieceType.USER_DEFINED ? Math.fround(len * maxScore) - 0.1 : scores[pid]) + tillHere;
        const t = k + 1;
        if (from[t] === -1 || cand > best[t]) {
          best[t] = cand;
          from[t] = s;
          ids[t] = pid;
        }
        if (len === mblen) hasSingle = true;
      }
      if (!hasSingle) {
        const t = s + mblen;
        const cand = Math.fround(unkScore + tillHere);
        if (from[t] === -1 || cand > best[t]) {
          best[t] = cand;
          from[t] = s;
          ids[t] = unkId;
        }
      }
      s += mblen;
    }

    // Backtrack, then reverse in place.
    for (let e = size; e > 0; e = from[e]) out.push(from[e], e, ids[e]);
    const n = out.n;
    for (let i = 0, j = n - 1; i < j; i++, j--) {
      swap(out.starts, i, j);
      swap(out.ends, i, j);
      swap(out.ids, i, j);
    }
  }
}

function swap(a: Int32Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}
