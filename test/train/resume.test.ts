// Exact resume: N steps straight equal N/2 steps, a stop, and a resume for the rest, bit for bit;
// also through the CLI with a real SIGINT.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedDefault, runTraining, type RunConfig } from '../../src/train/index.js';

const root = join(import.meta.dirname, '..', '..');
const quiet = () => {};
const temps: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
};
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function smallRun(dir: string, maxSteps: number, dtype: 'bf16' | 'f32' = 'bf16'): Promise<RunConfig> {
  const cfg = await embeddedDefault(dir, { items: 40 });
  return { ...cfg, train: { ...cfg.train, epochs: 2, globalBatch: 16, microBatch: 8, maxSteps, warmupSteps: 2, dtype } };
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
    // The states agree but for the run folder each run's config names.
    const state = (buf: Buffer) => {
      const { runConfig: _, ...rest } = JSON.parse(buf.toString()).state ?? JSON.parse(buf.toString());
      return rest;
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
    await expect(runTraining(changed, { log: quiet, resume: true })).rejects.toThrow(/another configuration/);
  });
});

describe('the CLI', () => {
  beforeAll(() => {
    execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
  });

  it('SIGINT saves a checkpoint; --resume finishes the run to the same weights as an uninterrupted one', async () => {
    const base = tempDir('pt-cli-');
    const write = async (name: string) => {
      const cfg = await smallRun(join(base, name), 0);
      const file = join(base, `${name}.json`);
      // The config file form of the same run.
      writeFileSync(file, JSON.stringify({ model: cfg.model, tokenizer: cfg.tokenizer, out: cfg.out, train: { ...cfg.train, maxSteps: 0 }, data: {
        languages: cfg.data.languages, mixture: 'all', files: join(base, name, 'data', '{lang}.json'), format: 'bactrian',
        validation: { fraction: 0.1 }, template: 'teuken', maxSeqLen: 256, cacheDir: join(base, name, 'cache') } }));
      return file;
    };
    const run = (args: string[], onLine?: (line: string, kill: () => void) => void) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn(process.execPath, [join(root, 'train.js'), ...args], { cwd: base });
        let out = '';
        p.stdout.on('data', (d: Buffer) => {
          out += d;
          for (const line of d.toString().split('\n')) onLine?.(line, () => p.kill('SIGINT'));
        });
        p.stderr.on('data', (d: Buffer) => (out += d));
        p.on('close', (code) => resolve({ code, out }));
      });
    const straight = await run([await write('a')]);
    expect(straight.code, straight.out).toBe(0);
    const cfgB = await write('b');
    let sent = false;
    const interrupted = await run([cfgB], (line, kill) => {
      if (!sent && /step 5\//.test(line)) {
        sent = true;
        kill();
      }
    });
    expect(interrupted.code, interrupted.out).toBe(0);
    expect(interrupted.out).toMatch(/SIGINT: saving a checkpoint/);
    expect(interrupted.out).toMatch(/continue with --resume/);
    const resumed = await run([cfgB, '--resume']);
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toMatch(/resumed from .*checkpoint-\d+: step \d+/);
    const last = (out: string) => /last checkpoint (\S+?);/.exec(out)![1];
    const a = checkpointBytes(last(straight.out));
    const b = checkpointBytes(last(resumed.out));
    expect(b.weights.equals(a.weights)).toBe(true);
    expect(b.optimizer.equals(a.optimizer)).toBe(true);
  });
});
