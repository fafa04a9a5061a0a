import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsLog, readMetrics } from '../../src/train/metrics.js';
import { tempDirs } from './helpers.js';

const tempDir = tempDirs();
const step = (n: number, loss: number) => ({ step: n, epoch: 0, loss, lr: 1e-3, gradNorm: 1, tokens: 10, ms: 1 });

describe('metrics.jsonl', () => {
  it('after a torn last line (a run killed mid-append), the resumed run writes on a new line and the history reads', () => {
    const file = join(tempDir('pt-metrics-'), 'metrics.jsonl');
    writeFileSync(file, [step(1, 3), step(2, 2.5)].map((o) => JSON.stringify(o)).join('\n') + '\n' + '{"step":3,"epoch":0,"lo');
    const log = new MetricsLog(file);
    log.append({ event: 'resume', step: 2, from: 'checkpoint-2' });
    log.append(step(3, 2.25));
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[2]).toBe('{"step":3,"epoch":0,"lo');
    expect(JSON.parse(lines[3])).toEqual({ event: 'resume', step: 2, from: 'checkpoint-2' });
    const m = readMetrics(file);
    expect(m.steps.map((s) => [s.step, s.loss])).toEqual([[1, 3], [2, 2.5], [3, 2.25]]);
    expect(m.resumes).toEqual([{ event: 'resume', step: 2, from: 'checkpoint-2' }]);
  });

  it('leaves a file that ends in a newline as it is', () => {
    const file = join(tempDir('pt-metrics-'), 'metrics.jsonl');
    writeFileSync(file, JSON.stringify(step(1, 3)) + '\n');
    new MetricsLog(file).append(step(2, 2));
    expect(readFileSync(file, 'utf8')).toBe(JSON.stringify(step(1, 3)) + '\n' + JSON.stringify(step(2, 2)) + '\n');
  });
});
