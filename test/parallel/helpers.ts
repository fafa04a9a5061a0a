// Shared by the mpirun tests: whether MPI is here, running the CLI under mpirun (or alone), and
// reading back a run's losses, weights and optimizer state.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { readCheckpoint } from '../../src/checkpoint/index.js';
import { Tensor, native } from '../../src/tensor/index.js';
import { cliEntry } from '../helpers/cli.js';

const mpirun = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;
/** Why the mpirun tests cannot run here ('' when they can); with POLYTUNE_REQUIRE_MPI set, a reason is an error. */
export const missingMpi = !mpirun ? 'mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)' : !native().dist.built ? 'the addon was built without MPI (install libopenmpi-dev and rebuild)' : '';
if (missingMpi && process.env.POLYTUNE_REQUIRE_MPI) throw new Error(`POLYTUNE_REQUIRE_MPI is set but ${missingMpi}`);

// Tiny models gain nothing from threads; 4 ranks on 2 cores must not also spin OpenMP workers.
export const mpiEnv = { ...process.env, OMP_NUM_THREADS: '1' };
export const mpiArgs = (np: number) => ['--allow-run-as-root', '--oversubscribe', '--bind-to', 'none', '-np', String(np)];
// 4 epochs of 6 steps (16 examples a step in 4 micro-batches of 4); 20 steps end inside epoch 4.
export const TRAIN = { epochs: 4, globalBatch: 16, microBatch: 4, warmupSteps: 2, lr: 3e-3, dtype: 'f32' };

/** `polytune train dir/run.yaml` under `mpirun -np np` (np 0: one process, no launcher). */
export function train(dir: string, np: number, args: string[] = [], extraEnv: Record<string, string> = {}) {
  const cmd = np === 0 ? process.execPath : 'mpirun';
  const argv = [...(np === 0 ? [] : [...mpiArgs(np), process.execPath]), cliEntry(), 'train', join(dir, 'run.yaml'), ...args];
  const r = spawnSync(cmd, argv, { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...mpiEnv, ...extraEnv } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

export function losses(dir: string): { step: number; loss: number; gradNorm: number }[] {
  return readFileSync(join(dir, 'run/metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.loss !== undefined);
}

/** A checkpoint's weights as f32 arrays. */
export function weights(dir: string, step: number): Map<string, Float32Array> {
  const ck = readCheckpoint(join(dir, `run/checkpoints/checkpoint-${step}`), { alloc: (shape, dtype) => Tensor.empty(shape, dtype), dtype: 'f32', weightsOnly: true });
  return new Map([...ck.params].map(([n, t]) => [n, t.toArray() as Float32Array]));
}

/** A checkpoint's weights (as saved, bf16 ones widened exactly), optimizer tensors and state.json. */
export function checkpointContent(dir: string, step: number) {
  const ck = readCheckpoint(join(dir, `run/checkpoints/checkpoint-${step}`), { alloc: (shape, dtype) => Tensor.empty(shape, dtype), dtype: 'f32' });
  const arrays = (m: Map<string, Tensor> | undefined) => new Map([...(m ?? [])].map(([n, t]) => [n, t.toArray() as Float32Array]));
  return { params: arrays(ck.params), optimizer: arrays(ck.optimizer), state: ck.state! };
}

/**
 * Tolerances: the gradients differ from the single-process ones only by summation order, a few
 * fp32 ulps (relative ~1e-7). Through 20 AdamW steps at lr 3e-3 that stays at a few ulps of the
 * weights (observed: at most 4e-7 on weights of magnitude <= 1, losses within 3e-7 relative);
 * the bounds below are 25x that, still far below one AdamW step (lr 3e-3), so a lost or doubled
 * micro-batch, a wrong normalisation or a skipped all-reduce fails them by orders of magnitude.
 */
export function expectSameRun(dir: string, ref: string, steps = 20): void {
  const a = losses(dir);
  const b = losses(ref);
  expect(a.map((r) => r.step)).toEqual(b.map((r) => r.step));
  expect(a.length).toBe(steps);
  a.forEach((r, i) => {
    expect(Math.abs(r.loss - b[i].loss) / b[i].loss).toBeLessThan(5e-6);
    expect(Math.abs(r.gradNorm - b[i].gradNorm) / b[i].gradNorm).toBeLessThan(1e-4);
  });
  const wa = weights(dir, steps);
  const wb = weights(ref, steps);
  expect([...wa.keys()]).toEqual([...wb.keys()]);
  let worst = 0;
  for (const [n, x] of wa) {
    const y = wb.get(n)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  expect(worst).toBeLessThan(1e-5);
}
