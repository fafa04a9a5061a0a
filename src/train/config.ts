import { dirname, isAbsolute, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseDataConfig, type DataConfig } from '../data/index.js';

/** The optimisation settings; defaults are the study's (AdamW 0.9/0.95, wd 0.1, lr 1e-5 linear, batch 64). */
export interface TrainSettings {
  epochs: number;
  lr: number;
  warmupSteps: number;
  /** Examples per optimizer step. */
  globalBatch: number;
  /** Examples per forward/backward; gradients accumulate over globalBatch / microBatch of them. */
  microBatch: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number;
  dtype: 'bf16' | 'f32';
  checkpointing: boolean;
  /** Seed of the weights of a model started from scratch (a preset or bare config.json). */
  initSeed: number;
  /** Save every this many steps (0: only at the end of each epoch and when stopped). */
  saveEvery: number;
  keepLast: number;
  /**
   * Stop (saving a checkpoint) after this many optimizer steps in total; 0 runs every epoch. Unlike
   * Hugging Face's max_steps it does not shorten the schedule: it pauses a run that --resume continues.
   */
  maxSteps: number;
}

export const STUDY_TRAIN: TrainSettings = {
  epochs: 3,
  lr: 1e-5,
  warmupSteps: 0,
  globalBatch: 64,
  microBatch: 8,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  maxGradNorm: 1.0,
  dtype: 'bf16',
  checkpointing: false,
  initSeed: 0,
  saveEvery: 0,
  keepLast: 2,
  maxSteps: 0,
};

export interface RunConfig {
  /** A preset name (models/), a config.json, or a model folder whose weights are the start. */
  model: string;
  /** A SentencePiece .model; defaults to the model folder's tokenizer.model. */
  tokenizer?: string;
  data: DataConfig;
  train: TrainSettings;
  /** Run folder: checkpoints/, metrics.jsonl. */
  out: string;
}

/** Settings that may change between a run and its resume without changing what it computes. */
export const RESUMABLE_CHANGES: readonly (keyof TrainSettings)[] = ['maxSteps', 'saveEvery', 'keepLast'];

export function parseRunConfig(raw: unknown, opts: { baseDir: string; where: string }): RunConfig {
  const where = opts.where;
  const fail = (field: string, msg: string): never => {
    throw new Error(`${where}: field "${field}" ${msg}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: expected a JSON object`);
  const o = raw as Record<string, unknown>;
  const known = ['model', 'tokenizer', 'data', 'train', 'out'];
  for (const k of Object.keys(o)) if (!known.includes(k)) fail(k, `is not a run setting (known: ${known.join(', ')})`);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(opts.baseDir, p));
  const str = (v: unknown, field: string) => (typeof v === 'string' && v !== '' ? v : fail(field, 'must be a non-empty string'));
  const model = str(o.model, 'model');
  const train: TrainSettings = { ...STUDY_TRAIN };
  if (o.train !== undefined) {
    if (typeof o.train !== 'object' || o.train === null || Array.isArray(o.train)) fail('train', 'must be an object');
    for (const [k, v] of Object.entries(o.train as Record<string, unknown>)) {
      if (!(k in STUDY_TRAIN)) fail(`train.${k}`, `is not a training setting (known: ${Object.keys(STUDY_TRAIN).join(', ')})`);
      const key = k as keyof TrainSettings;
      const want = typeof STUDY_TRAIN[key];
      if (typeof v !== want) fail(`train.${k}`, `must be a ${want}, got ${JSON.stringify(v)}`);
      (train as unknown as Record<string, unknown>)[key] = v;
    }
  }
  const posInt = ['epochs', 'globalBatch', 'microBatch', 'keepLast'] as const;
  for (const k of posInt) if (!Number.isInteger(train[k]) || train[k] < 1) fail(`train.${k}`, `must be an integer >= 1, got ${train[k]}`);
  for (const k of ['warmupSteps', 'saveEvery', 'maxSteps', 'initSeed'] as const) {
    if (!Number.isInteger(train[k]) || train[k] < 0) fail(`train.${k}`, `must be an integer >= 0, got ${train[k]}`);
  }
  if (!(train.lr > 0)) fail('train.lr', `must be positive, got ${train.lr}`);
  for (const k of ['beta1', 'beta2'] as const) if (!(train[k] >= 0 && train[k] < 1)) fail(`train.${k}`, `must be in [0, 1), got ${train[k]}`);
  for (const k of ['eps', 'weightDecay', 'maxGradNorm'] as const) {
    if (!(train[k] >= 0) || !Number.isFinite(train[k])) fail(`train.${k}`, `must be a finite number >= 0, got ${train[k]}`);
  }
  if (!['bf16', 'f32'].includes(train.dtype)) fail('train.dtype', `must be "bf16" or "f32", got ${JSON.stringify(train.dtype)}`);
  if (train.globalBatch % train.microBatch !== 0) fail('train.microBatch', `must divide globalBatch ${train.globalBatch}, got ${train.microBatch}`);
  const data = parseDataConfig(o.data, { baseDir: opts.baseDir, where: `${where}: data` });
  return {
    model: /[/\\.]/.test(model) ? abs(model) : model,
    tokenizer: o.tokenizer === undefined ? undefined : abs(str(o.tokenizer, 'tokenizer')),
    data,
    train,
    out: abs(o.out === undefined ? 'runs/default' : str(o.out, 'out')),
  };
}

export function loadRunConfig(path: string): RunConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read the run config: ${(e as Error).message}`);
  }
  return parseRunConfig(raw, { baseDir: dirname(resolve(path)), where: path });
}
