import { isAbsolute, resolve } from 'node:path';
import type { Mixture } from './mixture.js';
import { DATA_FORMATS, type DataFormat } from './readers.js';
import type { TemplateSpec } from './template/index.js';

/** The data section of a training config, checked and with paths resolved. */
export interface DataConfig {
  languages: string[];
  mixture: Mixture;
  seed: number;
  /** Data files of each language (a file named for several languages must give each record's language). */
  files: Record<string, string[]>;
  format: DataFormat;
  validation: { fraction: number } | { files: Record<string, string[]> };
  template: TemplateSpec;
  maxSeqLen: number;
  /** Records with a missing or empty field: 'error' (default) or 'skip' (counted). */
  onInvalid: 'error' | 'skip';
  /** Ids missing from some language in a parallel mixture: 'error' (default) or 'skip' (counted). */
  onUnmatched: 'error' | 'skip';
  /** Where tokenized data is kept; undefined means the default under the working directory. */
  cacheDir?: string;
  /** Largest record in MB; undefined: DEFAULT_MAX_RECORD_MB. */
  maxRecordMB?: number;
}

export const DATA_CONFIG_DEFAULTS = { seed: 0, format: 'bactrian', validationFraction: 0.05, template: 'teuken', maxSeqLen: 2048 } as const;

const KNOWN = ['languages', 'mixture', 'seed', 'files', 'format', 'validation', 'template', 'maxSeqLen', 'onInvalid', 'onUnmatched', 'cacheDir', 'maxRecordMB'];

