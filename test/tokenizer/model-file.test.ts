import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SentencePieceProcessor } from 'sentencepiece-js';
import { describe, expect, it } from 'vitest';
import {
  buildCharsMap,
  defaultNormalizerSpec,
  defaultTrainerSpec,
  nfkcRules,
  parseModelProto,
  PieceType,
  SentencePieceTokenizer,
  writeModelProto,
  type ModelSpec,
  type Piece,
} from '../../src/tokenizer/index.js';
import { rng, testLines, trainingCorpus } from './corpus.js';
import { sharedDir, skipSpm, spmEncode, spmNormalize, trainSpm } from './spm.js';

const lines = testLines();
const tmp = mkdtempSync(join(tmpdir(), 'polytune-tok-'));

async function referenceIds(path: string, input: string[]): Promise<number[][]> {
  const spp = new SentencePieceProcessor();
  await spp.load(path);
  return input.map((l) => spp.encodeIds(l));
}

const storiesModel = join(sharedDir, 'data/stories260k/tok512.model');
const hasStories = existsSync(storiesModel);

describe.skipIf(!hasStories)(`stories260K tok512.model, a Llama-style BPE (${hasStories ? 'found' : `skipped: ${storiesModel} absent`})`, () => {
  it('matches sentencepiece-js on multilingual text', async () => {
    const tok = SentencePieceTokenizer.load(storiesModel);
    expect(tok.vocabSize).toBe(512);
    expect(tok.spec.trainerSpec.modelType).toBe('bpe');
    expect(tok.spec.trainerSpec.byteFallback).toBe(true);
    const ref = await referenceIds(storiesModel, lines);
    lines.forEach((l, i) => expect(tok.encode(l), JSON.stringify(l)).toEqual(ref[i]));
  });

  it.skipIf(skipSpm)('matches spm_encode ids and pieces', () => {
    const tok = SentencePieceTokenizer.load(storiesModel);
    const ids = spmEncode(storiesModel, lines, 'id');
    const pieces = spmEncode(storiesModel, lines, 'piece');
    const normalized = spmNormalize(storiesModel, lines);
    lines.forEach((l, i) => {
      expect(tok.encode(l)).toEqual(ids[i].map(Number));
      expect(tok.encodeAsPieces(l)).toEqual(pieces[i]);
      // Byte fallback covers every character, so decoding gives back the normalized text
      // (decode drops every leading space when remove_extra_whitespaces is on, as spm_decode does).
      expect(tok.decode(tok.encode(l))).toEqual(normalized[i].replace(/^\u2581+/, '').replaceAll('\u2581', ' '));
    });
  });

  it('reports Llama special ids', () => {
    const tok = SentencePieceTokenizer.load(storiesModel);
    expect([tok.unkId, tok.bosId, tok.eosId, tok.padId]).toEqual([0, 1, 2, -1]);
    expect(tok.idToPiece(1)).toBe('<s>');
    expect(tok.pieceToId('</s>')).toBe(2);
    expect(tok.pieceToId('no such piece')).toBe(0);
    expect(tok.decode([1, ...tok.encode('Hello world'), 2])).toBe('Hello world');
  });
});

/** A synthetic vocabulary: specials, 256 bytes, user symbols, unused pieces, and corpus substrings. */
function syntheticSpec(modelType: 'unigram' | 'bpe', charsmap: Uint8Array): ModelSpec {
  const next = rng(4242);
  const pieces: Piece[] = [
    { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
    { piece: '<s>', score: 0, type: PieceType.CONTROL },
    { piece: '</s>', score: 0, type: PieceType.CONTROL },
    { piece: '<pad>', score: 0, type: PieceType.CONTROL },
    { piece: '<sep>', score: 0, type: PieceType.USER_DEFINED },
  ];
  for (let b = 0; b < 256; b++) pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: PieceType.BYTE });
  const seen = new Set(pieces.map((p) => p.piece));
  const add = (s: string, type: PieceType = PieceType.NORMAL) => {
    if (s.length === 0 || seen.has(s)) return;
    seen.add(s);
    pieces.push({ piece: s, score: -1 - next() * 12, type });
  };
  const text = trainingCorpus(400).map((l) => '\u2581' + l.normalize('NFKC').replace(/ /g, '\u2581'));
  // BPE needs every prefix of a piece reachable by merges, so add all characters first.
  for (const l of text) for (const ch of l) add(ch);
  for (const l of text) {
    const chars = [...l];
    for (let k = 0; k < 6; k++) {
      const at = Math.floor(next() * chars.length);
      const len = 2 + Math.floor(next() * 6);
      add(chars.slice(at, at + len).join(''), next() < 0.03 ? PieceType.UNUSED : PieceType.NORMAL);
    }
  }
  // Ties on purpose: equal scores exercise the encoders' tie-breaking.
  for (let i = 300; i < pieces.length; i += 7) pieces[i].score = -5;
  return {
    pieces,
    trainerSpec: { ...defaultTrainerSpec(), modelType, vocabSize: pieces.length, byteFallback: true, padId: 3 },
    normalizerSpec: { ...defaultNormalizerSpec(), name: 'polytune_nfkc', precompiledCharsmap: charsmap },
  };
}

