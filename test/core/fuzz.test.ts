// No argument list from JS may abort the process: every native entry point either works or throws.
import { describe, expect, it } from 'vitest';
import { Tensor, native, withScope } from '../../src/tensor/index.js';
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