class Fields {
  constructor(private readonly where: string) {}
  fail(field: string, msg: string): never {
    throw new Error(`${this.where}: field "${field}" ${msg}`);
  }
  obj(v: unknown, field: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, 'must be an object');
    return v as Record<string, unknown>;
  }
  str(v: unknown, field: string): string {
    if (typeof v !== 'string' || v === '') this.fail(field, 'must be a non-empty string');
    return v;
  }
  oneOf<T extends string>(v: unknown, field: string, choices: readonly T[]): T {
    if (typeof v !== 'string' || !choices.includes(v as T)) this.fail(field, `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  }
  int(v: unknown, field: string, min: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(field, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  }
  strMap(v: unknown, field: string): Record<string, string> {
    const o = this.obj(v, field);
    for (const [k, s] of Object.entries(o)) this.str(s, `${field}.${k}`);
    return o as Record<string, string>;
  }
}

/**
 * Checks the data section of a config; every error names the field. Relative paths are
 * resolved against `baseDir` (the config file's folder). `where` prefixes messages,
 * e.g. "train.json: data".
 */
export function parseDataConfig(raw: unknown, opts: { baseDir: string; where?: string }): DataConfig {
  const f = new Fields(opts.where ?? 'data config');
  const o = f.obj(raw, '(data section)');
  for (const k of Object.keys(o)) if (!KNOWN.includes(k)) f.fail(k, `is not a data setting (known: ${KNOWN.join(', ')})`);

  if (!Array.isArray(o.languages) || o.languages.length === 0) f.fail('languages', 'must be a non-empty list like ["EN", "DE"]');
  const languages = (o.languages as unknown[]).map((l, i) => f.str(l, `languages[${i}]`));
  const dup = languages.find((l, i) => languages.indexOf(l) !== i);
  if (dup) f.fail('languages', `lists ${dup} twice`);

  let mixture: Mixture;
  if (o.mixture === undefined) {
    if (languages.length !== 1) f.fail('mixture', 'is required when there is more than one language');
    mixture = 'mono';
  } else if (typeof o.mixture === 'string') {
    mixture = f.oneOf(o.mixture, 'mixture', ['mono', 'all', 'sampled'] as const);
    if (mixture === 'mono' && languages.length !== 1) f.fail('mixture', `"mono" needs exactly one language, "languages" has ${languages.length}`);
  } else {
    const w = f.obj(o.mixture, 'mixture');
    const weights = f.obj(w.weights, 'mixture.weights');
    for (const k of Object.keys(w)) if (k !== 'weights') f.fail(`mixture.${k}`, 'is not a mixture setting (use {"weights": {...}})');
    for (const [lang, v] of Object.entries(weights)) {
      if (!languages.includes(lang)) f.fail(`mixture.weights.${lang}`, `names a language not in "languages"`);
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) f.fail(`mixture.weights.${lang}`, 'must be a number >= 0');
    }
    for (const lang of languages) if (!(lang in weights)) f.fail(`mixture.weights.${lang}`, 'is missing (give every language a weight)');
    if (!Object.values(weights).some((v) => (v as number) > 0)) f.fail('mixture.weights', 'must have at least one weight above 0');
    mixture = { weights: weights as Record<string, number> };
  }

  const seed = o.seed === undefined ? DATA_CONFIG_DEFAULTS.seed : f.int(o.seed, 'seed', 0);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(opts.baseDir, p));
  const files = resolveFiles(f, o.files, 'files', languages, abs);
  const format = o.format === undefined ? DATA_CONFIG_DEFAULTS.format : f.oneOf(o.format, 'format', DATA_FORMATS);

  let validation: DataConfig['validation'] = { fraction: DATA_CONFIG_DEFAULTS.validationFraction };
  if (o.validation !== undefined) {
    const v = f.obj(o.validation, 'validation');
    const keys = Object.keys(v);
    if (keys.length !== 1 || !['fraction', 'file', 'files'].includes(keys[0])) f.fail('validation', 'must be {"fraction": 0.05} or {"file": path or {LANG: path}}');
    if ('fraction' in v) {
      if (typeof v.fraction !== 'number' || !(v.fraction >= 0 && v.fraction < 1)) f.fail('validation.fraction', `must be a number in [0, 1), got ${JSON.stringify(v.fraction)}`);
      validation = { fraction: v.fraction as number };
    } else {
      const key = keys[0];
      validation = { files: resolveFiles(f, v[key], `validation.${key}`, languages, abs) };
    }
  }

  const template = parseTemplate(f, o.template ?? DATA_CONFIG_DEFAULTS.template, abs);
  const maxSeqLen = o.maxSeqLen === undefined ? DATA_CONFIG_DEFAULTS.maxSeqLen : f.int(o.maxSeqLen, 'maxSeqLen', 2);
  const onInvalid = o.onInvalid === undefined ? 'error' : f.oneOf(o.onInvalid, 'onInvalid', ['error', 'skip'] as const);
  const onUnmatched = o.onUnmatched === undefined ? 'error' : f.oneOf(o.onUnmatched, 'onUnmatched', ['error', 'skip'] as const);
  const cacheDir = o.cacheDir === undefined ? undefined : abs(f.str(o.cacheDir, 'cacheDir'));
  let maxRecordMB: number | undefined;
  if (o.maxRecordMB !== undefined) {
    // Beyond ~500 MB one record no longer fits in a JavaScript string at all.
    if (typeof o.maxRecordMB !== 'number' || !(o.maxRecordMB > 0 && o.maxRecordMB <= 500)) f.fail('maxRecordMB', `must be a number in (0, 500], got ${JSON.stringify(o.maxRecordMB)}`);
    maxRecordMB = o.maxRecordMB as number;
  }
  const out: DataConfig = { languages, mixture, seed, files, format, validation, template, maxSeqLen, onInvalid, onUnmatched, cacheDir };
  // Left out when not set, so configs (and run fingerprints) that never mention it are unchanged.
  if (maxRecordMB !== undefined) out.maxRecordMB = maxRecordMB;
  return out;
}

/** A "{lang}" / "{lang_lower}" pattern, or a map from language to a path or list of paths. */
function resolveFiles(f: Fields, v: unknown, field: string, languages: string[], abs: (p: string) => string): Record<string, string[]> {
  if (v === undefined) f.fail(field, 'is missing: give a pattern like "data/{lang}.json" or a map {"EN": "en.json", ...}');
  const out: Record<string, string[]> = {};
  if (typeof v === 'string') {
    if (!/\{lang(_lower)?\}/.test(v) && languages.length > 1) {
      f.fail(field, 'needs a {lang} or {lang_lower} placeholder when there are several languages (or map each language to its file)');
    }
    for (const lang of languages) out[lang] = [abs(v.replaceAll('{lang}', lang).replaceAll('{lang_lower}', lang.toLowerCase()))];
    return out;
  }
  const m = f.obj(v, field);
  for (const k of Object.keys(m)) if (!languages.includes(k)) f.fail(`${field}.${k}`, 'names a language not in "languages"');
  for (const lang of languages) {
    const p = m[lang];
    if (p === undefined) f.fail(`${field}.${lang}`, `is missing: language ${lang} has no data file`);
    const list = Array.isArray(p) ? p : [p];
    if (list.length === 0) f.fail(`${field}.${lang}`, 'is an empty list');
    out[lang] = list.map((x, i) => abs(f.str(x, Array.isArray(p) ? `${field}.${lang}[${i}]` : `${field}.${lang}`)));
  }
  return out;
}

function parseTemplate(f: Fields, v: unknown, abs: (p: string) => string): TemplateSpec {
  if (v === 'teuken' || v === 'llama2') return { kind: v };
  if (typeof v === 'string') f.fail('template', `must be "teuken", "llama2", {"jinja": "tokenizer_config.json"} or {"teuken": {"systemMessages": {...}}}, got ${JSON.stringify(v)}`);
  const o = f.obj(v, 'template');
  const keys = Object.keys(o);
  if (keys.length !== 1) f.fail('template', 'must have exactly one of "teuken", "llama2", "jinja"');
  const kind = f.oneOf(keys[0], 'template', ['teuken', 'llama2', 'jinja'] as const);
  if (kind === 'jinja') return { kind, path: abs(f.str(o.jinja, 'template.jinja')) };
  const inner = f.obj(o[kind], `template.${kind}`);
  for (const k of Object.keys(inner)) if (k !== 'systemMessages') f.fail(`template.${kind}.${k}`, 'is not a template setting (known: systemMessages)');
  return inner.systemMessages === undefined ? { kind } : { kind, systemMessages: f.strMap(inner.systemMessages, `template.${kind}.systemMessages`) };
}
