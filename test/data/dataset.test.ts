import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeConversation, generateSample, Llama2Template, loadDataset, numberWord, parseDataConfig, TeukenTemplate, writeSample, SAMPLE_LANGUAGES } from '../../src/data/index.js';
import { SentencePieceTokenizer } from '../../src/tokenizer/index.js';
import { SmallCharTokenizer, sharedData, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

describe('bundled sample', () => {
  it('is parallel, deterministic, and writes numbers correctly', () => {
    const s = generateSample({ items: 120, seed: 1 });
    for (const lang of SAMPLE_LANGUAGES) expect(s[lang].map((r) => r.id)).toEqual(s.EN.map((r) => r.id));
    expect(generateSample({ items: 120, seed: 1 })).toEqual(s);
    expect(s.EN[0]).toEqual({ id: 'sample-0000', instruction: expect.stringMatching(/^What is \d+ plus \d+\?$/), input: '', output: expect.any(String) });
    const [, x, y] = /What is (\d+) plus (\d+)/.exec(s.EN[0].instruction)!;
    expect(s.EN[0].output).toBe(`${x} plus ${y} is ${Number(x) + Number(y)}.`);
    const words = [21, 71, 80, 91, 28, 23, 31, 22, 17].map((n) => ['EN', 'DE', 'FR', 'IT', 'ES'].map((l) => numberWord(l, n)));
    expect(words).toEqual([
      ['twenty-one', 'einundzwanzig', 'vingt et un', 'ventuno', 'veintiuno'],
      ['seventy-one', 'einundsiebzig', 'soixante et onze', 'settantuno', 'setenta y uno'],
      ['eighty', 'achtzig', 'quatre-vingts', 'ottanta', 'ochenta'],
      ['ninety-one', 'einundneunzig', 'quatre-vingt-onze', 'novantuno', 'noventa y uno'],
      ['twenty-eight', 'achtundzwanzig', 'vingt-huit', 'ventotto', 'veintiocho'],
      ['twenty-three', 'dreiundzwanzig', 'vingt-trois', 'ventitré', 'veintitrés'],
      ['thirty-one', 'einunddreißig', 'trente et un', 'trentuno', 'treinta y uno'],
      ['twenty-two', 'zweiundzwanzig', 'vingt-deux', 'ventidue', 'veintidós'],
      ['seventeen', 'siebzehn', 'dix-sept', 'diciassette', 'diecisiete'],
    ]);
  });
});

describe('loadDataset on the bundled sample', async () => {
  const dir = join(tmp.dir, 'sample');
  await writeSample(dir, { items: 300 });
  const cfg = (extra: Record<string, unknown>) =>
    parseDataConfig({ languages: [...SAMPLE_LANGUAGES], files: '{lang}.json', seed: 5, maxSeqLen: 128, cacheDir: join(tmp.dir, 'cache'), ...extra }, { baseDir: dir });
  const tok = new SmallCharTokenizer();

  it('sampled: ids split 95/5 by id, each training id once, languages balanced; cached rerun is identical', async () => {
    const d = await loadDataset(cfg({ mixture: 'sampled' }), { tokenizer: tok, tokenizerHash: 'small-char' });
    const trainIds = new Set(d.train.ids);
    expect(d.train.ids.length).toBe(trainIds.size);
    expect(trainIds.size).toBe(285);
    const counts = Object.values(d.report.trainByLang);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(d.validation.ids.some((id) => trainIds.has(id))).toBe(false);
    expect(d.report.validationByLang).toEqual(Object.fromEntries(SAMPLE_LANGUAGES.map((l) => [l, 15])));
    expect(d.report.files.every((f) => f.cache.status === 'built')).toBe(true);
    const again = await loadDataset(cfg({ mixture: 'sampled' }), { tokenizer: tok, tokenizerHash: 'small-char' });
    expect(again.report.files.every((f) => f.cache.status === 'hit')).toBe(true);
    expect(again.train).toEqual(d.train);
    // A different template means a different cache entry.
    const l2 = await loadDataset(cfg({ mixture: 'sampled', template: 'llama2' }), { tokenizer: tok, tokenizerHash: 'small-char' });
    expect(l2.report.files.every((f) => f.cache.status === 'built')).toBe(true);
  });

  it('all: every training id in all five languages; mono: one language', async () => {
    const d = await loadDataset(cfg({ mixture: 'all' }), { tokenizer: tok, tokenizerHash: 'small-char' });
    expect(d.train.ids.length).toBe(285 * 5);
    expect(d.report.trainByLang).toEqual(Object.fromEntries(SAMPLE_LANGUAGES.map((l) => [l, 285])));
    const m = await loadDataset(cfg({ languages: ['IT'], mixture: 'mono' }), { tokenizer: tok, tokenizerHash: 'small-char' });
    expect(m.report.trainByLang).toEqual({ IT: 285 });
    expect(new Set(m.train.ids)).toEqual(new Set(d.train.ids));
  });

  it('a language without a file is a clear error', async () => {
    const c = parseDataConfig({ languages: ['EN', 'PL'], mixture: 'all', files: '{lang}.json', cacheDir: join(tmp.dir, 'cache') }, { baseDir: dir });
    await expect(loadDataset(c, { tokenizer: tok, tokenizerHash: 'x' })).rejects.toThrow(`data: no train file for language PL: ${join(dir, 'PL.json')} does not exist`);
  });
});

describe('parseDataConfig', () => {
  const base = { languages: ['EN', 'DE'], mixture: 'sampled', files: 'data/{lang_lower}.json' };
  it('fills defaults and resolves paths', () => {
    expect(parseDataConfig(base, { baseDir: '/cfg' })).toEqual({
      languages: ['EN', 'DE'], mixture: 'sampled', seed: 0, files: { EN: ['/cfg/data/en.json'], DE: ['/cfg/data/de.json'] }, format: 'bactrian',
      validation: { fraction: 0.05 }, template: { kind: 'teuken' }, maxSeqLen: 2048, onInvalid: 'error', onUnmatched: 'error', cacheDir: undefined,
    });
    const c = parseDataConfig({ ...base, mixture: { weights: { EN: 1, DE: 2 } }, validation: { file: { EN: 'v/en.json', DE: ['v/de.json'] } }, template: { jinja: 'tc.json' } }, { baseDir: '/cfg' });
    expect(c.validation).toEqual({ files: { EN: ['/cfg/v/en.json'], DE: ['/cfg/v/de.json'] } });
    expect(c.template).toEqual({ kind: 'jinja', path: '/cfg/tc.json' });
    expect(parseDataConfig({ ...base, maxRecordMB: 64 }, { baseDir: '/cfg' }).maxRecordMB).toBe(64);
  });
  it.each([
    [{ mixtrue: 'all' }, 'field "mixtrue" is not a data setting'],
    [{ mixture: 'some' }, 'field "mixture" must be one of'],
    [{ mixture: 'mono' }, 'field "mixture" "mono" needs exactly one language'],
    [{ mixture: { weights: { EN: 1 } } }, 'field "mixture.weights.DE" is missing'],
    [{ mixture: { weights: { EN: -1, DE: 1 } } }, 'field "mixture.weights.EN" must be a number >= 0'],
    [{ files: 'data.json' }, 'field "files" needs a {lang}'],
    [{ files: { EN: 'en.json' } }, 'field "files.DE" is missing: language DE has no data file'],
    [{ validation: { fraction: 1.5 } }, 'field "validation.fraction" must be a number in [0, 1)'],
    [{ template: 'chatml' }, 'field "template" must be "teuken"'],
    [{ maxSeqLen: 0 }, 'field "maxSeqLen" must be an integer >= 2'],
    [{ languages: ['EN', 'EN'] }, 'field "languages" lists EN twice'],
    [{ maxRecordMB: 0 }, 'field "maxRecordMB" must be a number in (0, 500], got 0'],
    [{ maxRecordMB: '16' }, 'field "maxRecordMB" must be a number in (0, 500], got "16"'],
  ])('rejects %j naming the field', (patch, msg) => {
    expect(() => parseDataConfig({ ...base, ...patch }, { baseDir: '/cfg', where: 'train.json: data' })).toThrow(`train.json: data: ${msg}`);
  });
});

const tokModel = join(sharedData, 'stories260k/tok512.model');
const haveTok = existsSync(tokModel);
// A skipped describe still runs its body to collect the tests: nothing in it may touch the model file.
describe.skipIf(!haveTok)(`with the real SentencePiece tokenizer${haveTok ? '' : ` (skipped: ${tokModel} is absent)`}`, () => {
  let sp: SentencePieceTokenizer;
  beforeAll(() => {
    sp = SentencePieceTokenizer.load(tokModel);
  });
  const conv = { id: '1', lang: 'EN', messages: [{ role: 'user' as const, content: 'Tell me a story.' }, { role: 'assistant' as const, content: 'Once upon a time, there was a cat.' }, { role: 'user' as const, content: 'And then?' }, { role: 'assistant' as const, content: 'The cat slept.' }] };
  it.each([['teuken', new TeukenTemplate()], ['llama2', new Llama2Template()]])('%s: prompt/answer seams give whole-string ids; prompts are exact prefixes', (_, t) => {
    const train = encodeConversation(sp, t, conv);
    // Up to the first EOS, the chunked ids equal one encode() of the whole rendered text.
    const firstEos = train.ids.indexOf(sp.eosId);
    const text = t.name === 'teuken'
      ? "System: A chat between a human and an artificial intelligence assistant.The assistant gives helpful and polite answers to the human's questions.\nUser: Tell me a story.\nAssistant: Once upon a time, there was a cat."
      : '[INST] Tell me a story. [/INST] Once upon a time, there was a cat.';
    expect(train.ids.slice(1, firstEos)).toEqual(sp.encode(text));
    const starts = [...train.mask].flatMap((m, i) => (m === 1 && train.mask[i - 1] === 0 ? [i] : []));
    const p2 = encodeConversation(sp, t, { ...conv, messages: conv.messages.slice(0, 3) }, { generationPrompt: true });
    expect(p2.ids).toEqual(train.ids.slice(0, starts[1]));
    expect(sp.decode(train.ids.filter((_, i) => train.mask[i] === 1 && train.ids[i] !== sp.eosId))).toContain('The cat slept.');
  });
});

