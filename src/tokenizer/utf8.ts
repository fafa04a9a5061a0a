/** UTF-8 rules exactly as SentencePiece's string_util applies them. */

/** Length of the character starting with byte b, from the lead byte alone (OneCharLen). */
export function oneCharLen(b: number): number {
  return b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
}

const isTrail = (b: number) => (b & 0xc0) === 0x80;
const isValidCodepoint = (c: number) => c < 0xd800 || (c >= 0xe000 && c <= 0x10ffff);

/**
 * Length of the well-formed character at buf[pos], or 0 when the bytes there are malformed
 * (SentencePiece's IsValidDecodeUTF8 with consumed = 1 in that case). U+FFFD counts as valid.
 */
export function validCharLen(buf: Uint8Array, pos: number, end: number): number {
  const b0 = buf[pos];
  const len = end - pos;
  if (b0 < 0x80) return 1;
  if (len >= 2 && (b0 & 0xe0) === 0xc0) {
    const cp = ((b0 & 0x1f) << 6) | (buf[pos + 1] & 0x3f);
    return isTrail(buf[pos + 1]) && cp >= 0x80 && isValidCodepoint(cp) ? 2 : 0;
  }
  if (len >= 3 && (b0 & 0xf0) === 0xe0) {
    const cp = ((b0 & 0x0f) << 12) | ((buf[pos + 1] & 0x3f) << 6) | (buf[pos + 2] & 0x3f);
    return isTrail(buf[pos + 1]) && isTrail(buf[pos + 2]) && cp >= 0x800 && isValidCodepoint(cp) ? 3 : 0;
  }
  if (len >= 4 && (b0 & 0xf8) === 0xf0) {
    const cp = ((b0 & 0x07) << 18) | ((buf[pos + 1] & 0x3f) << 12) | ((buf[pos + 2] & 0x3f) << 6) | (buf[pos + 3] & 0x3f);
    return isTrail(buf[pos + 1]) && isTrail(buf[pos + 2]) && isTrail(buf[pos + 3]) && cp >= 0x10000 && isValidCodepoint(cp) ? 4 : 0;
  }
  return 0;
}

/** A byte buffer that grows; the normalizer's output can be longer than its input. */
export class ByteBuilder {
  buf: Uint8Array;
  len = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  push(b: number): void {
    if (this.len === this.buf.length) this.reserve(1);
    this.buf[this.len++] = b;
  }

  append(src: Uint8Array, s: number, e: number): void {
    this.reserve(e - s);
    this.buf.set(src.subarray(s, e), this.len);
    this.len += e - s;
  }

  endsWith(tail: Uint8Array): boolean {
    if (this.len < tail.length) return false;
    for (let i = 0; i < tail.length; i++) if (this.buf[this.len - tail.length + i] !== tail[i]) return false;
    return true;
  }
}

export const SPACE_SYMBOL = new Uint8Array([0xe2, 0x96, 0x81]); // U+2581 ▁
export const REPLACEMENT_CHAR = new Uint8Array([0xef, 0xbf, 0xbd]); // U+FFFD
