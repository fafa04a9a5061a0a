import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TextTokenizer } from '../../src/data/index.js';

/**
 * A character-level tokenizer with SentencePiece's surface rules (dummy "▁" prefix per call,
 * spaces as "▁"): each character is its own piece, so the expected ids of any text can be
 * written down by hand. Ids: 0 unk, 1 <s>, 2 </s>, then 3 + code point.
 */
export class CharTokenizer implements TextTokenizer {
  /** Extra special tokens (e.g. ChatML markers), as id -> text. */
  constructor(readonly specials: Record<number, string> = {}) {}
  readonly bosId = 1;
  readonly eosId = 2;
  readonly vocabSize = 0x110000 + 3;
  encode(text: string): number[] {
    return [...('▁' + text.replaceAll(' ', '▁'))].map((c) => 3 + c.codePointAt(0)!);
  }
  decode(ids: number[]): string {
    return ids.map((i) => (i === 1 ? '<s>' : i === 2 ? '</s>' : (this.specials[i] ?? String.fromCodePoint(i - 3)))).join('');
  }
  pieceToId(piece: string): number | undefined {
    return piece === '<s>' ? 1 : piece === '</s>' ? 2 : undefined;
  }

  /** The decoded text of each maximal run of equally-masked tokens, with its mask bit. */
  runs(enc: { ids: number[]; mask: Uint8Array }): [string, number][] {
    const out: [string, number][] = [];
    enc.ids.forEach((id, i) => {
      const last = out[out.length - 1];
      if (last && last[1] === enc.mask[i]) last[0] += this.decode([id]);
      else out.push([this.decode([id]), enc.mask[i]]);
    });
    return out;
  }
}

/** A char tokenizer restricted to a 300-symbol vocabulary, so the cache stores u16 tokens. */
export class SmallCharTokenizer extends CharTokenizer {
  override readonly vocabSize = 300;
  override encode(text: string): number[] {
    return super.encode(text).map((id) => 3 + ((id - 3) % 297));
  }
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'polytune-data-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const projectRoot = resolve(fileURLToPath(import.meta.url), '../../..');
export const sharedData = resolve(projectRoot, '../shared/data');
