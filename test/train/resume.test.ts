// Exact resume: N steps straight equal N/2 steps, a stop, and a resume for the rest, bit for bit;
// a resume after the whole folder moved; a refused resume names every changed field; metrics.jsonl
// marks the resume.
import { cpSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { embeddedDefault, loadRunConfig, readMetrics, runTraining, type RunConfig } from '../../src/train/index.js';
import { quiet, smallRunConfigFile, tempDirs } from './helpers.js';

const tempDir = tempDirs();

async function smallRun(dir: string, maxSteps: number, dtype: 'bf16' | 'f32' = 'bf16'): Promise<RunConfig> {
  const cfg = await embeddedDefault(dir, { items: 40 });
  return { ...cfg, train: { ...cfg.train, epochs: 2, globalBatch: 16, microBatch: 8, maxSteps, warmupSteps: 2, dtype, logEvery: 1 } };
}

/** The bytes that define a checkpoint's numbers: weights, optimizer tensors, and the state. */
function checkpointBytes(dir: string): Record<string, Buffer> {
  return {
    weights: readFileSync(join(dir, 'model.safetensors')),
    optimizer: readFileSync(join(dir, 'training_state', 'optimizer.safetensors')),
    state: readFileSync(join(dir, 'training_state', 'state.json')),
  };
}

describe('exact resume', () => {
  it('N steps straight == N/2 steps, stop, resume N/2 steps (weights and optimizer state bit-identical)', async () => {
    const base = tempDir('pt-resume-');
    // 200 examples in batches of 16 makes 12 steps an epoch: the run crosses an epoch boundary.
    const straight = await runTraining(await smallRun(join(base, 'a'), 16), { log: quiet });
    expect(straight.steps).toBe(16);
    const first = await runTraining(await smallRun(join(base, 'b'), 8), { log: quiet });
    expect(first.stoppedEarly).toBe(true);
    expect(first.steps).toBe(8);
    const second = await runTraining(await smallRun(join(base, 'b'), 16), { log: quiet, resume: true });
    expect(second.resumedFrom).toMatch(/checkpoint-8$/);
    expect(second.steps).toBe(16);
    const a = checkpointBytes(straight.checkpoint);
    const b = checkpointBytes(second.checkpoint);
    expect(b.weights.equals(a.weights)).toBe(true);
    expect(b.optimizer.equals(a.optimizer)).toBe(true);
    // The states agree, fingerprint included (it holds no path), but for the wall time.
    const state = (buf: Buffer) => {
      const st = JSON.parse(buf.toString());
      delete st.extra.run.wallSeconds;
      return st;
    };
    expect(state(b.state)).toEqual(state(a.state));
    expect(state(a.state)).toMatchObject({ step: 16 });
    // And a run that did not resume does differ: the comparison can fail.
    const fresh = await runTraining(await smallRun(join(base, 'c'), 8), { log: quiet });
    expect(checkpointBytes(fresh.checkpoint).weights.equals(a.weights)).toBe(false);
  });

  it('f32 runs resume exactly too (weights saved as F32, no master copies)', async () => {
    const base = tempDir('pt-resume-');
    const straight = await runTraining(await smallRun(join(base, 'a'), 6, 'f32'), { log: quiet });
    await runTraining(await smallRun(join(base, 'b'), 3, 'f32'), { log: quiet });
    const resumed = await runTraining(await smallRun(join(base, 'b'), 6, 'f32'), { log: quiet, resume: true });
    expect(resumed.resumedFrom).toMatch(/checkpoint-3$/);
    const a = checkpointBytes(straight.checkpoint);
    const b = checkpointBytes(resumed.checkpoint);
    expect(b.weights.equals(a.weights)).toBe(true);
    expect(b.optimizer.equals(a.optimizer)).toBe(true);
    expect(JSON.parse(readFileSync(join(straight.checkpoint, 'config.json'), 'utf8')).torch_dtype).toBe('float32');
  });

  it('a resume with an unchanged maxSteps takes no step; a fresh run refuses a used folder', async () => {
    const dir = tempDir('pt-resume-');
    await runTraining(await smallRun(dir, 2), { log: quiet });
    const lines: string[] = [];
    const again = await runTraining(await smallRun(dir, 2), { log: (l) => lines.push(l), resume: true });
    expect(again.steps).toBe(2);
    expect(again.checkpoint).toMatch(/checkpoint-2$/);
    expect(lines.join('\n')).toMatch(/train.maxSteps is 2; raise it to continue/);
    await expect(runTraining(await smallRun(dir, 4), { log: quiet })).rejects.toThrow(/already holds checkpoints of a run/);
  });

  it('refuses to resume with a changed configuration', async () => {
    const dir = tempDir('pt-resume-');
    await runTraining(await smallRun(dir, 2), { log: quiet });
    const changed = await smallRun(dir, 4);
    changed.train = { ...changed.train, lr: changed.train.lr * 2 };
    await expect(runTraining(changed, { log: quiet, resume: true })).rejects.toThrow(/other settings or data \(checkpoint → now\):\n  train\.lr: 0\.003 → 0\.006\n/);
  });
});

describe('resume', () => {
  it('after the project and data folder moved; result-neutral settings may change; changed ones are each named', async () => {
    const base = tempDir('pt-move-');
    const file = await smallRunConfigFile(join(base, 'a'), { maxSteps: 2, logEvery: 1 });
    const first = await runTraining(loadRunConfig(file), { log: quiet });
    expect(first.steps).toBe(2);
    // The uninterrupted reference, in a copy made before anything moves.
    cpSync(join(base, 'a'), join(base, 'ref'), { recursive: true });
    const refFile = join(base, 'ref', 'run.yaml');
    const ref = await runTraining(loadRunConfig(refFile, ['train.maxSteps=4', 'out=' + join(base, 'ref', 'straight')]), { log: quiet });

    renameSync(join(base, 'a'), join(base, 'moved'));
    const moved = join(base, 'moved', 'run.yaml');
    // Cache folder, checkpointing, logging, saving, the pause point and the device may change.
    const lines: string[] = [];
    const neutral = ['train.maxSteps=4', 'train.device=cpu', 'train.checkpointing=true', 'train.keepLast=3', 'train.logEvery=2', 'train.evalEvery=3', 'report=[tensorboard]', `data.cacheDir=${join(base, 'cache2')}`];
    const resumed = await runTraining(loadRunConfig(moved, neutral), { log: (l) => lines.push(l), resume: true });
    expect(resumed.resumedFrom).toBe(join(base, 'moved', 'run', 'checkpoints', 'checkpoint-2'));
    expect(resumed.steps).toBe(4);
    expect(readFileSync(join(resumed.checkpoint, 'model.safetensors')).equals(readFileSync(join(ref.checkpoint, 'model.safetensors')))).toBe(true);

    // metrics.jsonl: a line marks the resume, and readers get one entry per step.
    const raw = readFileSync(join(base, 'moved', 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(raw.find((o) => o.event === 'resume')).toMatchObject({ step: 2, from: join(base, 'moved', 'run', 'checkpoints', 'checkpoint-2') });
    expect(readMetrics(join(base, 'moved', 'run', 'metrics.jsonl')).steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);

    // Changes that alter the numbers are refused, each named with its old and new value.
    const changed = loadRunConfig(moved, ['train.maxSteps=6', 'train.lr=0.001', 'train.globalBatch=8', 'data.seed=7']);
    const err = await runTraining(changed, { log: quiet, resume: true }).then(() => null, (e: Error) => e.message);
    expect(err).toContain('cannot resume: it was written by a run with other settings or data (checkpoint → now):');
    expect(err).toContain('\n  train.lr: 0.003 → 0.001');
    expect(err).toContain('\n  train.globalBatch: 16 → 8');
    expect(err).toContain('\n  data.seed: 0 → 7');
    expect(err).toMatch(/data\.trainingTokens: "[0-9a-f]{64}" → "[0-9a-f]{64}"/); // the seed changes the split
    expect(err).not.toMatch(/^ +train\.maxSteps/m);
  });

  it('refuses data whose contents changed, though its path did not', async () => {
    const base = tempDir('pt-data-');
    const file = await smallRunConfigFile(base, { maxSteps: 1 });
    await runTraining(loadRunConfig(file), { log: quiet });
    const de = join(base, 'data', 'DE.json');
    const rows = JSON.parse(readFileSync(de, 'utf8'));
    rows[0].output = rows[0].output + ' (edited)';
    writeFileSync(de, JSON.stringify(rows));
    await expect(runTraining(loadRunConfig(file, ['train.maxSteps=2']), { log: quiet, resume: true })).rejects.toThrow(/data\.(trainingTokens|validationTokens): "[0-9a-f]+" → "[0-9a-f]+"/);
  });

  it('a torn or duplicated metrics history reads as one value per step, the latest attempt winning', async () => {
    const dir = tempDir('pt-metrics-');
    const f = join(dir, 'metrics.jsonl');
    writeFileSync(f, [
      { step: 1, epoch: 1, loss: 5, lr: 0, gradNorm: 1, tokens: 1, ms: 1 },
      { step: 2, epoch: 1, loss: 4, lr: 0, gradNorm: 1, tokens: 1, ms: 1 },
      { step: 3, epoch: 1, loss: 3.5, lr: 0, gradNorm: 1, tokens: 1, ms: 1 }, // a killed attempt's step, never saved
      { event: 'resume', step: 2, from: 'checkpoint-2' },
      { step: 3, epoch: 1, loss: 3, lr: 0, gradNorm: 1, tokens: 1, ms: 1 },
    ].map((o) => JSON.stringify(o)).join('\n') + '\n{"step": 4, "lo');
    const m = readMetrics(f);
    expect(m.steps.map((s) => [s.step, s.loss])).toEqual([[1, 5], [2, 4], [3, 3]]);
    expect(m.resumes).toEqual([{ event: 'resume', step: 2, from: 'checkpoint-2' }]);
  });
});

