import { exactMatchValue } from './darts.js';
import { PieceType } from './model-proto.js';
import { pieceIdOf, symbolLen, type Segments, type Vocab } from './vocab.js';

/**
 * SentencePiece's BPE encoder: start from characters (user-defined symbols frozen whole),
 * repeatedly merge the adjacent pair whose merged piece has the highest score (leftmost on
 * ties), then split any UNUSED piece back into the pair it was last formed from.
 */
export class BpeEncoder {
  // Symbols: a doubly linked list over byte ranges of the normalized text.
  private start = new Int32Array(256);
  private len = new Int32Array(256);
  private prev = new Int32Array(256);
  private next = new Int32Array(256);
  private frozen = new Uint8Array(256);
  private readonly heap = new PairHeap();

  constructor(private readonly v: Vocab) {}

  encode(norm: Uint8Array, size: number, out: Segments): void {
    out.n = 0;
    if (size === 0) return;
    if (this.start.length < size) {
      const cap = Math.max(size, this.start.length * 2);
      this.start = new Int32Array(cap);
      this.len = new Int32Array(cap);
      this.prev = new Int32Array(cap);
      this.next = new Int32Array(cap);
      this.frozen = new Uint8Array(cap);
    }
    const { start, len, prev, next, frozen, v } = this;
    let n = 0;
    for (let pos = 0; pos < size; n++) {
      let l = 0;
      let f = 0;
      if (v.symbols) {
        l = v.symbols.match(norm, pos, size);
        if (l > 0) f = 1;
      }
      if (l === 0) l = symbolLen(v, norm, pos, size);
      start[n] = pos;
      len[n] = l;
      frozen[n] = f;
      prev[n] = n - 1;
      pos += l;
      next[n] = pos < size ? n + 1 : -1;
    }

    const heap = this.heap;
    heap.clear();
    // Piece id -> [left start, left len, right start, right len] of its latest pair.
    let revMerge: Map<number, [number, number, number, number]> | null = null;
    const trie = v.trie;
    const maybeAdd = (left: number, right: number) => {
      if (left === -1 || right === -1 || frozen[left] || frozen[right]) return;
      const s = start[left];
      const size2 = len[left] + len[right];
      const id = exactMatchValue(trie, norm, s, s + size2);
      if (id < 0) return;
      heap.push(v.scores[id], left, right, size2);
      if (v.types[id] === PieceType.UNUSED) {
        revMerge ??= new Map();
        revMerge.set(id, [s, len[left], start[right], len[right]]);
      }
    };
    for (let i = 1; i < n; i++) maybeAdd(i - 1, i);

    while (heap.size > 0) {
      const left = heap.topLeft();
      const right = heap.topRight();
      const size2 = heap.topSize();
      heap.pop();
      if (len[left] === 0 || len[right] === 0 || len[left] + len[right] !== size2) continue;
      len[left] = size2;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      len[right] = 0;
      maybeAdd(prev[left], left);
      maybeAdd(left, next[left]);
    }

    const resegment = (s: number, e: number) => {
      const id = pieceIdOf(v, norm, s, e);
      const split = revMerge !== null && v.types[id] === PieceType.UNUSED ? revMerge.get(id) : undefined;
      if (!split) {
        out.push(s, e, id);
        return;
      }
      resegment(split[0], split[0] + split[1]);
      resegment(split[2], split[2] + split[3]);
    };
    for (let i = 0; i !== -1; i = next[i]) resegment(start[i], start[i] + len[i]);
  }
}

/**
 * Max-heap of candidate merges ordered like SentencePiece's agenda: higher score first,
 * then the smaller left index.
 */
class PairHeap {
  private score = new Float64Array(256);
  private left = new Int32Array(256);
  private right = new Int32Array(256);
  private sz = new Int32Array(256);
  size = 0;

  clear(): void {
    this.size = 0;
  }

  private before(i: number, j: number): boolean {
    return this.score[i] > this.score[j] || (this.score[i] === this.score[j] && this.left[i] < this.left[j]);
  }

  private swap(i: number, j: number): void {
    const { score, left, right, sz } = this;
    let t = score[i];
    score[i] = score[j];
    score[j] = t;
    t = left[i];
    left[i] = left[j];
    left[j] = t;
    t = right[i];
    right[i] = right[j];
    right[j] = t;
    t = sz[i];
    sz[i] = sz[j];
    sz[j] = t;
  }

  push(score: number, left: number, right: number, size: number): void {
    if (this.size === this.score.length) {
      const cap = this.size * 2;
      const f = new Float64Array(cap);
      f.set(this.score);
      this.score = f;
      for (const k of ['left', 'right', 'sz'] as const) {
        const a = new Int32Array(cap);
        a.set(this[k]);
        this[k] = a;
      }
    }
    let i = this.size++;
    this.score[i] = score;
    this.left[i] = left;
    this.right[i] = right;
    this.sz[i] = size;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  topLeft(): number {
    return this.left[0];
  }
  topRight(): number {
    return this.right[0];
  }
  topSize(): number {
    return this.sz[0];
  }

  pop(): void {
    const last = --this.size;
    if (last === 0) return;
    this.swap(0, last);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < last && this.before(l, m)) m = l;
      if (r < last && this.before(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
