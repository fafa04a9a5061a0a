// ZeRO-1 (train.zero 1) under mpirun, run as a user runs it: each rank holds and updates its range
// of the optimizer state. Compared with a single-process run (f32 weights: the only difference is
// the order of fp32 sums), with the unsharded data-parallel run (bf16, no clipping: the same sums,
// so bit-identical), and resumed at other world sizes and with sharding switched off and on.
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { smallRunConfigFile, tempDirs } from '../train/helpers.js';
import { TRAIN, checkpointContent, expectSameRun, losses, missingMpi, train } from './helpers.js';

if (missingMpi) console.warn(`skipping the ZeRO-1 tests: ${missingMpi}`);

const temp = tempDirs();

/** "optimizer state: A MiB per rank (ZeRO-1 over N ranks; B MiB unsharded)" as numbers. */
function memoryLine(out: string): { perRank: number; ranks: number; unsharded: number } {
  const m = /optimizer state: ([\d.]+) MiB per rank \(ZeRO-1 over (\d+) ranks; ([\d.]+) MiB unsharded\)/.exec(out);
  if (!m) throw new Error(`no ZeRO-1 memory line in:\n${out}`);
  return { perRank: Number(m[1]), ranks: Number(m[2]), unsharded: Number(m[3]) };
}

describe.skipIf(!!missingMpi)('ZeRO-1 over MPI (mpirun, train.zero 1)', () => {
  let base: string;
  let single: string;
  beforeAll(async () => {
    base = temp('polytune-z1-');
    await smallRunConfigFile(base, TRAIN);
    single = temp('polytune-z1s-');
    cpSync(base, single, { recursive: true });
    train(single, 0, ['--set', 'train.maxSteps=20']);
  }, 180_000);

  const copy = (prefix: string, from = base) => {
    const d = temp(prefix);
    cpSync(from, d, { recursive: true });
    return d;
  };

  it.each([2, 4])('mpirun -np %i: the losses and the weights after 20 steps equal the single-process run', (np) => {
    const d = copy(`polytune-z1n${np}-`);
    const r = train(d, np, ['--set', 'train.maxSteps=20', '--set', 'train.zero=1']);
    expectSameRun(d, single);
    // Each rank holds a 1/np share (its range is rounded up to 32 elements per arena; the line
    // prints MiB to 2 decimals, so each figure is off by up to 0.005).
    const mem = memoryLine(r.stdout);
    expect(mem.ranks).toBe(np);
    expect(Math.abs(mem.perRank - mem.unsharded / np)).toBeLessThanOrEqual(0.011);
    // The checkpoint records how it was written; its optimizer state is whole (gathered by rank 0).
    const ck = checkpointContent(d, 20);
    expect(ck.state.extra?.parallel).toEqual({ worldSize: np, zero: 1 });
    const ref = checkpointContent(single, 20);
    expect([...ck.optimizer.keys()].sort()).toEqual([...ref.optimizer.keys()].sort());
    let worst = 0;
    for (const [n, x] of ck.optimizer) {
      const y = ref.optimizer.get(n)!;
      expect(x.length).toBe(y.length);
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (Math.abs(y[i]) + 1e-6));
    }
    // Moments relative to their own size (exp_avg_sq is ~1e-8: relative, with a floor well below it).
    expect(worst).toBeLessThan(1e-2);
  }, 180_000);

  it('bf16 without clipping: sharded and unsharded 2-rank runs are bit-identical (weights, masters, moments)', () => {
    const args = ['--set', 'train.maxSteps=8', '--set', 'train.dtype=bf16', '--set', 'train.maxGradNorm=0'];
    const plain = copy('polytune-z1b0-');
    train(plain, 2, args);
    const sharded = copy('polytune-z1b1-');
    // Collective windows of 1000 elements (2^26 by default): the arenas cross many window edges.
    train(sharded, 2, [...args, '--set', 'train.zero=1'], { POLYTUNE_DIST_WINDOW: '1000' });
    expect(losses(sharded).map((r) => r.loss)).toEqual(losses(plain).map((r) => r.loss));
    // Saved at the end of epoch 1 and at the pause.
    for (const step of [6, 8]) {
      const a = checkpointContent(sharded, step);
      const b = checkpointContent(plain, step);
      expect(a.params).toEqual(b.params);
      expect([...a.optimizer.keys()].some((k) => k.startsWith('master.'))).toBe(true);
      expect(a.optimizer).toEqual(b.optimizer);
    }
  }, 180_000);

  it('a sharded checkpoint resumes at 2 ranks, at 1 and at 4 unsharded; an unsharded one resumes sharded; all end where the single-process run ends', () => {
    const d = copy('polytune-z1r-');
    train(d, 2, ['--set', 'train.maxSteps=10', '--set', 'train.zero=1']);
    const one = copy('polytune-z1r1-', d);
    const four = copy('polytune-z1r4-', d);
    train(d, 2, ['--resume', '--set', 'train.maxSteps=20', '--set', 'train.zero=1']);
    expectSameRun(d, single);
    train(one, 0, ['--resume', '--set', 'train.maxSteps=20']);
    expectSameRun(one, single);
    train(four, 4, ['--resume', '--set', 'train.maxSteps=20', '--set', 'train.zero=0']);
    expectSameRun(four, single);
    // The reverse: the single-process run's step-18 checkpoint, continued with 4 sharded ranks.
    const unsharded = copy('polytune-z1ru-', single);
    rmSync(join(unsharded, 'run/checkpoints/checkpoint-20'), { recursive: true });
    rmSync(join(unsharded, 'run/checkpoints/latest'));
    // The metrics of steps 19 and 20 go too, as if the run had stopped at 18.
    const metrics = join(unsharded, 'run/metrics.jsonl');
    writeFileSync(metrics, readFileSync(metrics, 'utf8').split('\n').filter((l) => !/"step":(19|20),/.test(l)).join('\n'));
    const r = train(unsharded, 4, ['--resume', '--set', 'train.maxSteps=20', '--set', 'train.zero=1']);
    expect(r.stdout).toContain('ZeRO-1 over 4 ranks');
    expectSameRun(unsharded, single);
  }, 300_000);
});
