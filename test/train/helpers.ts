// Small runs for the training-loop tests: the demo's generated sample (tiny model, word-unigram
// tokenizer) cut to a few items, so a run takes seconds on 2 cores.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { embeddedDefault, type RunConfig } from '../../src/train/index.js';

export const quiet = (): void => {};

/** Temporary folders removed after the file's tests. */
export function tempDirs(): (prefix: string) => string {
  const temps: string[] = [];
  afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));
  return (prefix: string) => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    temps.push(d);
    return d;
  };
}

/** A run in `dir` over `items` items per language (90 training examples at 20: 6 steps an epoch of 16). */
export async function smallRun(dir: string, overrides: string[] = [], items = 20): Promise<RunConfig> {
  return embeddedDefault(dir, { items, overrides: ['train.epochs=2', 'train.globalBatch=16', 'train.microBatch=8', 'train.warmupSteps=2', ...overrides] });
}

/**
 * Writes the inputs of a small run into `dir` and a YAML config beside them whose paths are all
 * relative (the run folder is `dir/run`): the form a user would move or copy.
 */
export async function smallRunConfigFile(dir: string, train: Record<string, unknown> = {}, items = 20): Promise<string> {
  await embeddedDefault(dir, { items });
  const file = join(dir, 'run.yaml');
  const t = { epochs: 2, globalBatch: 16, microBatch: 8, warmupSteps: 2, lr: 3e-3, ...train };
  writeFileSync(file, [
    'model: model/config.json',
    'tokenizer: tokenizer.model',
    'data:',
    '  languages: [EN, DE, FR, IT, ES]',
    '  mixture: all',
    '  files: data/{lang}.json',
    '  validation: {fraction: 0.1}',
    '  maxSeqLen: 256',
    '  cacheDir: cache',
    'train:',
    ...Object.entries(t).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
    'out: run',
    '',
  ].join('\n'));
  return file;
}

/** Whether `mount -t tmpfs` works here (root in a container that allows it); probes in a temp folder. */
export function canMountTmpfs(tempDir: (prefix: string) => string): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = tempDir('pt-mnt-probe-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
