import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Tensor, memoryStats } from '../../src/tensor/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage and lets Node run the finalizers it queues, until `done` or a give-up. */
async function collectUntil(done: () => boolean): Promise<boolean> {
  for (let i = 0; i < 20 && !done(); i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
  return done();
}

const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3);

describe('Tensor.bytesView', () => {
  it('shows the same bytes as readBytes, at any offset, in views of views too', () => {
    const t = Tensor.fromArray(ramp(24), [4, 6]);
    for (const [off, len] of [[0, 96], [4, 20], [95, 1], [96, 0], [0, 0], [13, 50]]) {
      expect(Buffer.from(t.bytesView(off, len)), `[${off}, +${len})`).toEqual(Buffer.from(t.readBytes(off, len)));
    }
    const rows = t.rows(1, 2);
    expect(Buffer.from(rows.bytesView(0, 48))).toEqual(Buffer.from(t.readBytes(24, 48)));
    expect(Buffer.from(rows.bytesView(8, 16))).toEqual(Buffer.from(t.readBytes(32, 16)));
    t.dispose();
  });

  it('is a live view of the tensor memory, not a copy', () => {
    const t = Tensor.fromArray(ramp(8), [8]);
    const view = t.bytesView(0, 32);
    const snapshot = t.readBytes(0, 32);
    t.writeBytes(4, new Float32Array([42]));
    expect(new Float32Array(view.buffer, view.byteOffset, 8)[1]).toBe(42);
    expect(new Float32Array(snapshot.buffer, snapshot.byteOffset, 8)[1]).toBe(-2.5);
    t.dispose();
  });

  it('range errors name the op, the range and the tensor, like readBytes', () => {
    const t = Tensor.zeros([2, 3], 'bf16');
    const bad: [number, number, string][] = [
      [-1, 2, '\\[-1, \\+2\\)'],
      [0, 13, '\\[0, \\+13\\)'],
      [12, 1, '\\[12, \\+1\\)'],
      [1.5, 2, '\\[1.5, \\+2\\)'],
      [0, 2.5, '\\[0, \\+2.5\\)'],
      [NaN, 1, '\\[nan, \\+1\\)'],
      [0, Infinity, '\\[0, \\+inf\\)'],
      [2 ** 53, 2 ** 53, '\\[9007199254740992, \\+9007199254740992\\)'],
    ];
    for (const [off, len, range] of bad) {
      const msg = new RegExp(`^bytesView: byte range ${range} is outside bf16\\[2, 3\\] \\(12 bytes\\)$`);
      expect(() => t.bytesView(off, len), `${off}, ${len}`).toThrow(msg);
      expect(() => t.readBytes(off, len), `${off}, ${len}`).toThrow(new RegExp(msg.source.replace('bytesView', 'readBytes')));
    }
    t.dispose();
    expect(() => t.bytesView(0, 4)).toThrow(/^bytesView: tensor bf16\[2, 3\] has been disposed$/);
  });

  it('keeps the memory alive after dispose, until the view itself is collected', async () => {
    // Views made by the tests above may still pin memory; let them go first.
    for (let i = 0; i < 3; i++) await collectUntil(() => false);
    const before = memoryStats();
    let t: Tensor | undefined = Tensor.fromArray(ramp(1000), [1000]);
    let view: Uint8Array | undefined = t.bytesView(400, 400);
    let second: Uint8Array | undefined = t.bytesView(0, 4000); // overlapping views of one storage
    const expected = Buffer.from(t.readBytes(400, 400));
    t.dispose();
    t = undefined;
    expect(() => Tensor.empty([1 << 16], 'f32').dispose()).not.toThrow(); // churn the allocator
    expect(memoryStats().liveBuffers).toBe(before.liveBuffers + 1);
    expect(Buffer.from(view)).toEqual(expected);
    expect(new Float32Array(view.buffer, view.byteOffset, 100)[0]).toBe(ramp(1000)[100]);
    expect(Buffer.from(second.subarray(400, 800))).toEqual(expected);
    view = undefined;
    second = undefined;
    expect(await collectUntil(() => memoryStats().liveBuffers === before.liveBuffers)).toBe(true);
    expect(memoryStats()).toEqual(before);
  });

  it('cannot be transferred to another thread (a transfer list copies instead of moving)', () => {
    const t = Tensor.fromArray(ramp(4), [4]);
    const view = t.bytesView(0, 16);
    const moved = structuredClone(view, { transfer: [view.buffer as ArrayBuffer] });
    expect(view.byteLength).toBe(16);
    expect(Buffer.from(moved)).toEqual(Buffer.from(view));
    moved[0] ^= 0xff;
    expect(moved[0]).not.toBe(view[0]);
    t.dispose();
  });
});
