import { decodeCharsMap, type CharsMap } from './charsmap.js';
import { HAS_LEAF, longestPrefix, offsetOf, type PrefixMatch } from './darts.js';
import type { NormalizerSpec } from './model-proto.js';
import { ByteBuilder, REPLACEMENT_CHAR, SPACE_SYMBOL, validCharLen } from './utf8.js';

/** Longest-match lookup of user-defined symbols, which bypass normalization and are never split. */
export interface SymbolMatcher {
  /** Byte length of the longest symbol starting at buf[pos], or 0. */
  match(buf: Uint8Array, pos: number, end: number): number;
}

/**
 * SentencePiece's Normalizer over UTF-8 bytes: charsmap rewriting (longest rule first),
 * whitespace trimming and collapsing, the dummy prefix and the ▁ escape.
 */
export class Normalizer {
  private readonly charsMap: CharsMap | null;
  /**
   * plainAscii[b] = 1: the ASCII byte b, when the next byte is ASCII too (or there is none),
   * normalizes to itself: no charsmap key is b or starts with b and an ASCII byte, and there
   * are no user-defined symbols. Most of a Latin-script text then skips the trie lookup.
   */
  private readonly plainAscii = new Uint8Array(128);
  private readonly m: PrefixMatch = { length: 0, value: 0 };
  // The current prefix: bytes spBuf[spStart, spEnd) replace `consumed` input bytes.
  private spBuf: Uint8Array = REPLACEMENT_CHAR;
  private spStart = 0;
  private spEnd = 0;
  private consumed = 0;

  constructor(
    private readonly spec: NormalizerSpec,
    private readonly treatWhitespaceAsSuffix: boolean,
    private readonly matcher: SymbolMatcher | null,
    what: string,
  ) {
    this.charsMap = spec.precompiledCharsmap.length > 0 ? decodeCharsMap(spec.precompiledCharsmap, what) : null;
    if (matcher === null) {
      const trie = this.charsMap?.trie;
      for (let b = 0; b < 0x80; b++) {
        // Plain: no key b, and no key b x... for any ASCII x (the root is unit 0).
        const nb = trie ? childOf(trie, 0, b) : -1;
        let plain = nb < 0 || (trie![nb] & HAS_LEAF) === 0;
        for (let x = 0; nb >= 0 && plain && x < 0x80; x++) plain = childOf(trie!, nb, x) < 0;
        this.plainAscii[b] = plain ? 1 : 0;
      }
    }
  }

  private prefix(input: Uint8Array, pos: number, end: number): void {
    if (this.matcher) {
      const n = this.matcher.match(input, pos, end);
      if (n > 0) {
        this.set(input, pos, pos + n, n);
        return;
      }
    }
    if (this.charsMap) {
      longestPrefix(this.charsMap.trie, input, pos, end, this.m);
      if (this.m.length > 0) {
        const blob = this.charsMap.normalized;
        let e = blob.indexOf(0, this.m.value);
        if (e < 0) e = blob.length;
        this.set(blob, this.m.value, e, this.m.length);
        return;
      }
    }
    const n = validCharLen(input, pos, end);
    // A malformed byte becomes U+FFFD and consumes one byte.
    if (n === 0) this.set(REPLACEMENT_CHAR, 0, 3, 1);
    else this.set(input, pos, pos + n, n);
  }

  private set(buf: Uint8Array, s: number, e: number, consumed: number): void {
    this.spBuf = buf;
    this.spStart = s;
    this.spEnd = e;
    this.consumed = consumed;
  }

  /** Normalizes input[0, end) into out (which is cleared first). */
  normalize(input: Uint8Array, end: number, out: ByteBuilder): void {
    out.len = 0;
    const spec = this.spec;
    const removeExtra = spec.removeExtraWhitespaces;
    const escape = spec.escapeWhitespaces;
    let pos = 0;
    if (removeExtra) {
      while (pos < end) {
        this.prefix(input, pos, end);
        if (this.spEnd - this.spStart !== 1 || this.spBuf[this.spStart] !== 0x20) break;
        pos += this.consumed;
      }
    }
    if (pos >= end) return;
    out.reserve((end - pos) * 3 + 8);
    const addWs = () => {
      if (escape) out.append(SPACE_SYMBOL, 0, 3);
      else out.push(0x20);
    };
    if (!this.treatWhitespaceAsSuffix && spec.addDummyPrefix) addWs();
    let isPrevSpace = removeExtra;
    const plainAscii = this.plainAscii;
    while (pos < end) {
      const b = input[pos];
      if (b < 0x80 && plainAscii[b] === 1 && (pos + 1 === end || input[pos + 1] < 0x80)) {
        // Fast path: the byte is its own normalization. Same effect as the general path below.
        if (out.len + 3 > out.buf.length) out.reserve(3);
        if (b !== 0x20) {
          out.buf[out.len++] = b;
          isPrevSpace = false;
        } else {
          if (!isPrevSpace) {
            if (escape) {
              out.buf[out.len++] = 0xe2;
              out.buf[out.len++] = 0x96;
              out.buf[out.len++] = 0x81;
            } else {
              out.buf[out.len++] = 0x20;
            }
          }
          isPrevSpace = removeExtra;
        }
        pos++;
        continue;
      }
      this.prefix(input, pos, end);
      const src = this.spBuf;
      let s = this.spStart;
      const e = this.spEnd;
      if (isPrevSpace) while (s < e && src[s] === 0x20) s++;
      if (s < e) {
        out.reserve((e - s) * 3);
        const buf = out.buf;
        let len = out.len;
        for (let i = s; i < e; i++) {
          const b = src[i];
          if (b === 0x20 && escape) {
            buf[len++] = 0xe2;
            buf[len++] = 0x96;
            buf[len++] = 0x81;
          } else {
            buf[len++] = b;
          }
        }
        out.len = len;
        isPrevSpace = src[e - 1] === 0x20;
      }
      pos += this.consumed;
      if (!removeExtra) isPrevSpace = false;
    }
    if (removeExtra) {
      const space = escape ? SPACE_SYMBOL : SPACE_ONLY;
      while (out.endsWith(space)) out.len -= space.length;
    }
    if (this.treatWhitespaceAsSuffix && spec.addDummyPrefix) addWs();
  }
}

const SPACE_ONLY = new Uint8Array([0x20]);

/** Position of the child of the Darts trie node at unit `at` along byte c, or -1. */
function childOf(units: Uint32Array, at: number, c: number): number {
  const p = at ^ offsetOf(units[at]) ^ c;
  return p < units.length && (units[p] & 0x800000ff) === c ? p : -1;
}
