import { PieceType } from './model-proto.js';
import type { SymbolMatcher } from './normalizer.js';
import { exactMatch, exactMatchValue, type ValueArray } from './darts.js';
import { oneCharLen } from './utf8.js';

/** What the model-specific encoders need to know about the vocabulary. */
export interface Vocab {
  /** NORMAL, USER_DEFINED and UNUSED pieces: SentencePiece's pieces_ map. */
  trie: ValueArray;
  /** Double array of CONTROL, UNKNOWN and BYTE pieces: the reserved map PieceToId consults first. */
  reserved: Uint32Array;
  scores: Float32Array;
  types: Uint8Array;
  unkId: number;
  /** User-defined symbols, or null when there are none. */
  symbols: SymbolMatcher | null;
}

/** SentencePiece's ModelInterface::PieceToId over a byte range. */
export function pieceIdOf(v: Vocab, buf: Uint8Array, s: number, e: number): number {
  const r = exactMatch(v.reserved, buf, s, e);
  if (r >= 0) return r;
  const p = exactMatchValue(v.trie, buf, s, e);
  return p >= 0 ? p : v.unkId;
}

/** Length of the next symbol: a user-defined symbol if one starts here, else one character. */
export function symbolLen(v: Vocab, buf: Uint8Array, pos: number, end: number): number {
  if (v.symbols) {
    const n = v.symbols.match(buf, pos, end);
    if (n > 0) return n;
  }
  return Math.min(oneCharLen(buf[pos]), end - pos);
}

export const isUnused = (v: Vocab, id: number) => v.types[id] === PieceType.UNUSED;

/** Segmentation output: piece i covers normalized bytes [starts[i], ends[i]) and has ids[i]. */
export class Segments {
  starts = new Int32Array(256);
  ends = new Int32Array(256);
  ids = new Int32Array(256);
  n = 0;

  push(s: number, e: number, id: number): void {
    if (this.n === this.ids.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts);
      this.ends = grow(this.ends);
      this.ids = grow(this.ids);
    }
    this.starts[this.n] = s;
    this.ends[this.n] = e;
    this.ids[this.n++] = id;
  }
}
