import { describe, expect, it } from 'vitest';
import { SentencePieceTokenizer } from '../../src/tokenizer/index.js';
import { testLines, trainingCorpus } from './corpus.js';
import { skipSpm, spmDecode, spmEncode, spmNormalize, spmSkipMessage, trainSpm } from './spm.js';

/** Models trained by the reference spm_train: both algorithms, several sizes and settings. */
const CONFIGS: Record<string, Record<string, string | number | boolean>> = {
  'unigram 300 nmt_nfkc': { model_type: 'unigram', vocab_size: 300, normalization_rule_name: 'nmt_nfkc' },
  'unigram 1000 nmt_nfkc_cf': { model_type: 'unigram', vocab_size: 1000, normalization_rule_name: 'nmt_nfkc_cf' },
  'unigram 4000 identity, no dummy prefix': {
    model_type: 'unigram',
    vocab_size: 4000,
    normalization_rule_name: 'identity',
    add_dummy_prefix: false,
  },
  'unigram 1000 nmt_nfkc byte_fallback + user symbols': {
    model_type: 'unigram',
    vocab_size: 1000,
    normalization_rule_name: 'nmt_nfkc',
    byte_fallback: true,
    user_defined_symbols: '<sep>,🍕,Straße,def ,<<',
    character_coverage: 0.99,
  },
  'unigram 1000 keep extra whitespace, split digits': {
    model_type: 'unigram',
    vocab_size: 1000,
    normalization_rule_name: 'nmt_nfkc',
    remove_extra_whitespaces: false,
    split_digits: true,
    control_symbols: '<ctl1>,<ctl2>',
    pad_id: 3,
  },
  'unigram 1000 whitespace as suffix': {
    model_type: 'unigram',
    vocab_size: 1000,
    normalization_rule_name: 'nmt_nfkc',
    treat_whitespace_as_suffix: true,
  },
  'bpe 300 nmt_nfkc': { model_type: 'bpe', vocab_size: 300, normalization_rule_name: 'nmt_nfkc' },
  'bpe 1000 llama-style (identity, byte_fallback, split digits)': {
    model_type: 'bpe',
    vocab_size: 1000,
    normalization_rule_name: 'identity',
    byte_fallback: true,
    split_digits: true,
    remove_extra_whitespaces: false,
    allow_whitespace_only_pieces: true,
    character_coverage: 0.995,
  },
  'bpe 4000 nmt_nfkc_cf + user symbols': {
    model_type: 'bpe',
    vocab_size: 4000,
    normalization_rule_name: 'nmt_nfkc_cf',
    user_defined_symbols: '<sep>,😄,http://',
  },
  'char nmt_nfkc': { model_type: 'char', normalization_rule_name: 'nmt_nfkc', character_coverage: 0.99 },
  'word nmt_nfkc': { model_type: 'word', vocab_size: 2000, normalization_rule_name: 'nmt_nfkc' },
};

const lines = testLines();
const corpus = trainingCorpus();

describe.skipIf(skipSpm)(`identical to spm_encode / spm_decode (${skipSpm ? spmSkipMessage : 'reference found'})`, () => {
  for (const [name, options] of Object.entries(CONFIGS)) {
    describe(name, () => {
      const model = () => trainSpm(corpus, { ...options, hard_vocab_limit: false });

      it('encodes to the same ids and pieces', () => {
        const path = model();
        const tok = SentencePieceTokenizer.load(path);
        const refIds = spmEncode(path, lines, 'id');
        const refPieces = spmEncode(path, lines, 'piece');
        lines.forEach((line, i) => {
          expect(tok.encode(line), JSON.stringify(line)).toEqual(refIds[i].map(Number));
          expect(tok.encodeAsPieces(line).join(' '), JSON.stringify(line)).toEqual(refPieces[i].join(' '));
        });
      });

      it('decodes like spm_decode, and decode(encode(x)) is the normalized x', () => {
        const path = model();
        const tok = SentencePieceTokenizer.load(path);
        const ids = lines.map((l) => tok.encode(l));
        const refText = spmDecode(path, ids);
        // spm_normalize ignores treat_whitespace_as_suffix; there the pieces spell the normalized text.
        const normalized = options.treat_whitespace_as_suffix
          ? spmEncode(path, lines, 'piece').map((p) => p.join(''))
          : spmNormalize(path, lines);
        const spec = tok.spec.normalizerSpec;
        ids.forEach((row, i) => {
          const text = tok.decode(row);
          expect(text, JSON.stringify(lines[i])).toEqual(refText[i]);
          expect(tok.normalize(lines[i]), JSON.stringify(lines[i])).toEqual(normalized[i]);
          if (!row.includes(tok.unkId)) {
            // Decoding drops the dummy prefix; with remove_extra_whitespaces, every leading space.
            const lead = spec.removeExtraWhitespaces ? /^\u2581+/ : spec.addDummyPrefix ? /^\u2581/ : /^$/;
            const expected = normalized[i].replace(lead, '').replaceAll('\u2581', ' ');
            expect(text, `round trip of ${JSON.stringify(lines[i])}`).toEqual(expected);
          }
        });
      });
    });
  }
});
