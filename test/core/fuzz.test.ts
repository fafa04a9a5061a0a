// No argument list from JS may abort the process: every native entry point either works or throws.
import { describe, expect, it } from 'vitest';
import { Tensor, native, ops, withScope } from '../../src/tensor/index.js';
import { rng } from '../helpers/random.js';

describe('native entry points under arbitrary arguments', () => {
  it('throw JS errors (or succeed) for thousands of random argument lists', () => {
    const addon = native() as unknown as Record<string, unknown>;
    const fns = Object.entries(addon).filter(([k, v]) => typeof v === 'function' && k !== 'NativeTensor') as [string, (...a: unknown[]) => unknown][];
    expect(fns.length).toBeGreaterThan(15);
    const r = rng(99);
    let threw = 0;
    let ran = 0;
    withScope(() => {
      const disposed = Tensor.zeros([2], 'f32');
      disposed.dispose();
      const pool = [
        () => Tensor.zeros([2, 3], 'f32').handle,
        () => Tensor.zeros([3, 2], 'bf16').handle,
        () => Tensor.zeros([0, 4], 'f32').handle,
        () => Tensor.zeros([1, 2, 2, 2], 'f32').handle,
        () => Tensor.fromArray(new Int32Array([0, 1, 5, -3]), [4]).handle,
        () => Tensor.zeros([4], 'i32').handle,
        () => disposed.handle,
        () => Math.floor(r() * 10) - 3,
        () => NaN,
        () => 1e300,
        () => true,
        () => 'bf16',
        () => null,
        () => undefined,
        () => ({ lr: 1, step: 1 }),
        () => [2, 3],
        () => new Float32Array(3),
      ];
      for (let i = 0; i < 4000; i++) {
        const [, fn] = fns[Math.floor(r() * fns.length)];
        const args = Array.from({ length: Math.floor(r() * 12) }, () => pool[Math.floor(r() * pool.length)]());
        try {
          fn(...args);
          ran++;
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          threw++;
        }
      }
    });
    expect(threw).toBeGreaterThan(1000);
    expect(ran + threw).toBe(4000);
  });

  it('empty tensors pass through the ops', () => {
    withScope(() => {
      const a = Tensor.zeros([0, 4], 'f32');
      const w = Tensor.zeros([3, 4], 'f32');
      const out = Tensor.empty([0, 3], 'f32');
      native().matmul(a.handle, w.handle, out.handle, false, true, false);
      const z = Tensor.full([2, 3], 'f32', 7);
      native().matmul(Tensor.zeros([2, 0], 'f32').handle, Tensor.zeros([0, 3], 'f32').handle, z.handle, false, false, false);
      expect(Array.from(z.toArray())).toEqual([0, 0, 0, 0, 0, 0]);
    });
  });
});

describe('hostile calls', () => {
  it('views with offsets that would wrap an integer are refused', () => {
    withScope(() => {
      const t = Tensor.zeros([4], 'bf16');
      for (const off of [Infinity, 2 ** 63, 2 ** 64, 2 ** 63 + 2048, 1.5, -1, NaN]) {
        expect(() => t.handle.view([4], off), String(off)).toThrow(/view: (offset must be|.*does not fit)/);
      }
    });
  });

  it('a tensor disposed by JS in the middle of an op stays alive until the op is done', () => {
    withScope(() => {
      const [p, g, master, m, v] = [Tensor.zeros([8], 'bf16'), Tensor.full([8], 'bf16', 1), Tensor.zeros([8], 'f32'), Tensor.zeros([8], 'f32'), Tensor.zeros([8], 'f32')];
      const opts = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, step: 1, gradScale: 1, get lr() { m.dispose(); return 0.1; } };
      native().adamw(p.handle, g.handle, master.handle, m.handle, v.handle, opts);
      expect(m.disposed).toBe(true);
      expect(Array.from(master.toArray() as Float32Array).every((x) => Math.abs(x + 0.1) < 1e-6)).toBe(true);
    });
  });

  it('outputs that overlap inputs are refused where the kernel cannot take them', () => {
    withScope(() => {
      const q = Tensor.zeros([1, 4, 2, 8], 'f32');
      const k = Tensor.zeros([1, 4, 2, 8], 'f32');
      const lse = Tensor.empty([1, 2, 4], 'f32');
      expect(() => native().attention(q.handle, k.handle, k.handle, null, k.handle, lse.handle, 1, 0)).toThrow(/attention: out f32\[1, 4, 2, 8\] overlaps the memory of k/);
      const x = Tensor.zeros([4, 4], 'f32');
      // A shifted view of the same buffer: rows would race.
      const big = Tensor.zeros([5, 4], 'f32');
      expect(() => ops.add(big.rows(0, 4), x, big.rows(1, 4))).toThrow(/add: out f32\[4, 4\] overlaps the memory of a/);
      // The very same tensor is fine where the kernel is written for it.
      ops.add(x, x, x);
      expect(() => ops.matmul(x, x, { out: x })).toThrow(/matmul: out .* overlaps the memory of a/);
    });
  });

  it('i32 fill and AdamW step must be integers', () => {
    withScope(() => {
      expect(() => ops.fill(Tensor.empty([2], 'i32'), 1.5)).toThrow(/fill: value 1.5.* is not an int32/);
      expect(() => ops.fill(Tensor.empty([2], 'i32'), NaN)).toThrow(/not an int32/);
      const t = () => Tensor.zeros([2], 'f32');
      expect(() => ops.adamw(t(), t(), null, t(), t(), { lr: 1, step: 1.5 })).toThrow(/option 'step' must be an integer >= 1/);
    });
  });

  it('a zero dimension does not hide a huge one', () => {
    expect(() => Tensor.empty([0, 9e15], 'bf16')).toThrow(/too large/);
  });
});
