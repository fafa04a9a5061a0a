import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig, defaultConfigYaml } from '../../src/cli/config.js';
import { STUDY_TRAIN, linearLr, loadRunConfig, parseRunConfig } from '../../src/train/index.js';
import { tempDirs } from './helpers.js';

const data = { languages: ['EN'], files: 'en.json' };
const tempDir = tempDirs();

describe('run config', () => {
  it('fills the study defaults and resolves paths against the config folder', () => {
    const c = parseRunConfig({ model: 'llama-2-7b', data, out: 'runs/x' }, { baseDir: '/cfg', where: 'run.json' });
    expect(c.train).toMatchObject({ lr: 1e-5, beta1: 0.9, beta2: 0.95, weightDecay: 0.1, globalBatch: 64, earlyStopping: null, evalEvery: 0 });
    expect(c.model).toBe('llama-2-7b');
    expect(c.out).toBe('/cfg/runs/x');
    expect(c.data.files.EN).toEqual(['/cfg/en.json']);
    expect(c.report).toEqual([]);
  });

  it.each([
    [{ model: 'tiny', data, train: { lr: '1e-5' } }, 'run.json: field "train.lr" must be a number, got "1e-5"'],
    [{ model: 'tiny', data, train: { lr: -1 } }, 'run.json: field "train.lr" must be positive, got -1'],
    [{ model: 'tiny', data, train: { epoch: 3 } }, 'run.json: field "train.epoch" is not a training setting (known: epochs, lr,'],
    [{ model: 'tiny', data, train: { globalBatch: 64, microBatch: 10 } }, 'run.json: field "train.microBatch" must divide globalBatch 64, got 10'],
    [{ model: 'tiny', data, train: { epochs: 2.5 } }, 'run.json: field "train.epochs" must be an integer >= 1, got 2.5'],
    [{ model: 'tiny', data, train: { beta2: 1 } }, 'run.json: field "train.beta2" must be in [0, 1), got 1'],
    [{ model: 'tiny', data, train: { dtype: 'fp16' } }, 'run.json: field "train.dtype" must be "bf16" or "f32", got "fp16"'],
    [{ model: 'tiny', data, train: { zero: 2 } }, 'run.json: field "train.zero" must be 0 or 1, got 2'],
    [{ model: 'tiny', data, train: { zero: true } }, 'run.json: field "train.zero" must be 0 or 1, got true'],
    [{ model: 'tiny', data, train: { earlyStopping: { patience: 0 } } }, 'run.json: field "train.earlyStopping.patience" must be an integer >= 1, got 0'],
    [{ model: 'tiny', data, train: { earlyStopping: { patience: 2, delta: 1 } } }, 'run.json: field "train.earlyStopping.delta" is not an early-stopping setting'],
    [{ model: 'tiny', data, report: ['wandb'] }, 'run.json: field "report[0]" must be one of "tensorboard", got "wandb"'],
    [{ model: 'tiny', data, extra: 1 }, 'run.json: field "extra" is not a run setting'],
    [{ data }, 'run.json: field "model" must be a non-empty string'],
    [{ model: 'tiny', data: { languages: ['EN', 'DE'], files: 'x.json' } }, 'run.json: data: field "mixture" is required'],
    [[1, 2], 'run.json: expected an object of settings'],
  ])('rejects %j', (raw, msg) => {
    expect(() => parseRunConfig(raw, { baseDir: '/cfg', where: 'run.json', defaultOut: 'runs/run' })).toThrow(msg);
  });

  it('names every problem, one line each', () => {
    expect(() => parseRunConfig({ model: 'tiny', data, train: { lr: 0, epochs: 0 } }, { baseDir: '/cfg', where: 'run.json' })).toThrow(
      'run.json: field "train.epochs" must be an integer >= 1, got 0\nrun.json: field "train.lr" must be positive, got 0',
    );
  });
});