describe('writeModelProto', () => {
  const charsmap = buildCharsMap(nfkcRules());

  for (const type of ['unigram', 'bpe'] as const) {
    it(`writes a ${type} model that sentencepiece-js encodes identically`, async () => {
      const spec = syntheticSpec(type, charsmap);
      const path = join(tmp, `synthetic-${type}.model`);
      writeFileSync(path, writeModelProto(spec));
      const tok = SentencePieceTokenizer.load(path);
      expect(tok.vocabSize).toBe(spec.pieces.length);
      expect(tok.padId).toBe(3);
      const ref = await referenceIds(path, lines);
      let differing = 0;
      lines.forEach((l, i) => {
        expect(tok.encode(l), JSON.stringify(l)).toEqual(ref[i]);
        if (l.normalize('NFKC') !== l) differing++;
      });
      // The charsmap must actually have done work on this text.
      expect(differing).toBeGreaterThan(10);
      if (!skipSpm) {
        const spm = spmEncode(path, lines, 'id');
        lines.forEach((l, i) => expect(tok.encode(l), `spm_encode: ${JSON.stringify(l)}`).toEqual(spm[i].map(Number)));
      }
    });
  }

  it.skipIf(skipSpm)('writes a charsmap spm_normalize applies exactly as normalize() does', () => {
    const path = join(tmp, 'synthetic-unigram.model');
    writeFileSync(path, writeModelProto(syntheticSpec('unigram', charsmap)));
    const tok = SentencePieceTokenizer.load(path);
    const ref = spmNormalize(path, lines);
    lines.forEach((l, i) => expect(tok.normalize(l), JSON.stringify(l)).toEqual(ref[i]));
  });

  it.skipIf(skipSpm)('applies a charsmap with multi-character ASCII keys exactly as spm_normalize does', () => {
    // Keys that start with a character the fast ASCII path would otherwise copy through unchanged.
    const rules = new Map([['ab', 'X'], ['A', 'a'], ['  ', ' '], ['z', ''], ['xyz', 'w w'], ['qu', 'kw']]);
    const path = join(tmp, 'multi-ascii.model');
    writeFileSync(path, writeModelProto(syntheticSpec('unigram', buildCharsMap(rules))));
    const tok = SentencePieceTokenizer.load(path);
    const texts = ['abc ab a b', 'Abby ABBA', 'xyzzy xy z', 'quick  queue   q u', 'a', 'ab', 'zzz', ...lines.slice(0, 40)];
    const ref = spmNormalize(path, texts);
    texts.forEach((l, i) => expect(tok.normalize(l), JSON.stringify(l)).toEqual(ref[i]));
    const ids = spmEncode(path, texts, 'id');
    texts.forEach((l, i) => expect(tok.encode(l), JSON.stringify(l)).toEqual(ids[i].map(Number)));
  });

  it.skipIf(skipSpm)('round-trips a trained model through parse and write without changing ids', () => {
    const orig = trainSpm(trainingCorpus(), {
      model_type: 'unigram',
      vocab_size: 1000,
      normalization_rule_name: 'nmt_nfkc_cf',
      byte_fallback: true,
      user_defined_symbols: '<sep>',
      hard_vocab_limit: false,
    });
    const spec = parseModelProto(readFileSync(orig), orig);
    const copy = join(tmp, 'rewritten.model');
    writeFileSync(copy, writeModelProto(spec));
    expect(parseModelProto(readFileSync(copy)).pieces).toEqual(spec.pieces);
    expect(spmEncode(copy, lines, 'id')).toEqual(spmEncode(orig, lines, 'id'));
  });
});

describe('bad model files', () => {
  const good = (() => {
    const spec = syntheticSpec('unigram', new Uint8Array(0));
    return writeModelProto(spec);
  })();
  const cases: Record<string, Uint8Array> = {
    empty: new Uint8Array(0),
    text: new TextEncoder().encode('this is not a model\n'),
    random: Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24),
    truncated: good.subarray(0, Math.floor(good.length / 2)),
    'cut mid-varint': good.subarray(0, 1),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    it(`rejects a ${name} file with an error naming it`, () => {
      const path = join(tmp, `bad-${name.replace(/ /g, '-')}.model`);
      writeFileSync(path, bytes);
      expect(() => SentencePieceTokenizer.load(path)).toThrow(path);
      expect(() => SentencePieceTokenizer.fromBuffer(bytes, 'mem.model')).toThrow(/mem\.model: .*(not a valid|invalid) SentencePiece model/);
    });
  }

  it('rejects a missing file and a model without <unk>', () => {
    expect(() => SentencePieceTokenizer.load(join(tmp, 'nope.model'))).toThrow(/nope\.model: cannot read/);
    const spec = syntheticSpec('unigram', new Uint8Array(0));
    spec.pieces[0].type = PieceType.CONTROL;
    expect(() => SentencePieceTokenizer.fromBuffer(writeModelProto(spec), 'x.model')).toThrow(/x\.model: .*unk is not defined/);
  });

  it('rejects out-of-range ids in decode and idToPiece', () => {
    const tok = SentencePieceTokenizer.fromBuffer(good);
    expect(() => tok.decode([5, tok.vocabSize])).toThrow(/invalid token id/);
    expect(() => tok.idToPiece(-1)).toThrow(/invalid token id/);
  });
});
