import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { Tensor } from '../../src/tensor/index.js';
import { randomOptimizer, randomParams, projectRoot, tempDir, tinyConfig } from './fixtures.js';

const addon = join(projectRoot, 'build/Release/polytune_native.node');
const tmp = tempDir('native');
afterAll(tmp.cleanup);

describe.skipIf(!existsSync(addon))('checkpoints of native tensors (skipped: native addon not built)', () => {
  it('saves Tensors and loads them back into Tensors bit for bit, optimizer state included', () => {
    const cfg = tinyConfig();
    const toNative = (m: Map<string, { dtype: 'bf16' | 'f32' | 'i32'; shape: readonly number[]; bytes: Uint8Array }>) =>
      new Map([...m].map(([n, h]) => {
        const t = Tensor.empty(h.shape, h.dtype);
        t.writeBytes(0, h.bytes);
        return [n, t];
      }));
    const hostParams = randomParams(cfg, 21);
    const hostOpt = randomOptimizer(cfg, 22);
    const params = toNative(hostParams);
    const optimizer = toNative(hostOpt);
    const dir = join(tmp.dir, 'ck');
    mkdirSync(dir);
    const state = { step: 3, epoch: 0, dataPosition: 96, schedule: null, rng: [1, 2], runConfig: {} };
    // Small chunks, so tensors cross several reads and writes.
    writeCheckpoint(dir, { params, optimizer, state }, { config: cfg, maxShardBytes: 5000, chunkBytes: 64 });
    const back = readCheckpoint(dir, { alloc: Tensor.empty, chunkBytes: 64 });
    for (const [n, h] of hostParams) {
      const t = back.params.get(n)!;
      expect(t).toBeInstanceOf(Tensor);
      expect(t.dtype).toBe('bf16');
      expect(new Uint8Array((t.toArray() as Uint16Array).buffer)).toEqual(h.bytes);
    }
    for (const [n, h] of hostOpt) expect(new Uint8Array((back.optimizer!.get(n)!.toArray() as Float32Array).buffer), n).toEqual(h.bytes);
    expect(back.state).toEqual(state);
    for (const m of [params, optimizer, back.params, back.optimizer!]) for (const t of m.values()) t.dispose();
  });
});
