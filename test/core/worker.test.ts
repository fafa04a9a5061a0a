// The addon in a worker thread must not break it for the main thread (per-environment state).
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Tensor, native, ops, withScope } from '../../src/tensor/index.js';

describe('worker threads', () => {
  it('loading the addon in a worker leaves the main thread working', async () => {
    native();
    const { join } = await import('node:path');
    const addon = join(import.meta.dirname, '..', '..', 'build', 'Release', 'polytune_native.node');
    const w = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const n = require(${JSON.stringify(addon)});
       const t = new n.NativeTensor([3], 'f32'); n.fill(t, 2);
       parentPort.postMessage(Array.from(new Float32Array(t.readBytes().buffer.slice(0))));`,
      { eval: true },
    );
    const fromWorker = await new Promise((resolve, reject) => {
      w.on('message', resolve);
      w.on('error', reject);
    });
    expect(fromWorker).toEqual([2, 2, 2]);
    await w.terminate();
    withScope(() => {
      const t = Tensor.full([3], 'f32', 1);
      ops.add(t, t, t);
      expect(Array.from(t.toArray())).toEqual([2, 2, 2]);
      expect(Array.from(t.reshape([3]).toArray())).toEqual([2, 2, 2]);
    });
  });
});
