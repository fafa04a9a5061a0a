// What must not change between a run and its resume, with no absolute path in it: the data enter
// by the hash of their tokens (moving or renaming a file changes nothing; editing one does), the
// tokenizer by the hash of its bytes, the model by its name and architecture.
import { createHash } from 'node:crypto';
import { basename, dirname } from 'node:path';
import type { TokenizedSet } from '../data/index.js';
import type { LlamaConfig } from '../model/index.js';
import { RESULT_NEUTRAL, type RunConfig } from './config.js';

/** sha256 of a tokenized set: tokens, trained-token mask, example boundaries, ids and languages. */
export function hashTokenizedSet(s: TokenizedSet): string {
  const h = createHash('sha256');
  for (const a of [s.tokens, s.mask, s.offsets]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  h.update(JSON.stringify(s.ids));
  h.update(JSON.stringify(s.langs));
  return h.digest('hex');
}

const modelName = (m: string): string => (/[/\\]/.test(m) ? (basename(m) === 'config.json' ? basename(dirname(m)) : basename(m)) : m);

export function runFingerprint(cfg: RunConfig, o: { tokenizerHash: string; model: LlamaConfig; train: TokenizedSet; validation: TokenizedSet }): Record<string, unknown> {
  const fp = configFingerprint(cfg) as { model: Record<string, unknown>; data: Record<string, unknown> } & Record<string, unknown>;
  fp.model.architecture = JSON.parse(JSON.stringify(o.model));
  fp.tokenizer = o.tokenizerHash;
  Object.assign(fp.data, {
    trainingExamples: o.train.ids.length,
    trainingTokens: hashTokenizedSet(o.train),
    validationExamples: o.validation.ids.length,
    validationTokens: hashTokenizedSet(o.validation),
  });
  return fp;
}

/** The fields of a fingerprint that come from reading files (model, tokenizer, data), not from the config. */
const FROM_FILES = ['model.architecture', 'tokenizer', 'data.trainingExamples', 'data.trainingTokens', 'data.validationExamples', 'data.validationTokens'];

/** The part of the run fingerprint that follows from the config alone: no file is read. */
export function configFingerprint(cfg: RunConfig): Record<string, unknown> {
  const { files: _f, cacheDir: _c, validation, template, ...data } = cfg.data;
  const fp: Record<string, unknown> = {
    model: { name: modelName(cfg.model) },
    data: {
      ...data,
      validation: 'fraction' in validation ? validation : 'files',
      // A template file is known by its name; its effect is in the token hashes.
      template: template.kind === 'jinja' ? { ...template, path: basename(template.path) } : template,
    },
    train: { ...cfg.train },
  };
  for (const key of RESULT_NEUTRAL) {
    const [a, b] = key.split('.');
    if (b === undefined) delete fp[a];
    else if (fp[a]) delete (fp[a] as Record<string, unknown>)[b];
  }
  return JSON.parse(JSON.stringify(fp));
}

/** A saved fingerprint without the fields read from files, to compare with configFingerprint. */
export function configPart(saved: Record<string, unknown>): Record<string, unknown> {
  const fp = JSON.parse(JSON.stringify(saved)) as Record<string, Record<string, unknown> | unknown>;
  for (const key of FROM_FILES) {
    const [a, b] = key.split('.');
    if (b === undefined) delete fp[a];
    else if (fp[a] && typeof fp[a] === 'object') delete (fp[a] as Record<string, unknown>)[b];
  }
  return fp;
}

function flatten(v: unknown, path: string, out: Map<string, string>): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
    for (const [k, x] of Object.entries(v)) flatten(x, path ? `${path}.${k}` : k, out);
  } else {
    out.set(path, JSON.stringify(v));
  }
}

/** Every field that differs, as `train.lr: 0.003 (checkpoint) → 0.006 (now)`; empty when they agree. */
export function fingerprintDiff(saved: unknown, now: unknown): string[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(saved, '', a);
  flatten(now, '', b);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  return keys.filter((k) => a.get(k) !== b.get(k)).map((k) => `${k}: ${a.get(k) ?? '(absent)'} → ${b.get(k) ?? '(absent)'}`);
}
