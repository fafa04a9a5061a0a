import { describe, expect, it } from 'vitest';
import { linearLr, parseRunConfig } from '../../src/train/index.js';

const data = { languages: ['EN'], files: 'en.json' };

describe('run config', () => {
  it('fills the study defaults and resolves paths against the config folder', () => {
    const c = parseRunConfig({ model: 'llama-2-7b', data, out: 'runs/x' }, { baseDir: '/cfg', where: 'run.json' });
    expect(c.train).toMatchObject({ lr: 1e-5, beta1: 0.9, beta2: 0.95, weightDecay: 0.1, globalBatch: 64 });
    expect(c.model).toBe('llama-2-7b');
    expect(c.out).toBe('/cfg/runs/x');
    expect(c.data.files.EN).toEqual(['/cfg/en.json']);
  });

  it.each([
    [{ model: 'tiny', data, train: { lr: '1e-5' } }, 'run.json: field "train.lr" must be a number, got "1e-5"'],
    [{ model: 'tiny', data, train: { epoch: 3 } }, 'run.json: field "train.epoch" is not a training setting'],
    [{ model: 'tiny', data, train: { globalBatch: 64, microBatch: 10 } }, 'field "train.microBatch" must divide globalBatch 64'],
    [{ model: 'tiny', data, extra: 1 }, 'run.json: field "extra" is not a run setting'],
    [{ data }, 'run.json: field "model" must be a non-empty string'],
    [{ model: 'tiny', data: { languages: ['EN', 'DE'], files: 'x.json' } }, 'run.json: data: field "mixture" is required'],
  ])('rejects %j', (raw, msg) => {
    expect(() => parseRunConfig(raw, { baseDir: '/cfg', where: 'run.json' })).toThrow(msg);
  });
});

describe('linear schedule', () => {
  it("matches transformers' get_linear_schedule_with_warmup", () => {
    // lr_lambda(k) = k / warmup during warmup, then (total - k) / (total - warmup).
    expect([0, 1, 2, 3, 4, 9].map((k) => linearLr(1, k, 10, 2))).toEqual([0, 0.5, 1, 7 / 8, 6 / 8, 1 / 8]);
    [2e-5, 1e-5, 2e-6].forEach((want, i) => expect(linearLr(2e-5, [0, 5, 9][i], 10, 0)).toBeCloseTo(want, 15));
  });
});
