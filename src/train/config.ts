// The run config: model, tokenizer, data, train, report, out. Read from JSON or YAML, changed by
// `--set key.path=value`, checked by one zod schema whose messages name the field and the value.
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDataConfig, type DataConfig } from '../data/index.js';
import { DEVICE_SETTING, type DeviceSetting } from './device.js';
import { applyOverrides } from './overrides.js';

export interface EarlyStopping {
  /** Validations (at epoch ends) without an improvement of at least minDelta before the run stops. */
  patience: number;
  minDelta: number;
}

/** The optimisation settings; defaults are the study's (AdamW 0.9/0.95, wd 0.1, lr 1e-5 linear, batch 64). */
export interface TrainSettings {
  /** The most epochs to run; earlyStopping may end the run sooner. */
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
  /** Validate also every this many steps (0: only at epoch ends). */
  evalEvery: number;
  earlyStopping: EarlyStopping | null;
  /** Without a terminal, print a progress line every this many steps (0: about 25 lines a run). */
  logEvery: number;
  /** Where to train: auto (CUDA when built and present, else the CPU), cpu, cuda or cuda:N. */
  device: DeviceSetting;
  /**
   * ZeRO stage of a data-parallel run: 0, every rank keeps the whole optimizer state; 1, each rank
   * keeps and updates a contiguous 1/N of the fp32 masters and moments (no effect on one process).
   */
  zero: 0 | 1;
}

export const REPORTERS = ['tensorboard'] as const;
export type Reporter = (typeof REPORTERS)[number];

export interface RunConfig {
  /** A preset name (models/), a config.json, or a model folder whose weights are the start. */
  model: string;
  /** A SentencePiece .model; defaults to the model folder's tokenizer.model. */
  tokenizer?: string;
  data: DataConfig;
  train: TrainSettings;
  /** Logging integrations beside metrics.jsonl. */
  report: Reporter[];
  /** Run folder: checkpoints/, metrics.jsonl, summary.json, loss.svg. */
  out: string;
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
  evalEvery: 0,
  earlyStopping: null,
  logEvery: 0,
  device: 'auto',
  zero: 0,
};

/** One line of documentation per setting: `polytune config --defaults` prints them as comments. */
export const TRAIN_DOCS: Record<keyof TrainSettings, string> = {
  epochs: 'the most epochs to run (earlyStopping may stop sooner)',
  lr: 'peak learning rate of the linear schedule (Hugging Face get_linear_schedule_with_warmup)',
  warmupSteps: 'optimizer steps of linear warmup from 0',
  globalBatch: 'examples per optimizer step',
  microBatch: 'examples per forward/backward; must divide globalBatch (gradients accumulate)',
  beta1: 'AdamW beta1',
  beta2: 'AdamW beta2',
  eps: 'AdamW epsilon',
  weightDecay: 'decoupled weight decay (not on norm weights)',
  maxGradNorm: 'clip the global gradient norm to this (0: no clipping)',
  dtype: '"bf16" (fp32 master weights and moments) or "f32"',
  checkpointing: 'recompute each layer in backward to save memory (same results)',
  initSeed: 'seed of the random weights when the model is a preset or bare config.json',
  saveEvery: 'save every N steps (0: at each epoch end and when stopped)',
  keepLast: 'newest checkpoints kept (plus the best); the disk needs room for keepLast + 1',
  maxSteps: 'pause after this many steps in total, saving (0: run every epoch); --resume continues',
  evalEvery: 'validate also every N steps (0: only at epoch ends)',
  logEvery: 'without a terminal, a progress line every N steps (0: about 25 a run); on a terminal a live bar',
  device: '"auto" (CUDA when this build has it and the machine a GPU, else the CPU), "cpu", "cuda" or "cuda:N"; never a silent fallback',
  zero: 'data parallel: 0 (each rank holds the whole optimizer state) or 1 (ZeRO-1: each rank holds and updates 1/N of the fp32 masters and moments; same results)',
  earlyStopping: 'null, or {patience, minDelta}: stop after `patience` epochs whose validation loss is not below the best by minDelta',
};

