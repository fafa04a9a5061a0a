// metrics.jsonl: one JSON line per step, per validation, and per resume. A resume line names the
// checkpoint it continued from; steps after it replace any earlier lines for the same steps.
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { osError } from './run-folder.js';

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number | null;
  lr: number;
  gradNorm: number | null;
  tokens: number;
  ms: number;
}

export interface ValidationRecord {
  step: number;
  epoch: number;
  validation: Record<string, number>;
}

export interface ResumeRecord {
  event: 'resume';
  step: number;
  from: string;
}

export class MetricsLog {
  constructor(readonly file: string) {
    // A run stopped mid-append (full disk, kill -9) leaves a torn last line: end it, so the next
    // record starts on a line of its own and only the torn fragment is unreadable.
    try {
      if (existsSync(file) && statSync(file).size > 0) {
        const fd = openSync(file, 'r');
        const last = Buffer.alloc(1);
        try { readSync(fd, last, 0, 1, statSync(file).size - 1); } finally { closeSync(fd); }
        if (last[0] !== 0x0a) appendFileSync(file, '\n');
      }
    } catch (e) {
      throw osError(`appending to ${file}`, e);
    }
  }

  append(o: StepRecord | ValidationRecord | ResumeRecord | Record<string, unknown>): void {
    try {
      appendFileSync(this.file, JSON.stringify(o) + '\n');
    } catch (e) {
      throw osError(`appending to ${this.file}`, e);
    }
  }
}

/**
 * Reads metrics.jsonl as a run's history: for each step the latest line wins, and a resume line
 * drops what an earlier attempt logged after the resumed step (those steps were redone).
 */
export function readMetrics(file: string): { steps: StepRecord[]; validations: ValidationRecord[]; resumes: ResumeRecord[] } {
  const steps = new Map<number, StepRecord>();
  const vals = new Map<number, ValidationRecord>();
  const resumes: ResumeRecord[] = [];
  if (!existsSync(file)) return { steps: [], validations: [], resumes };
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch {
      // A torn line (a run killed mid-append; the next run starts a new line after it) is skipped:
      // it is at most one record, and the history stays readable.
      return;
    }
    if (o.event === 'resume') {
      const r = o as unknown as ResumeRecord;
      resumes.push(r);
      for (const m of [steps, vals] as Map<number, unknown>[]) for (const k of [...m.keys()]) if (k > r.step) m.delete(k);
    } else if (o.validation) vals.set(o.step as number, o as unknown as ValidationRecord);
    else if (typeof o.step === 'number' && 'loss' in o) steps.set(o.step, o as unknown as StepRecord);
  });
  const byStep = <T extends { step: number }>(m: Map<number, T>) => [...m.values()].sort((a, b) => a.step - b.step);
  return { steps: byStep(steps), validations: byStep(vals), resumes };
}
