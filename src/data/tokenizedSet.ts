/**
 * Tokenized examples stored column-wise: every example's tokens back to back, a per-token
 * trained flag, and offsets. This is what the token cache stores and batching reads.
 */
export interface TokenizedSet {
  tokens: Uint16Array | Uint32Array;
  /** 1 where the token is a loss target. */
  mask: Uint8Array;
  /** count + 1 offsets into tokens. */
  offsets: Float64Array;
  ids: string[];
  langs: string[];
}

export const exampleCount = (s: TokenizedSet): number => s.ids.length;
export const exampleLength = (s: TokenizedSet, i: number): number => s.offsets[i + 1] - s.offsets[i];

/** Collects encoded examples into a TokenizedSet; u16 tokens when the vocabulary fits. */
export class TokenizedSetBuilder {
  private tokens: Uint16Array | Uint32Array;
  private mask = new Uint8Array(1 << 16);
  private offsets: number[] = [0];
  private ids: string[] = [];
  private langs: string[] = [];
  private n = 0;

  constructor(private readonly vocabSize: number) {
    this.tokens = vocabSize <= 65536 ? new Uint16Array(1 << 16) : new Uint32Array(1 << 16);
  }

  add(id: string, lang: string, tokens: ArrayLike<number>, mask: ArrayLike<number>): void {
    for (let i = 0; i < tokens.length; i++) {
      // A typed array would wrap a bad id silently (-1 becomes 65535).
      if (!(tokens[i] >= 0 && tokens[i] < this.vocabSize && Number.isInteger(tokens[i]))) {
        throw new Error(`example ${id} (${lang}): token ${tokens[i]} at position ${i} is outside the vocabulary [0, ${this.vocabSize})`);
      }
    }
    const need = this.n + tokens.length;
    if (need > this.tokens.length) {
      const cap = Math.max(need, this.tokens.length * 2);
      const t = new (this.tokens.constructor as Uint16ArrayConstructor | Uint32ArrayConstructor)(cap);
      t.set(this.tokens.subarray(0, this.n));
      this.tokens = t;
      const m = new Uint8Array(cap);
      m.set(this.mask.subarray(0, this.n));
      this.mask = m;
    }
    this.tokens.set(tokens, this.n);
    this.mask.set(mask, this.n);
    this.n = need;
    this.offsets.push(need);
    this.ids.push(id);
    this.langs.push(lang);
  }

  finish(): TokenizedSet {
    return {
      tokens: this.tokens.slice(0, this.n),
      mask: this.mask.slice(0, this.n),
      offsets: Float64Array.from(this.offsets),
      ids: this.ids,
      langs: this.langs,
    };
  }
}

/** Copies the chosen examples of several sets into one, in the order given. */
export function gatherExamples(picks: readonly { set: TokenizedSet; index: number }[], vocabSize: number): TokenizedSet {
  let total = 0;
  for (const { set, index } of picks) total += exampleLength(set, index);
  const tokens = vocabSize <= 65536 ? new Uint16Array(total) : new Uint32Array(total);
  const mask = new Uint8Array(total);
  const offsets = new Float64Array(picks.length + 1);
  const ids: string[] = [];
  const langs: string[] = [];
  let pos = 0;
  picks.forEach(({ set, index }, k) => {
    const a = set.offsets[index], b = set.offsets[index + 1];
    tokens.set(set.tokens.subarray(a, b), pos);
    mask.set(set.mask.subarray(a, b), pos);
    pos += b - a;
    offsets[k + 1] = pos;
    ids.push(set.ids[index]);
    langs.push(set.langs[index]);
  });
  return { tokens, mask, offsets, ids, langs };
}