/**
 * Settings that do not change what a run computes, so a resume may change them: where tokens are
 * cached, checkpointing (bit-identical gradients), how often to save, validate and log, when to pause.
 * train.zero too: sharding the optimizer changes only the order of fp32 sums (reduce-scatter against
 * all-reduce, the norm's sum of squares from the shards), exactly as changing the number of ranks
 * does, which a resume is allowed to do. train.device too: a run may move between the CPU and a GPU
 * (the backends agree to rounding, checked on an H200), and checkpoints written before the setting
 * existed resume under its default.
 */
export const RESULT_NEUTRAL = [
  'train.zero', 'train.device', 'train.maxSteps', 'train.saveEvery', 'train.keepLast', 'train.checkpointing', 'train.evalEvery', 'train.logEvery', 'train.earlyStopping', 'data.cacheDir', 'report', 'out',
] as const;

const show = (v: unknown): string => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v === undefined ? 'nothing' : JSON.stringify(v));

const num = () => z.number({ error: (iss) => `must be a ${Number.isNaN(iss.input) || typeof iss.input === 'number' ? 'finite number' : 'number'}, got ${show(iss.input)}` });
const int = (min: number) => num().refine((v) => Number.isInteger(v) && v >= min, { error: (iss) => `must be an integer >= ${min}, got ${show(iss.input)}` });
const nonNeg = () => num().refine((v) => v >= 0, { error: (iss) => `must be a finite number >= 0, got ${show(iss.input)}` });
const unit = () => num().refine((v) => v >= 0 && v < 1, { error: (iss) => `must be in [0, 1), got ${show(iss.input)}` });
const bool = () => z.boolean({ error: (iss) => `must be a boolean, got ${show(iss.input)}` });
const nonEmpty = () => z.string({ error: (iss) => `must be a non-empty string${iss.input === undefined ? '' : `, got ${show(iss.input)}`}` }).min(1, { error: 'must be a non-empty string' });

const trainSchema = z
  .strictObject({
    epochs: int(1),
    lr: num().refine((v) => v > 0, { error: (iss) => `must be positive, got ${show(iss.input)}` }),
    warmupSteps: int(0),
    globalBatch: int(1),
    microBatch: int(1),
    beta1: unit(),
    beta2: unit(),
    eps: nonNeg(),
    weightDecay: nonNeg(),
    maxGradNorm: nonNeg(),
    dtype: z.enum(['bf16', 'f32'], { error: (iss) => `must be "bf16" or "f32", got ${show(iss.input)}` }),
    checkpointing: bool(),
    initSeed: int(0),
    saveEvery: int(0),
    keepLast: int(1),
    maxSteps: int(0),
    evalEvery: int(0),
    logEvery: int(0),
    zero: z.union([z.literal(0), z.literal(1)], { error: (iss) => `must be 0 or 1, got ${show(iss.input)}` }),
    device: z
      .string({ error: (iss) => `must be "auto", "cpu", "cuda" or "cuda:N", got ${show(iss.input)}` })
      .regex(DEVICE_SETTING, { error: (iss) => `must be "auto", "cpu", "cuda" or "cuda:N", got ${show(iss.input)}` })
      .transform((v) => v as DeviceSetting),
    earlyStopping: z
      .strictObject({ patience: int(1), minDelta: nonNeg().default(0) }, { error: (iss) => `must be null or {patience, minDelta}, got ${show(iss.input)}` })
      .nullable(),
  })
  .partial()
  .refine((t) => t.globalBatch === undefined || t.microBatch === undefined || t.globalBatch % t.microBatch === 0, {
    error: (iss) => {
      const t = iss.input as { globalBatch: number; microBatch: number };
      return `must divide globalBatch ${t.globalBatch}, got ${t.microBatch}`;
    },
    path: ['microBatch'],
  });

const runSchema = z.strictObject({
  model: nonEmpty(),
  tokenizer: nonEmpty().optional(),
  data: z.unknown().optional(),
  train: z.unknown().optional(),
  report: z.array(z.enum(REPORTERS, { error: (iss) => `must be one of ${REPORTERS.map((r) => JSON.stringify(r)).join(', ')}, got ${show(iss.input)}` }), {
    error: (iss) => `must be a list like ["tensorboard"], got ${show(iss.input)}`,
  }).optional(),
  out: nonEmpty().optional(),
});

