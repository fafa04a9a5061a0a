// Training curves from a run folder's metrics.jsonl, as src/train/loop.ts writes it: one line per
// optimizer step ({step, epoch, loss, lr, gradNorm, tokens, ms}) and one per evaluation
// ({step, epoch, validation: {DE: .., EN: .., all: ..}}). The training loss is one number per step
// over the whole mixture; only validation is per language.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { DataFileError } from '../data/jsonRecords.js';
import type { LossPoint } from './charts.js';

export interface RunCurves {
  name: string;
  dir: string;
  points: LossPoint[];
  steps: number;
  /** Validation losses of the last evaluation, by language. */
  lastValidation?: Record<string, number>;
}

export function readRunCurves(dir: string, warn: (msg: string) => void = () => {}): RunCurves {
  const file = join(dir, 'metrics.jsonl');
  if (!existsSync(file)) throw new Error(`${file}: no metrics.jsonl in this run folder (is ${dir} a polytune run's --out?)`);
  const lines = readFileSync(file, 'utf8').split('\n');
  // A resumed run repeats the steps after its last checkpoint: the later record of a step wins.
  const train = new Map<number, number>();
  const validation = new Map<number, Record<string, number>>();
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(text);
    } catch (e) {
      // Only the last line can be cut short by a killed run; it is the one record not yet complete.
      if (i === lines.length - 1) {
        warn(`${file}:${i + 1}: ignored a torn last line`);
        return;
      }
      throw new DataFileError(file, i + 1, `malformed JSON: ${(e as Error).message}`);
    }
    if (typeof r !== 'object' || r === null || !Number.isInteger(r.step)) throw new DataFileError(file, i + 1, 'a metrics record needs an integer "step"');
    const step = r.step as number;
    if (r.validation !== undefined) {
      const v = r.validation as Record<string, unknown>;
      if (typeof v !== 'object' || v === null || Object.values(v).some((x) => typeof x !== 'number')) {
        throw new DataFileError(file, i + 1, 'field "validation" must map languages to losses');
      }
      validation.set(step, v as Record<string, number>);
    } else if (typeof r.loss === 'number') {
      train.set(step, r.loss);
    } else {
      throw new DataFileError(file, i + 1, 'neither a step record (field "loss") nor an evaluation (field "validation")');
    }
  });
  const points: LossPoint[] = [...train].sort((a, b) => a[0] - b[0]).map(([step, loss]) => ({ step, series: 'train', loss }));
  const evals = [...validation].sort((a, b) => a[0] - b[0]);
  for (const [step, v] of evals) for (const [lang, loss] of Object.entries(v)) if (Number.isFinite(loss)) points.push({ step, series: `validation ${lang}`, loss });
  return {
    name: basename(resolve(dir)),
    dir,
    points,
    steps: Math.max(0, ...train.keys()),
    lastValidation: evals.at(-1)?.[1],
  };
}
