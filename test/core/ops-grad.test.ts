// matmul's backward products against centered finite differences of its forward, in the f32 path
// (every other op's gradients: test/ops/<op>.test.ts).
import { describe, expect, it } from 'vitest';
import { Tensor, ops, withScope } from '../../src/tensor/index.js';
import { rng, randn } from '../helpers/random.js';
import { dot, gradCheck } from '../helpers/gradcheck.js';

const f32 = (a: Float32Array, shape: number[]) => Tensor.fromArray(a, shape, 'f32');
const arr = (t: Tensor) => t.toArray() as Float32Array;

describe('finite-difference gradients (f32)', () => {
  it('matmul: x·Wᵀ, dY·W and dYᵀ·X', () => {
    const r = rng(1);
    const [M, K, N] = [5, 7, 6];
    const x = randn(M * K, r), w = randn(N * K, r), G = randn(M * N, r);
    const f = () => withScope(() => dot(arr(ops.matmul(f32(x, [M, K]), f32(w, [N, K]), { transB: true })), G));
    const { dx, dw } = withScope(() => {
      const dY = f32(G, [M, N]);
      const dx = arr(ops.matmul(dY, f32(w, [N, K])));
      const dw = arr(ops.matmul(dY, f32(x, [M, K]), { transA: true }));
      return { dx, dw };
    });
    gradCheck('matmul', [x, w], [dx, dw], f);
  });

  it('matmul accumulates into out', () => {
    const r = rng(2);
    const a = randn(12, r), b = randn(12, r), c0 = randn(9, r);
    const got = withScope(() => {
      const c = f32(c0.slice(), [3, 3]);
      ops.matmul(f32(a, [3, 4]), f32(b, [4, 3]), { out: c, accumulate: true });
      return arr(c);
    });
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        let s = c0[i * 3 + j];
        for (let k = 0; k < 4; k++) s += a[i * 4 + k] * b[k * 3 + j];
        expect(got[i * 3 + j]).toBeCloseTo(s, 5);
      }
  });

});
