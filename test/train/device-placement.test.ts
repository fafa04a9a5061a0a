// A run places everything it builds on the picked device. Only 'cpu' runs here, so a tensor or a
// model that falls back to the default device would pass unseen; the spies record the device each
// tensor constructor was given ('default' where none was). The first GPU run found exactly that: a
// randomly initialised model ignored train.device and trained on the CPU.
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LlamaModel } from '../../src/model/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { runTraining } from '../../src/train/index.js';
import { quiet, smallRun, tempDirs } from './helpers.js';

const dirs = tempDirs();

describe('train.device', () => {
  afterEach(() => vi.restoreAllMocks());

  for (const from of ['random weights', 'a model folder', 'a resumed checkpoint'] as const) {
    it(`reaches every tensor of a run from ${from}, named explicitly`, async () => {
      const base = dirs('polytune-device-');
      const first = await smallRun(join(base, 'first'), ['train.maxSteps=2', 'train.saveEvery=1', 'train.device=cpu']);
      const ran = await runTraining(first, { log: quiet });
      const cfg =
        from === 'random weights' ? await smallRun(join(base, 'run'), ['train.maxSteps=1', 'train.device=cpu'])
        : from === 'a model folder' ? { ...(await smallRun(join(base, 'run'), ['train.maxSteps=1', 'train.device=cpu'])), model: ran.checkpoint }
        : first;
      const seen = new Map<string, number>();
      for (const [fn, at] of [['empty', 2], ['zeros', 2], ['full', 3], ['fromArray', 3]] as const) {
        const orig = Tensor[fn] as (...a: unknown[]) => Tensor;
        vi.spyOn(Tensor, fn).mockImplementation((...a: unknown[]) => {
          const key = `${fn} on ${(a[at] as string | undefined) ?? 'default'}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          return orig.apply(Tensor, a);
        });
      }
      const fromWeights = vi.spyOn(LlamaModel, 'fromWeights');
      await runTraining(from === 'a resumed checkpoint' ? { ...cfg, train: { ...cfg.train, maxSteps: 3 } } : cfg, { log: quiet, resume: from === 'a resumed checkpoint' ? true : undefined });
      for (const call of fromWeights.mock.calls) expect(call[4], 'LlamaModel.fromWeights device').toBe('cpu');
      expect([...seen.keys()].filter((k) => !k.endsWith(' on cpu'))).toEqual([]);
      expect([...seen.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    });
  }
});
