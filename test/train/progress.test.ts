// Progress output: plain lines at a bounded rate without a terminal, a cli-progress bar with one.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatDuration, plainReporter, reporterFor, type StepProgress } from '../../src/train/progress.js';

const at = (step: number): StepProgress => ({
  epoch: 1, epochs: 2, step, totalSteps: 50, loss: 3.14159, lr: 2e-5, gradNorm: 0.5, tokensPerSec: 1234.4, elapsed: 75, eta: 3725, rssBytes: 1.5 * 2 ** 30,
});

describe('progress', () => {
  it('without a terminal: step 1, every Nth step and the last one, each with loss, lr, tokens/s, elapsed, ETA and memory', () => {
    const lines: string[] = [];
    const r = plainReporter((l) => lines.push(l), { every: 20, maxSilenceSec: 1e9 });
    for (let s = 1; s <= 50; s++) r.step(at(s));
    r.log('validation after epoch 1: EN 2.0000');
    expect(lines.map((l) => /step (\d+)\//.exec(l)?.[1] ?? l)).toEqual(['1', '20', '40', '50', 'validation after epoch 1: EN 2.0000']);
    expect(lines[0]).toBe('epoch 1/2 step 1/50 loss 3.1416 lr 2.00e-5 grad-norm 0.500 1234 tok/s elapsed 1m15s eta 1h02m mem 1.5 GiB');
  });

  it('on a terminal: a live bar redrawn in place, log lines above it', async () => {
    let out = '';
    const tty = Object.assign(new Writable({ write: (c, _e, cb) => ((out += c), cb()) }), {
      isTTY: true, columns: 160, rows: 40,
      cursorTo: (x: number, cb?: () => void) => ((out += `\x1b[${x + 1}G`), cb?.(), true),
      moveCursor: (_dx: number, _dy: number, cb?: () => void) => (cb?.(), true),
      clearLine: (_d: number, cb?: () => void) => ((out += '\x1b[2K'), cb?.(), true),
      clearScreenDown: (cb?: () => void) => (cb?.(), true),
      getWindowSize: () => [160, 40],
    }) as unknown as NodeJS.WriteStream;
    const r = reporterFor(tty, 10);
    r.step(at(1));
    r.log('saved checkpoint-1');
    r.step(at(2));
    await new Promise((res) => setTimeout(res, 300));
    r.close();
    expect(out).toContain('epoch 1/2');
    expect(out).toMatch(/ 2\/50 \| loss 3\.1416 \| lr 2\.00e-5 \| 1234 tok\/s \| 1m15s elapsed \| ETA 1h02m \| 1\.5 GiB/);
    expect(out).toContain('saved checkpoint-1\n');
    expect(out).not.toMatch(/step 1\/50 loss/); // no plain lines on a terminal
  });

  it('formats durations', () => {
    expect([0.4, 59, 61, 3599, 3600, 90061].map(formatDuration)).toEqual(['0s', '59s', '1m01s', '59m59s', '1h00m', '25h01m']);
  });
});