describe('config files', () => {
  it('reads YAML, applies --set overrides, and names a run without "out" after its config file', () => {
    const dir = tempDir('pt-cfg-');
    mkdirSync(join(dir, 'configs'));
    const file = join(dir, 'configs', 'lima-de.yaml');
    writeFileSync(file, 'model: tiny\ndata:\n  languages: [DE]\n  files: ../data/{lang_lower}.json\ntrain:\n  lr: 1e-4\n  epochs: 7\n');
    const c = loadRunConfig(file, ['train.lr=2e-5', 'train.earlyStopping={patience: 2, minDelta: 0.01}', 'report=[tensorboard]', 'data.languages=[DE]']);
    expect(c.train.lr).toBe(2e-5);
    expect(c.train.epochs).toBe(7);
    expect(c.train.earlyStopping).toEqual({ patience: 2, minDelta: 0.01 });
    expect(c.report).toEqual(['tensorboard']);
    expect(c.data.files.DE).toEqual([join(dir, 'data', 'de.json')]);
    // Never the demo's runs/default: the folder is named after the config, beside it.
    expect(c.out).toBe(join(dir, 'configs', 'runs', 'lima-de'));
    // A path given on the command line is relative to where it was typed.
    expect(loadRunConfig(file, ['out=elsewhere/x']).out).toBe(join(process.cwd(), 'elsewhere', 'x'));
  });

  it('JSON and YAML forms of one config give the same run config', () => {
    const dir = tempDir('pt-cfg-');
    const raw = { model: 'tiny', tokenizer: 'tok.model', data: { ...data, mixture: 'mono' }, train: { lr: 3e-4, warmupSteps: 10 }, out: 'r' };
    writeFileSync(join(dir, 'a.json'), JSON.stringify(raw));
    writeFileSync(join(dir, 'a.yml'), 'model: tiny\ntokenizer: tok.model\ndata: {languages: [EN], files: en.json, mixture: mono}\ntrain: {lr: 3.0e-4, warmupSteps: 10}\nout: r\n');
    expect(loadRunConfig(join(dir, 'a.yml'))).toEqual(loadRunConfig(join(dir, 'a.json')));
  });

  it('reports overrides and unreadable files by name', () => {
    const dir = tempDir('pt-cfg-');
    const file = join(dir, 'r.yaml');
    writeFileSync(file, 'model: tiny\ndata: {languages: [EN], files: en.json}\n');
    expect(() => loadRunConfig(file, ['train.lr=1e999'])).toThrow(`${file}: field "train.lr" must be a finite number, got Infinity`);
    expect(() => loadRunConfig(file, ['train.lr=.nan'])).toThrow('field "train.lr" must be a finite number, got NaN');
    expect(() => loadRunConfig(file, ['train.warmup=5'])).toThrow('field "train.warmup" is not a training setting');
    expect(() => loadRunConfig(file, ['lr'])).toThrow('--set "lr": expected key.path=value');
    expect(() => loadRunConfig(file, ['model.name=x'])).toThrow('"model" in');
    writeFileSync(join(dir, 'bad.yaml'), 'model: tiny\n  data: [\n');
    expect(() => loadRunConfig(join(dir, 'bad.yaml'))).toThrow(`${join(dir, 'bad.yaml')}: not valid YAML`);
    expect(() => loadRunConfig(join(dir, 'missing.json'))).toThrow(`${join(dir, 'missing.json')}: cannot read the run config`);
  });

  it('`config --defaults` prints every setting, documented, as YAML that loads to the defaults', () => {
    const dir = tempDir('pt-cfg-');
    const text = defaultConfigYaml();
    for (const k of Object.keys(STUDY_TRAIN)) expect(text).toMatch(new RegExp(`# .+\\n  ${k}:`));
    writeFileSync(join(dir, 'defaults.yaml'), text);
    const c = loadRunConfig(join(dir, 'defaults.yaml'));
    expect(c.train).toEqual(STUDY_TRAIN);
    const d = defaultConfig() as { data: { maxSeqLen: number; seed: number } };
    expect([c.data.maxSeqLen, c.data.seed]).toEqual([d.data.maxSeqLen, d.data.seed]);
    expect(c.out).toBe(join(dir, 'runs', 'my-run'));
  });
});

describe('linear schedule', () => {
  it("matches transformers' get_linear_schedule_with_warmup", () => {
    // lr_lambda(k) = k / warmup during warmup, then (total - k) / (total - warmup).
    expect([0, 1, 2, 3, 4, 9].map((k) => linearLr(1, k, 10, 2))).toEqual([0, 0.5, 1, 7 / 8, 6 / 8, 1 / 8]);
    [2e-5, 1e-5, 2e-6].forEach((want, i) => expect(linearLr(2e-5, [0, 5, 9][i], 10, 0)).toBeCloseTo(want, 15));
  });
});
