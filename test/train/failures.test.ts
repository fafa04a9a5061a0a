// Failing clearly: a full disk while saving, a diverging loss, absurd settings.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointStore, readCheckpoint } from '../../src/checkpoint/index.js';
import { Tensor, keep } from '../../src/tensor/index.js';
import { DivergedError, LOCK_FILE, readMetrics, runTraining, settingWarnings, STUDY_TRAIN } from '../../src/train/index.js';
import { canMountTmpfs, quiet, smallRun, tempDirs } from './helpers.js';

const tempDir = tempDirs();

const mountable = canMountTmpfs(tempDir);
if (!mountable) console.warn('skipping the tmpfs ENOSPC test: `mount -t tmpfs` needs root in a container that allows it (the injected-error test still runs)');

const du = (dir: string): number => readdirSync(dir, { recursive: true }).reduce<number>((n, f) => {
  const st = statSync(join(dir, String(f)));
  return n + (st.isFile() ? st.size : 0);
}, 0);

describe('a full disk', () => {
  it('a failed checkpoint write names the checkpoint, keeps the previous one and removes its partial folder (injected ENOSPC)', () => {
    const root = join(tempDir('pt-enospc-'), 'checkpoints');
    const store = new CheckpointStore(root, { keepLast: 2 });
    store.save(1, (tmp) => writeFileSync(join(tmp, 'config.json'), '{"step": 1}'));
    const err = (() => {
      try {
        store.save(2, (tmp) => {
          writeFileSync(join(tmp, 'config.json'), '{"step": 2}');
          writeFileSync(join(tmp, 'model.safetensors'), Buffer.alloc(1000));
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toBe(`could not write checkpoint ${join(root, 'checkpoint-2')}: no space left on device (ENOSPC). ` +
      `The previous checkpoint ${join(root, 'checkpoint-1')} is intact; the partial ${join(root, `.tmp-checkpoint-2-${process.pid}`)} was removed. ` +
      'A store keeping keepLast 2 needs room for 3 checkpoints while it writes the next.');
    expect(readdirSync(root).sort()).toEqual(['checkpoint-1', 'latest']);
    expect(store.latest()?.step).toBe(1);
    expect(readFileSync(join(root, 'checkpoint-1', 'config.json'), 'utf8')).toBe('{"step": 1}');
  });

  it.skipIf(!mountable)('a run on a small tmpfs stops at the checkpoint that does not fit, with the previous one loadable', async () => {
    const base = tempDir('pt-tmpfs-');
    // The size of one checkpoint of this model, measured on the ordinary disk.
    const probe = await runTraining(await smallRun(join(base, 'probe'), ['train.maxSteps=1']), { log: quiet });
    const size = du(probe.checkpoint);
    const mnt = join(base, 'mnt');
    mkdirSync(mnt);
    // Room for one checkpoint and a half: the second cannot be written while the first is kept.
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil((size * 1.5) / 4096) * 4096}`, 'tmpfs', mnt]);
    try {
      const cfg = await smallRun(join(base, 'inputs'), ['train.saveEvery=1', 'train.maxSteps=3']);
      const err = await runTraining({ ...cfg, out: join(mnt, 'run') }, { log: quiet }).then(() => null, (e: Error) => e);
      const ck = join(mnt, 'run', 'checkpoints');
      expect(err?.message).toMatch(new RegExp(`^could not write checkpoint ${ck}/checkpoint-2: no space left on device \\(ENOSPC\\)\\. ` +
        `The previous checkpoint ${ck}/checkpoint-1 is intact; the partial ${ck}/\\.tmp-checkpoint-2-\\d+ was removed\\.`));
      expect(readdirSync(ck).filter((f) => f.startsWith('.tmp'))).toEqual([]);
      const back = readCheckpoint(join(ck, 'checkpoint-1'), { alloc: (shape, dtype) => keep(Tensor.empty(shape, dtype)) });
      expect(back.state?.step).toBe(1);
      for (const t of back.params.values()) t.dispose();
      for (const t of back.optimizer?.values() ?? []) t.dispose();
      expect(existsSync(join(mnt, 'run', LOCK_FILE))).toBe(false);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('divergence and absurd settings', () => {
  it('a NaN gradient norm stops with the step, the last good checkpoint and a hint', async () => {
    const dir = tempDir('pt-nan-');
    const lines: string[] = [];
    // lr 1e30: the first update throws the weights to ~1e30, the next forward overflows.
    const cfg = await smallRun(dir, ['train.lr=1e30', 'train.warmupSteps=0', 'train.saveEvery=1', 'train.logEvery=1']);
    const err = await runTraining(cfg, { log: (l) => lines.push(l) }).then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(DivergedError);
    const m = /^step (\d+)\/12: the gradient norm is (NaN|Infinity) \(the weights were not updated\); training stopped and nothing was saved from this step\.\n {2}Last good checkpoint: (\S+) \(step (\d+)\)\.\n {2}Try a lower train\.lr \(now 1e\+30\)/.exec(err!.message);
    expect(m, err!.message).not.toBeNull();
    const [step, , ck, ckStep] = [Number(m![1]), m![2], m![3], Number(m![4])];
    expect(ckStep).toBe(step - 1);
    expect(ck).toBe(join(dir, 'checkpoints', `checkpoint-${ckStep}`));
    expect(existsSync(ck)).toBe(true);
    expect(err!.message).toMatch(/check this batch's data: examples \S+ \((EN|DE|FR|IT|ES)\)/);
    // Warned before step 1.
    const warn = lines.findIndex((l) => l.startsWith('warning: train.lr 1e+30 is far above usual values'));
    expect(warn).toBeGreaterThanOrEqual(0);
    expect(warn).toBeLessThan(lines.findIndex((l) => /step 1\/12/.test(l)));
    const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
    expect(metrics).toContain(`{"event":"diverged","step":${step},`);
    expect(readMetrics(join(dir, 'metrics.jsonl')).steps.at(-1)?.step).toBe(step - 1);
  });

  it('warns about a warmup longer than the run and other settings that cannot do what they say', () => {
    const w = settingWarnings({ ...STUDY_TRAIN, warmupSteps: 500, evalEvery: 1000, earlyStopping: { patience: 3, minDelta: 0 } }, 176, 22);
    expect(w).toEqual([
      'train.warmupSteps 500 is not shorter than the run (176 steps): the learning rate never reaches train.lr 0.00001',
      'train.evalEvery 1000 is longer than the run (176 steps): only epoch ends validate',
      'train.earlyStopping.patience 3 is not below train.epochs 3: early stopping cannot trigger',
    ]);
  });
});

describe('early stopping without validation data', () => {
  it('is refused before step 1, naming data.validation', async () => {
    const cfg = await smallRun(tempDir('pt-noval-'), ['data.validation.fraction=0', 'train.earlyStopping.patience=1']);
    await expect(runTraining(cfg, { log: quiet })).rejects.toThrow('train.earlyStopping needs validation data, but the validation set is empty: set data.validation');
    expect(readMetrics(join(cfg.out, 'metrics.jsonl')).steps).toEqual([]);
  });
});
