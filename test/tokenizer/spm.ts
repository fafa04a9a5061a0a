/** Helpers that run the reference SentencePiece command-line tools, with a model cache. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = resolve(projectRoot, '../shared');
export const cacheDir = join(projectRoot, 'node_modules/.cache/polytune-tok');

export const hasSpm = spawnSync('spm_train', ['--version']).status === 0;
/** CI sets POLYTUNE_REQUIRE_SPM=1: there a missing spm_train must fail the tests, not skip them. */
export const skipSpm = !hasSpm && process.env.POLYTUNE_REQUIRE_SPM !== '1';
export const spmSkipMessage = 'spm_train not found (apt-get install sentencepiece); skipping reference comparisons';
if (skipSpm) console.warn(spmSkipMessage);

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Trains (or reuses from the cache) a model on corpus with spm_train options; returns its path. */
export function trainSpm(corpus: string[], options: Record<string, string | number | boolean>): string {
  const args = Object.entries(options).map(([k, v]) => `--${k}=${v}`);
  const text = corpus.join('\n') + '\n';
  const version = run('spm_train', ['--version']).trim();
  const key = createHash('sha256').update(version).update('\0').update(args.join('\0')).update('\0').update(text).digest('hex').slice(0, 24);
  const model = join(cacheDir, `${key}.model`);
  if (existsSync(model)) return model;
  mkdirSync(cacheDir, { recursive: true });
  const input = join(cacheDir, `${key}.txt`);
  writeFileSync(input, text);
  const tmpPrefix = join(cacheDir, `${key}.tmp${process.pid}`);
  run('spm_train', [`--input=${input}`, `--model_prefix=${tmpPrefix}`, '--minloglevel=2', '--num_threads=2', ...args]);
  renameSync(`${tmpPrefix}.model`, model);
  return model;
}

/** spm_encode over lines (which must not contain newlines); one result per line. */
export function spmEncode(model: string, lines: string[], format: 'id' | 'piece'): string[][] {
  const out = run('spm_encode', [`--model=${model}`, `--output_format=${format}`], lines.join('\n') + '\n');
  const rows = out.split('\n');
  rows.pop();
  if (rows.length !== lines.length) throw new Error(`spm_encode returned ${rows.length} lines for ${lines.length}`);
  return rows.map((r) => (r === '' ? [] : r.split(' ')));
}

export function spmDecode(model: string, ids: number[][]): string[] {
  const out = run('spm_decode', [`--model=${model}`, '--input_format=id'], ids.map((r) => r.join(' ')).join('\n') + '\n');
  const rows = out.split('\n');
  rows.pop();
  return rows;
}

/** The model's own normalization (with ▁ escapes), as spm_normalize prints it. */
export function spmNormalize(model: string, lines: string[]): string[] {
  const out = run('spm_normalize', [`--model=${model}`, '--use_internal_normalization'], lines.join('\n') + '\n');
  const rows = out.split('\n');
  rows.pop();
  return rows;
}
