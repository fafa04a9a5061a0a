import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { Tensor, memoryStats } from '../../src/tensor/index.js';
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

  it('saves through zero-copy views (one per tensor), checksums the real bytes, and loads without views', () => {
    const cfg = { ...tinyConfig(), vocab_size: 3000 }; // an embedding over 64 KiB: written straight from tensor memory
    const params = new Map([...randomParams(cfg, 31)].map(([n, h]) => {
      const t = Tensor.empty(h.shape, h.dtype);
      t.writeBytes(0, h.bytes);
      return [n, t];
    }));
    const calls = { readBytes: 0, bytesView: 0, writeBytes: 0 };
    const spy = (t: Tensor) => {
      for (const k of ['readBytes', 'bytesView', 'writeBytes'] as const) {
        const f = t[k].bind(t) as (...a: never[]) => never;
        (t as unknown as Record<string, unknown>)[k] = (...a: never[]) => (calls[k]++, f(...a));
      }
      return t;
    };
    for (const t of params.values()) spy(t);
    for (const [chunkBytes, tag] of [[undefined, 'default'], [4096, '4k'], [100_003, 'odd']] as const) {
      const dir = join(tmp.dir, `views-${tag}`);
      mkdirSync(dir);
      calls.readBytes = calls.bytesView = calls.writeBytes = 0;
      writeCheckpoint(dir, { params }, { config: cfg, chunkBytes });
      expect(calls.readBytes, tag).toBe(0);
      expect(calls.bytesView, tag).toBe(params.size); // one whole-tensor view each, however many chunks
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
      for (const [n, t] of params) expect(manifest.files['model.safetensors'].crc32[n], n).toBe(crc32(t.readBytes(0, t.nbytes)));
      // Loading takes no views, so disposing what it loaded frees the memory at once.
      const live = memoryStats();
      const back = readCheckpoint(dir, { alloc: (shape, dtype) => spy(Tensor.empty(shape, dtype)), chunkBytes });
      expect(calls.bytesView, tag).toBe(params.size);
      for (const [n, t] of params) expect(Buffer.from(back.params.get(n)!.readBytes(0, t.nbytes)), n).toEqual(Buffer.from(t.readBytes(0, t.nbytes)));
      for (const t of back.params.values()) t.dispose();
      expect(memoryStats(), tag).toEqual(live);
      // A corrupt byte is still caught: verification reads the tensor memory the file went into.
      const file = join(dir, 'model.safetensors');
      const bytes = readFileSync(file);
      bytes[bytes.length - 3] ^= 1;
      writeFileSync(file, bytes);
      expect(() => readCheckpoint(dir, { alloc: Tensor.empty, chunkBytes }), tag).toThrow(/fails its checksum/);
    }
    for (const t of params.values()) t.dispose();
  });
});
