import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostTensor } from '../../src/checkpoint/byte-tensor.js';
import { readCheckpoint, verifyCheckpoint, writeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { decodeState, encodeState, type TrainingState } from '../../src/checkpoint/training-state.js';
import { randomOptimizer, randomParams, tempDir, tinyConfig } from './fixtures.js';

const tmp = tempDir('state');
afterAll(tmp.cleanup);
const fresh = tmp.fresh;

const state: TrainingState = {
  step: 1234,
  epoch: 2,
  dataPosition: { epoch: 2, index: 777, shuffleSeed: 42, order: [3, 1, 2] },
  schedule: { kind: 'linear', lr: 9.87654321e-6, warmup: 0, lastLoss: Number.NaN, floor: -0, cap: Infinity },
  rng: { xoshiro: [0xdeadbeefcafebaben, 0x0123456789abcdefn, 1n, 2n ** 64n - 1n], mulberry: 0xffffffff },
  runConfig: { lr: 1e-5, betas: [0.9, 0.95], weightDecay: 0.1, languages: ['en', 'de'], note: 'ünïcødé' },
  extra: { bestValLoss: 1.2345678901234567, tokensSeen: 2 ** 52 + 1 },
};

describe('training state', () => {
  it('round-trips exactly, bigints and non-finite numbers included', () => {
    const back = decodeState(encodeState(state), 'state.json');
    expect(back).toEqual(state);
    const sched = back.schedule as Record<string, number>;
    expect(Object.is(sched.floor, -0)).toBe(true);
    expect(Number.isNaN(sched.lastLoss)).toBe(true);
    expect(typeof (back.rng as { xoshiro: unknown[] }).xoshiro[0]).toBe('bigint');
  });

  it('refuses what JSON would silently drop or distort', () => {
    expect(() => encodeState({ ...state, extra: { x: undefined as never } })).toThrow(/state.extra.x is undefined/);
    expect(() => encodeState({ ...state, rng: new Uint32Array(2) as never })).toThrow(/state.rng is a typed array/);
    expect(() => encodeState({ ...state, rng: { $bigint: '1' } })).toThrow(/key '\$bigint' at state.rng is reserved/);
    expect(() => encodeState({ ...state, schedule: new Map() as never })).toThrow(/state.schedule is a Map/);
    expect(() => encodeState({ ...state, step: 1.5 })).toThrow(/step must be a non-negative integer/);
  });

  it('names the file and the field of a bad state.json', () => {
    const text = encodeState(state);
    expect(() => decodeState(text.replace('"rng"', '"rgn"'), 'x/state.json')).toThrow(/x\/state.json: missing field 'rng'/);
    expect(() => decodeState(text.replace('polytune-training-state', 'other'), 'x/state.json')).toThrow(/x\/state.json: not a training state/);
    expect(() => decodeState(text.slice(0, 20), 'x/state.json')).toThrow(/x\/state.json: not valid JSON/);
    expect(() => decodeState(text.replace('"step": 1234', '"step": -1'), 'x/state.json')).toThrow(/field 'step' must be a non-negative integer/);
  });
});

describe('checkpoint with optimizer state', () => {
  const cfg = tinyConfig();
  const params = randomParams(cfg, 7);

  for (const [what, withMaster, dtype, maxShardBytes] of [
    ['fp32 master weights and moments', true, 'f32', undefined],
    ['bf16 moments without master weights, sharded', false, 'bf16', 3000],
  ] as const) {
    it(`round-trips ${what} bit for bit`, () => {
      const optimizer = randomOptimizer(cfg, 8, withMaster, dtype);
      const dir = fresh();
      writeCheckpoint(dir, { params, optimizer, state }, { config: cfg, maxShardBytes });
      const back = readCheckpoint(dir, { alloc: HostTensor.alloc });
      expect(back.state).toEqual(state);
      expect([...back.optimizer!.keys()].sort()).toEqual([...optimizer.keys()].sort());
      for (const [name, t] of optimizer) {
        expect(back.optimizer!.get(name)!.dtype, name).toBe(dtype);
        expect(back.optimizer!.get(name)!.bytes, name).toEqual(t.bytes);
      }
      for (const [name, t] of params) expect(back.params.get(name)!.bytes, name).toEqual(t.bytes);
      verifyCheckpoint(dir);
    });
  }

  it('names the optimizer tensors that are missing or misshapen', () => {
    const optimizer = randomOptimizer(cfg, 9);
    optimizer.delete('exp_avg_sq.model.norm.weight');
    expect(() => writeCheckpoint(fresh(), { params, optimizer, state }, { config: cfg })).toThrow(/optimizer state to save: .*missing tensor 'exp_avg_sq.model.norm.weight'/);
    optimizer.set('exp_avg_sq.model.norm.weight', new HostTensor('f32', [3]));
    expect(() => writeCheckpoint(fresh(), { params, optimizer, state }, { config: cfg })).toThrow(/'exp_avg_sq.model.norm.weight' has shape \[3\] but config.json needs \[16\]/);
    optimizer.set('exp_avg_sq.model.norm.weight', new HostTensor('f32', [16])).set('momentum.model.norm.weight', new HostTensor('f32', [16]));
    expect(() => writeCheckpoint(fresh(), { params, optimizer, state }, { config: cfg })).toThrow(/unexpected tensor 'momentum.model.norm.weight'/);
  });

  it('detects a flipped byte through the manifest, naming file and tensor', () => {
    const dir = fresh();
    writeCheckpoint(dir, { params, optimizer: randomOptimizer(cfg, 10), state }, { config: cfg });
    const file = join(dir, 'training_state', 'optimizer.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] ^= 0x10;
    writeFileSync(file, bytes);
    expect(() => verifyCheckpoint(dir)).toThrow(new RegExp(`${file}: tensor '[^']+' fails its checksum`));
    expect(() => readCheckpoint(dir, { alloc: HostTensor.alloc })).toThrow(/fails its checksum/);
    // Without verification the same load goes through: the manifest is what catches it.
    expect(readCheckpoint(dir, { alloc: HostTensor.alloc, verify: false }).state).toEqual(state);
  });

  it('fails when the state.json or an optimizer file listed in the manifest is gone', () => {
    const dir = fresh();
    writeCheckpoint(dir, { params, optimizer: randomOptimizer(cfg, 11), state }, { config: cfg });
    rmSync(join(dir, 'training_state', 'state.json'));
    expect(() => readCheckpoint(dir, { alloc: HostTensor.alloc })).toThrow(/state.json: missing/);
    rmSync(join(dir, 'training_state'), { recursive: true });
    expect(() => readCheckpoint(dir, { alloc: HostTensor.alloc })).toThrow(/optimizer.safetensors: listed in manifest.json but missing/);
  });

  it('disposes what it allocated when a load fails part-way', () => {
    const dir = fresh();
    writeCheckpoint(dir, { params, optimizer: randomOptimizer(cfg, 12), state }, { config: cfg });
    const file = join(dir, 'training_state', 'optimizer.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(file, bytes);
    let live = 0;
    const alloc = (shape: readonly number[], dtype: 'bf16' | 'f32' | 'i32') => {
      live++;
      return Object.assign(new HostTensor(dtype, shape), { dispose: () => void live-- });
    };
    expect(() => readCheckpoint(dir, { alloc })).toThrow(/fails its checksum/);
    expect(live).toBe(0);
  });
});
