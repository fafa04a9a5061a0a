import { buildDoubleArray } from './darts.js';

/** A precompiled charsmap split into its trie and its NUL-separated replacement strings. */
export interface CharsMap {
  trie: Uint32Array;
  normalized: Uint8Array;
}

export function decodeCharsMap(blob: Uint8Array, what: string): CharsMap {
  if (blob.length <= 4) throw new Error(`${what}: precompiled_charsmap is broken (${blob.length} bytes)`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const trieSize = view.getUint32(0, true);
  if (trieSize >= blob.length - 4 + 1 || trieSize % 4 !== 0) {
    throw new Error(`${what}: precompiled_charsmap trie size ${trieSize} does not fit its ${blob.length}-byte blob`);
  }
  // Copy so the units are 4-byte aligned whatever the blob's offset in the model file.
  const trie = new Uint32Array(trieSize / 4);
  for (let i = 0; i < trie.length; i++) trie[i] = view.getUint32(4 + i * 4, true);
  return { trie, normalized: blob.subarray(4 + trieSize) };
}

/**
 * Builds a precompiled charsmap (SentencePiece's on-disk normalization rules) from
 * source -> replacement pairs. The normalizer replaces the longest matching source at each
 * position; an empty replacement deletes it.
 */
export function buildCharsMap(rules: Map<string, string>): Uint8Array {
  const enc = new TextEncoder();
  const entries = [...rules.entries()]
    .map(([k, v]) => [enc.encode(k), enc.encode(v)] as const)
    .sort((a, b) => compareBytes(a[0], b[0]));
  const blobParts: Uint8Array[] = [];
  const offsets = new Map<string, number>();
  let blobSize = 0;
  const values = entries.map(([, v]) => {
    if (v.includes(0)) throw new Error('charsmap: replacement must not contain NUL');
    const key = Buffer.from(v).toString('latin1');
    let off = offsets.get(key);
    if (off === undefined) {
      off = blobSize;
      offsets.set(key, off);
      blobParts.push(v, new Uint8Array(1));
      blobSize += v.length + 1;
    }
    return off;
  });
  const trie = buildDoubleArray(entries.map(([k]) => k), values);
  const out = new Uint8Array(4 + trie.length * 4 + blobSize);
  const view = new DataView(out.buffer);
  view.setUint32(0, trie.length * 4, true);
  for (let i = 0; i < trie.length; i++) view.setUint32(4 + i * 4, trie[i], true);
  let at = 4 + trie.length * 4;
  for (const p of blobParts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * NFKC rules computed with the runtime's Unicode tables: every code point whose NFKC form
 * differs, plus Latin letters followed by one combining mark (decomposed accents) that
 * compose. This is close to, not identical with, SentencePiece's built-in "nfkc" map, which
 * is compiled from ICU with extra NMT rules; models built with it are self-consistent.
 */
export function nfkcRules(): Map<string, string> {
  const rules = new Map<string, string>();
  for (let cp = 1; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const s = String.fromCodePoint(cp);
    const n = s.normalize('NFKC');
    if (n !== s && !n.includes('\0')) rules.set(s, n);
  }
  for (let base = 0x41; base <= 0x7a; base++) {
    if (base > 0x5a && base < 0x61) continue;
    for (let mark = 0x300; mark <= 0x36f; mark++) {
      const s = String.fromCharCode(base, mark);
      const n = s.normalize('NFKC');
      if (n.length === 1) rules.set(s, n);
    }
  }
  return rules;
}
