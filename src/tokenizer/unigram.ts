import { HAS_LEAF, offsetOf } from './darts.js';
import { PieceType } from './model-proto.js';
import type { Segments, Vocab } from './vocab.js';
import { oneCharLen } from './utf8.js';

/** SentencePiece's penalty for an unknown character, below the worst piece score. */
const UNK_PENALTY = 10;
const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38;
/** leaf[] entry of an unknown-character step; other entries are trie unit positions. */
const UNK_LEAF = -1;

/**
 * Unigram Viterbi, as SentencePiece's EncodeOptimized (its default encoder): best path per
 * byte position, ties kept by the first candidate, path scores stored as float32 while
 * candidates are compared in the precision C++ computes them in.
 *
 * The search is bound by memory latency, not arithmetic: on a 250k vocabulary nearly every
 * trie step ends a piece, and reading that piece's id and then its score (scores[id],
 * anywhere in a megabyte) cost cache misses on top of the step itself. So the encoder walks
 * its own copy of the trie (a ValueArray: no leaf units, so it stays small) with each unit
 * paired with the score of the piece ending there (walk[2p] = unit p, walk[2p + 1] =
 * float32 bits of the score): one cache line per step. Ids are read only for the pieces on
 * the final path.
 */
export class UnigramEncoder {
  private readonly minScore: number;
  private readonly maxScore: number;
  /** Units of v.trie interleaved with the scores of the pieces that end at them. */
  private readonly walk: Int32Array;
  /** The same memory as walk, to read the scores at odd indices as float32. */
  private readonly walkScore: Float32Array;
  private score = new Float32Array(256);
  private from = new Int32Array(256);
  /** Per end position: trie unit where the best piece ending there ends, or UNK_LEAF. */
  private leaf = new Int32Array(256);

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

    const { units, values } = v.trie;
    this.walk = new Int32Array(units.length * 2);
    this.walkScore = new Float32Array(this.walk.buffer);
    for (let p = 0; p < units.length; p++) {
      this.walk[2 * p] = units[p];
      // USER_DEFINED and UNUSED pieces get NaN, which sends the search to its slow path
      // where their types are handled; a NaN score of a NORMAL piece lands there too and is
      // read back unchanged.
      const pid = values[p];
      if (pid >= 0) this.walkScore[2 * p + 1] = v.types[pid] === PieceType.NORMAL ? v.scores[pid] : NaN;
    }
  }

  encode(norm: Uint8Array, size: number, out: Segments): void {
    out.n = 0;
    if (size === 0) return;
    if (this.score.length < size + 1) {
      const cap = Math.max(size + 1, this.score.length * 2);
      this.score = new Float32Array(cap);
      this.from = new Int32Array(cap);
      this.leaf = new Int32Array(cap);
    }
    const best = this.score;
    const from = this.from;
    const leaves = this.leaf;
    best.fill(0, 0, size + 1);
    from.fill(-1, 0, size + 1);
    const walk = this.walk;
    const walkScore = this.walkScore;
    const values = this.v.trie.values;
    // The root's children start at its XOR offset.
    const rootBase = offsetOf(walk[0]);
    const scores = this.v.scores;
    const types = this.v.types;
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
        const p = node ^ c;
        const u = walk[2 * p];
        if ((u & 0x800000ff) !== c) break;
        node = p ^ ((u >>> 10) << ((u & (1 << 9)) >>> 6));
        if ((u & HAS_LEAF) === 0) continue;
        let score = walkScore[2 * p + 1];
        if (score !== score) {
          // Rare: not a NORMAL piece (or a NaN score); look at its type.
          const pid = values[p];
          const type = types[pid];
          if (type === PieceType.UNUSED) {
            if (node === p) break;
            continue;
          }
          // User-defined symbols get a bonus so they always win: length * max_score - 0.1,
          // with the product in float and the rest in double, as in C++.
          score = type === PieceType.USER_DEFINED ? Math.fround((k + 1 - s) * maxScore) - 0.1 : scores[pid];
        }
        const cand = score + tillHere;
        const t = k + 1;
        if (from[t] === -1 || cand > best[t]) {
          best[t] = cand;
          from[t] = s;
          leaves[t] = p;
        }
        if (k + 1 - s === mblen) hasSingle = true;
        // No longer piece starts with this one: a childless unit has offset 0 (see ValueArray).
        if (node === p) break;
      }
      if (!hasSingle) {
        const t = s + mblen;
        const cand = Math.fround(unkScore + tillHere);
        if (from[t] === -1 || cand > best[t]) {
          best[t] = cand;
          from[t] = s;
          leaves[t] = UNK_LEAF;
        }
      }
      s += mblen;
    }

    // Backtrack, then reverse in place.
    const unkId = this.v.unkId;
    for (let e = size; e > 0; e = from[e]) {
      const l = leaves[e];
      out.push(from[e], e, l === UNK_LEAF ? unkId : values[l]);
    }
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
