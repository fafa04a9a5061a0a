import { describe, expect, it } from 'vitest';
import { SentencePieceTokenizer, buildWordUnigramModel, writeModelProto } from '../../src/tokenizer/index.js';
// sentencepiece-js is the in-process reference encoder.
import { SentencePieceProcessor } from 'sentencepiece-js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const texts = ['Wie viel ist drei plus vier?', 'Drei plus vier ist sieben.', 'Quanto fa tre più quattro?', 'Tre più quattro fa sette.', 'Combien font trois plus quatre ? Sept.'];

describe('the word-unigram model builder (train.js default tokenizer)', () => {
  it('writes a model the reference encoder reads and encodes identically', async () => {
    const spec = buildWordUnigramModel(texts, { vocabSize: 320 });
    const bytes = writeModelProto(spec);
    const ours = SentencePieceTokenizer.fromBuffer(bytes, 'word-unigram');
    const dir = mkdtempSync(join(tmpdir(), 'pt-wu-'));
    writeFileSync(join(dir, 'm.model'), bytes);
    const ref = new SentencePieceProcessor();
    await ref.load(join(dir, 'm.model'));
    for (const t of [...texts, 'Zwölf ist größer als elf 🙂', 'unseen words here', '']) {
      expect(ours.encode(t)).toEqual(ref.encodeIds(t));
      expect(ours.decode(ours.encode(t))).toBe(t);
    }
    // Frequent words are single pieces; an unseen character falls back to bytes.
    expect(ours.encodeAsPieces('Drei plus vier')).toEqual(['▁Drei', '▁plus', '▁vier']);
    expect(ours.encodeAsPieces('🙂')).toContain('<0xF0>');
    expect(ours.vocabSize).toBeLessThanOrEqual(320);
    expect([ours.unkId, ours.bosId, ours.eosId, ours.padId]).toEqual([0, 1, 2, 3]);
  });

  it('refuses a vocabulary too small for the characters', () => {
    expect(() => buildWordUnigramModel(texts, { vocabSize: 270 })).toThrow(/leaves no room for the \d+ characters/);
  });
});
