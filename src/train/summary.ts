// The end of a run: a table for people and summary.json for tools (the grid reads it).
import { join } from 'node:path';
import { replaceFileAtomic } from '../util/durable.js';
import { formatDuration } from './progress.js';
import { osError } from './run-folder.js';

export type RunStatus = 'completed' | 'early-stopped' | 'paused' | 'interrupted';

export interface EpochValidation {
  epoch: number;
  step: number;
  validation: Record<string, number>;
}

export interface RunSummary {
  status: RunStatus;
  steps: number;
  totalSteps: number;
  epochsCompleted: number;
  maxEpochs: number;
  /** Trained (assistant) tokens over the whole run, resumes included. */
  tokensTrained: number;
  /** Seconds spent by every attempt of the run (resumes included). */
  wallSeconds: number;
  best: { epoch: number; step: number; checkpoint: string; validation: Record<string, number> } | null;
  /** The validation loss after each epoch. */
  epochs: EpochValidation[];
  lastCheckpoint: string;
  resumedFrom: string | null;
  /** The run's fingerprint (what a resume must agree with): the grid compares a finished variant's with its config. */
  settings?: Record<string, unknown>;
}

export const SUMMARY_FILE = 'summary.json';

export function writeSummary(out: string, s: RunSummary): string {
  const file = join(out, SUMMARY_FILE);
  try {
    replaceFileAtomic(file, JSON.stringify(s, null, 2) + '\n');
  } catch (e) {
    throw osError(`writing the run summary ${file}`, e);
  }
  return file;
}

const STATUS: Record<RunStatus, string> = {
  completed: 'completed',
  'early-stopped': 'stopped early (validation loss stopped improving)',
  paused: 'paused at train.maxSteps (continue with --resume)',
  interrupted: 'interrupted (continue with --resume)',
};

/** The summary as a table: status, steps, tokens, time, and validation loss per language by epoch. */
export function summaryTable(s: RunSummary, out: string): string {
  const lines = [
    `run ${out}: ${STATUS[s.status]}`,
    `  steps        ${s.steps}/${s.totalSteps} (${s.epochsCompleted} of at most ${s.maxEpochs} epochs)`,
    `  tokens       ${s.tokensTrained.toLocaleString('en-US')} trained`,
    `  wall time    ${formatDuration(s.wallSeconds)}`,
  ];
  if (s.best) lines.push(`  best         epoch ${s.best.epoch} (step ${s.best.step}): ${s.best.checkpoint}`);
  else lines.push(`  best         none yet (no epoch finished)`);
  if (s.epochs.length) {
    const langs = Object.keys(s.epochs[0].validation);
    const w = Math.max(7, ...langs.map((l) => l.length + 2));
    lines.push('  validation loss per language:');
    lines.push('    epoch ' + langs.map((l) => l.padStart(w)).join(''));
    for (const e of s.epochs) {
      const mark = s.best && e.epoch === s.best.epoch ? ' *' : '';
      lines.push(`    ${String(e.epoch).padEnd(6)}` + langs.map((l) => (e.validation[l]?.toFixed(4) ?? '-').padStart(w)).join('') + mark);
    }
    if (s.best) lines.push('    (* best)');
  }
  return lines.join('\n');
}
