import { access } from 'node:fs/promises';
import { prepareExamples, type TruncationStats } from './batching.js';
import type { DataConfig } from './config.js';
import { encodeConversation } from './encode.js';
import { alignIds, planMixture, splitByFraction } from './mixture.js';
import { newReadStats, readConversations, type DataFormat, type ReadStats } from './readers.js';
import type { ChatTemplate } from './template/index.js';
import { createTemplate } from './template/index.js';
import { cacheKey, DEFAULT_CACHE_DIR, hashFile, loadOrBuild, type CacheStatus } from './tokenCache.js';
import { gatherExamples, TokenizedSetBuilder, type TokenizedSet } from './tokenizedSet.js';
import type { TextTokenizer } from './types.js';

export interface TokenizeFileOptions {
  file: string;
  lang: string;
  format: DataFormat;
  tokenizer: TextTokenizer;
  /** sha256 of the tokenizer model file (hashFile), part of the cache key. */
  tokenizerHash: string;
  template: ChatTemplate;
  cacheDir?: string;
  onInvalid?: 'error' | 'skip';
  sharedFile?: boolean;
  maxRecordMB?: number;
}

export interface TokenizedFile {
  set: TokenizedSet;
  read: ReadStats;
  cache: CacheStatus;
  path: string;
}

/** Reads, renders and tokenizes one data file, through the token cache. */
export async function tokenizeFile(o: TokenizeFileOptions): Promise<TokenizedFile> {
  const dataHash = await hashFile(o.file);
  const key = cacheKey({
    dataHashes: [dataHash],
    tokenizerHash: o.tokenizerHash,
    template: o.template.cacheKey,
    options: { lang: o.lang, format: o.format, onInvalid: o.onInvalid ?? 'error', sharedFile: o.sharedFile ?? false },
  });
  const r = await loadOrBuild(o.cacheDir ?? DEFAULT_CACHE_DIR, key, async () => {
    const read = newReadStats();
    const b = new TokenizedSetBuilder(o.tokenizer.vocabSize);
    for await (const conv of readConversations(o.file, o.format, { lang: o.lang, onInvalid: o.onInvalid, sharedFile: o.sharedFile, stats: read, maxRecordMB: o.maxRecordMB })) {
      const enc = encodeConversation(o.tokenizer, o.template, conv);
      b.add(conv.id, conv.lang, enc.ids, enc.mask);
    }
    return { set: b.finish(), meta: { file: o.file, read } };
  });
  return { set: r.set, read: r.meta.read as ReadStats, cache: r.cache, path: r.path };
}

export interface DatasetReport {
  files: { file: string; lang: string; split: 'train' | 'validation'; examples: number; tokens: number; read: ReadStats; cache: CacheStatus }[];
  unmatched: Record<string, number>;
  /** Examples per language in each split. */
  trainByLang: Record<string, number>;
  validationByLang: Record<string, number>;
  truncation: { train: TruncationStats; validation: TruncationStats };
}

export interface Dataset {
  train: TokenizedSet;
  validation: TokenizedSet;
  template: ChatTemplate;
  report: DatasetReport;
}

const countBy = (langs: string[]) => langs.reduce<Record<string, number>>((m, l) => ((m[l] = (m[l] ?? 0) + 1), m), {});

/**
 * Everything between a data config and batches: read and tokenize each language's files
 * (through the cache), split by item id, apply the mixture. Validation items appear in every
 * configured language, so a per-language validation loss is available.
 */
export async function loadDataset(cfg: DataConfig, opts: { tokenizer: TextTokenizer; tokenizerHash: string; template?: ChatTemplate; cacheDir?: string }): Promise<Dataset> {
  const template = opts.template ?? (await createTemplate(cfg.template, opts.tokenizer));
  const report: DatasetReport = { files: [], unmatched: {}, trainByLang: {}, validationByLang: {}, truncation: undefined! };
  const usage = new Map<string, number>();
  const allFiles = [...Object.values(cfg.files), ...('files' in cfg.validation ? Object.values(cfg.validation.files) : [])].flat();
  for (const f of allFiles) usage.set(f, (usage.get(f) ?? 0) + 1);

  const readLang = async (files: Record<string, string[]>, lang: string, split: 'train' | 'validation'): Promise<TokenizedSet> => {
    const parts: TokenizedSet[] = [];
    for (const file of files[lang]) {
      try {
        await access(file);
      } catch {
        throw new Error(`data: no ${split} file for language ${lang}: ${file} does not exist`);
      }
      const t = await tokenizeFile({
        file, lang, format: cfg.format, tokenizer: opts.tokenizer, tokenizerHash: opts.tokenizerHash, template,
        cacheDir: opts.cacheDir ?? cfg.cacheDir, onInvalid: cfg.onInvalid, maxRecordMB: cfg.maxRecordMB,
        sharedFile: new Set(Object.entries(files).filter(([, fs]) => fs.includes(file)).map(([l]) => l)).size > 1,
      });
      if (t.set.ids.length === 0) throw new Error(`data: ${file} has no usable ${lang} records (read ${t.read.read}, skipped ${t.read.skipped}, other languages ${t.read.otherLanguage})`);
      report.files.push({ file, lang, split, examples: t.set.ids.length, tokens: t.set.tokens.length, read: t.read, cache: t.cache });
      parts.push(t.set);
    }
    if (parts.length === 1) return parts[0];
    return gatherExamples(parts.flatMap((set) => set.ids.map((_, index) => ({ set, index }))), opts.tokenizer.vocabSize);
  };

  const sets = new Map<string, TokenizedSet>();
  for (const lang of cfg.languages) sets.set(lang, await readLang(cfg.files, lang, 'train'));
  const indexOf = new Map<string, Map<string, number>>();
  for (const [lang, set] of sets) indexOf.set(lang, new Map(set.ids.map((id, i) => [id, i])));

  const parallel = cfg.mixture !== 'mono';
  const aligned = parallel
    ? alignIds(cfg.languages, { idsByLang: new Map([...sets].map(([l, s]) => [l, s.ids])), onUnmatched: cfg.onUnmatched })
    : alignIds(cfg.languages, { idsByLang: new Map([[cfg.languages[0], sets.get(cfg.languages[0])!.ids]]) });
  report.unmatched = aligned.unmatched;

  let trainIds = aligned.ids;
  let validation: TokenizedSet;
  const pick = (items: { id: string; lang: string }[]) =>
    gatherExamples(items.map(({ id, lang }) => ({ set: sets.get(lang)!, index: indexOf.get(lang)!.get(id)! })), opts.tokenizer.vocabSize);
  if ('fraction' in cfg.validation) {
    const split = splitByFraction(aligned.ids, cfg.validation.fraction, cfg.seed);
    trainIds = split.train;
    validation = pick(split.validation.flatMap((id) => cfg.languages.map((lang) => ({ id, lang }))));
  } else {
    const vfiles = cfg.validation.files;
    const vsets: TokenizedSet[] = [];
    for (const lang of cfg.languages) vsets.push(await readLang(vfiles, lang, 'validation'));
    validation = gatherExamples(vsets.flatMap((set) => set.ids.map((_, index) => ({ set, index }))), opts.tokenizer.vocabSize);
  }
  const train = pick(planMixture(cfg.languages, trainIds, cfg.mixture, cfg.seed));
  report.trainByLang = countBy(train.langs);
  report.validationByLang = countBy(validation.langs);
  report.truncation = { train: prepareExamples(train, cfg.maxSeqLen).stats, validation: prepareExamples(validation, cfg.maxSeqLen).stats };
  return { train, validation, template, report };
}
