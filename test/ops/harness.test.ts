// The harness itself: poison makes an unwritten output fail, compare tells tolerances apart, and the
// backends list never presents a missing device as one that runs.
import { describe, expect, it } from 'vitest';
import { Tensor, native, withScope } from '../../src/tensor/index.js';
import { backends, compare, devices, host, maxBf16Ulp, nmse, out } from './harness.js';

describe('op harness', () => {
  it('poisons every dtype with NaN (i32: INT32_MAX), so an unwritten output cannot match', () => {
    withScope(() => {
      expect(host(out([3], 'f32', 'cpu')).every(Number.isNaN)).toBe(true);
      expect(host(out([3], 'bf16', 'cpu')).every(Number.isNaN)).toBe(true);
      expect(Array.from(out([2], 'i32', 'cpu').toArray())).toEqual([0x7fffffff, 0x7fffffff]);
      const partly = out([4], 'f32', 'cpu');
      partly.writeBytes(0, new Float32Array([1, 2, 3]));
      expect(() => compare('partial', host(partly), [1, 2, 3, 4], { nmse: 1 })).toThrow(/partial: NMSE Infinity > 1/);
      expect(() => compare('partial', host(partly), [1, 2, 3, 4], { ulp: 1e9 })).toThrow(/partial: Infinity bf16 ulps/);
    });
  });

  it('measures NMSE and bf16 ulps', () => {
    expect(nmse([1, 2], [1, 2])).toBe(0);
    expect(nmse([1.1, 2], [1, 2])).toBeCloseTo(0.01 / 5, 12);
    expect(maxBf16Ulp([1, -2], [1, -2])).toBe(0);
    expect(maxBf16Ulp([1 + 2 ** -7], [1])).toBe(1);
    expect(maxBf16Ulp([-(1 + 2 ** -7)], [-1])).toBe(1);
    expect(maxBf16Ulp([2 ** -130], [-(2 ** -130)])).toBeGreaterThan(0);
    expect(() => compare('x', [1.5], [1], { nmse: 0.1 })).toThrow(/x: NMSE 2\.50e-1 > 0\.1/);
  });

  it('lists the cpu first and reports devices that cannot run as skipped, with the reason', () => {
    expect(devices()[0]).toBe('cpu');
    const b = backends();
    expect(b.length).toBeGreaterThan(0);
    if (native().devices().length === 1) expect(b).toEqual([{ name: `cuda: ${native().buildInfo().cuda ? 'no device' : 'not built'}`, device: 'cuda:0', skip: expect.any(String) }]);
    else for (const x of b) expect(x.skip).toBe(false);
    expect(Tensor.empty([1], 'f32').device).toBe('cpu');
  });
});
