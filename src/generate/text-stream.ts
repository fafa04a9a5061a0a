// Turning generated ids into text as they come, and stopping at stop strings.

export interface Detokenizer {
  decode(ids: number[]): string;
}

/**
 * Incremental detokenization (the scheme of Hugging Face's text-generation-inference): the text of
 * new ids is decode(ids[prefix:]) minus decode(ids[prefix:read]), so a piece's leading space and
 * multi-byte characters split over byte-fallback tokens come out right; text ending in an
 * incomplete character (U+FFFD) waits for the next token.
 */
export class IncrementalText {
  private ids: number[] = [];
  private prefix = 0;
  private read = 0;

  constructor(private readonly tok: Detokenizer) {}

  push(id: number): string {
    this.ids.push(id);
    const before = this.tok.decode(this.ids.slice(this.prefix, this.read));
    const now = this.tok.decode(this.ids.slice(this.prefix));
    if (now.length > before.length && !now.endsWith('\ufffd')) {
      this.prefix = this.read;
      this.read = this.ids.length;
      return now.slice(before.length);
    }
    return '';
  }

  /** Whatever is still held back (an incomplete character at the very end). */
  flush(): string {
    const before = this.tok.decode(this.ids.slice(this.prefix, this.read));
    const now = this.tok.decode(this.ids.slice(this.prefix));
    this.prefix = this.read = this.ids.length;
    return now.length > before.length ? now.slice(before.length) : '';
  }
}

/**
 * Accumulates text and finds the first stop string; `safe` is how much of the text can be shown
 * now, holding back a tail that may still grow into a stop string (OpenAI never shows the stop).
 */
export class StopMatcher {
  text = '';
  /** Where the first stop string begins, once one has appeared. */
  stoppedAt = -1;

  constructor(private readonly stops: readonly string[]) {
    for (const s of stops) if (typeof s !== 'string' || s === '') throw new Error('stop strings must be non-empty strings');
  }

  append(delta: string): void {
    if (this.stoppedAt >= 0 || delta === '') return;
    const from = Math.max(0, this.text.length - Math.max(0, ...this.stops.map((s) => s.length - 1)));
    this.text += delta;
    let at = -1;
    for (const s of this.stops) {
      const i = this.text.indexOf(s, from);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) this.stoppedAt = at;
  }

  /** The final text: cut before the first stop string. */
  get result(): string {
    return this.stoppedAt >= 0 ? this.text.slice(0, this.stoppedAt) : this.text;
  }

  /** Length of the prefix that can be shown without ever having to take it back. */
  get safe(): number {
    if (this.stoppedAt >= 0) return this.stoppedAt;
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.text.length); k > hold; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return this.text.length - hold;
  }
}