const SECTION: Record<string, string> = { '': 'a run setting', train: 'a training setting', 'train.earlyStopping': 'an early-stopping setting' };
const KNOWN: Record<string, readonly string[]> = {
  '': Object.keys(runSchema.shape),
  train: Object.keys(STUDY_TRAIN),
  'train.earlyStopping': ['patience', 'minDelta'],
};

/** Every problem of a parse, one line each: `run.json: field "train.lr" must be positive, got -1`. */
function schemaError(where: string, error: z.ZodError, prefix: string[] = []): Error {
  const lines: string[] = [];
  for (const iss of error.issues) {
    const path = [...prefix, ...iss.path].reduce<string>((p, k) => (typeof k === 'number' ? `${p}[${k}]` : p ? `${p}.${String(k)}` : String(k)), '');
    if (iss.code === 'unrecognized_keys') {
      for (const k of iss.keys) {
        lines.push(`${where}: field "${path ? `${path}.${k}` : k}" is not ${SECTION[path] ?? 'a setting'} (known: ${(KNOWN[path] ?? []).join(', ')})`);
      }
    } else {
      lines.push(`${where}: field "${path}" ${iss.message}`);
    }
  }
  return new Error(lines.join('\n'));
}

/** Checks a raw config object; relative paths resolve against `baseDir` (the config file's folder). */
export function parseRunConfig(raw: unknown, opts: { baseDir: string; where: string; defaultOut?: string }): RunConfig {
  const where = opts.where;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: expected an object of settings (model, data, train, ...), got ${show(raw)}`);
  const top = runSchema.safeParse(raw, { reportInput: true });
  if (!top.success) throw schemaError(where, top.error);
  const o = top.data;
  if (o.train !== undefined && (typeof o.train !== 'object' || o.train === null || Array.isArray(o.train))) {
    throw new Error(`${where}: field "train" must be an object, got ${show(o.train)}`);
  }
  const t = trainSchema.safeParse(o.train ?? {}, { reportInput: true });
  if (!t.success) throw schemaError(where, t.error, ['train']);
  const train = { ...STUDY_TRAIN, ...t.data } as TrainSettings;
  if (train.globalBatch % train.microBatch !== 0) {
    throw new Error(`${where}: field "train.microBatch" must divide globalBatch ${train.globalBatch}, got ${train.microBatch}`);
  }
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(opts.baseDir, p));
  const data = parseDataConfig(o.data, { baseDir: opts.baseDir, where: `${where}: data` });
  const out = o.out ?? opts.defaultOut;
  if (out === undefined) throw new Error(`${where}: field "out" must be a non-empty string (the run folder)`);
  return {
    model: /[/\\.]/.test(o.model) ? abs(o.model) : o.model,
    tokenizer: o.tokenizer === undefined ? undefined : abs(o.tokenizer),
    data,
    train,
    report: [...new Set(o.report ?? [])],
    out: abs(out),
  };
}

/** Reads a config file: YAML (.yaml, .yml) or JSON (anything else). */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read the run config: ${(e as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const yaml = /\.ya?ml$/i.test(path);
  try {
    return yaml ? parseYaml(text, { prettyErrors: true }) : JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid ${yaml ? 'YAML' : 'JSON'}: ${(e as Error).message}`);
  }
}

/** `runs/<config file name>` beside the config: a run without `out` never lands in another run's folder. */
export const defaultOutFor = (path: string): string => `runs/${basename(path, extname(path))}`;

/**
 * Reads, overrides and checks a run config file. `overrides` are `key.path=value` strings as given
 * to `--set` (values read as YAML scalars or flow collections: `train.lr=2e-5`, `data.languages=[EN, DE]`).
 * Relative paths in the file resolve against the file's folder; relative paths given in
 * overrides resolve against the working directory, where the command was typed.
 */
export function loadRunConfig(path: string, overrides: string[] = []): RunConfig {
  const raw = applyOverrides(readConfigFile(path), overrides, { where: path, cwd: process.cwd(), baseDir: dirname(resolve(path)) });
  return parseRunConfig(raw, { baseDir: dirname(resolve(path)), where: path, defaultOut: defaultOutFor(path) });
}
