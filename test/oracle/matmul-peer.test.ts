import { describe, expect, it } from 'vitest';
import { createOrtMatmul, ortMatmulPeer } from '../../bench/onnx/matmul-peer.js';
import { mulberry32, randomArray } from './mulberry32.js';

// Independent reference: the textbook triple loop with a double accumulator.
function naiveMatmul(a: Float32Array, b: Float32Array, M: number, N: number, K: number, transB: boolean): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * (transB ? b[j * K + k] : b[k * N + j]);
      c[i * N + j] = s;
    }
  }
  return c;
}

const maxAbsDiff = (x: ArrayLike<number>, y: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
};

describe('ORT MatMul peer', () => {
  // Odd, non-square shapes catch a swapped M/N/K or a transposed layout.
  for (const transB of [false, true]) {
    it(`computes A·B${transB ? 'ᵀ (Gemm transB)' : ''} for [7,13]x[13,5] and [33,70]x[70,19]`, async () => {
      const rand = mulberry32(transB ? 11 : 7);
      for (const [M, N, K] of [[7, 5, 13], [33, 19, 70]]) {
        const mm = await createOrtMatmul(M, N, K, { transB });
        const a = randomArray(rand, M * K);
        const b = randomArray(rand, K * N);
        const c = await mm.run(a, b);
        await mm.release();
        expect(c.length).toBe(M * N);
        expect(maxAbsDiff(c, naiveMatmul(a, b, M, N, K, transB))).toBeLessThan(1e-5 * K);
      }
    });
  }

  it('rejects inputs of the wrong size, naming the shape', async () => {
    const mm = await createOrtMatmul(2, 3, 4);
    await expect(mm.run(new Float32Array(8), new Float32Array(11))).rejects.toThrow(/B has 11 values, expected \[4, 3\]/);
    await mm.release();
    await expect(createOrtMatmul(0, 3, 4)).rejects.toThrow(/M must be a positive integer/);
  });

  it('reports GFLOP/s consistent with its median time', async () => {
    const r = await ortMatmulPeer(64, 256, 256, { minMs: 50, iters: 5 });
    expect(r.iters).toBeGreaterThanOrEqual(5);
    expect(r.msPerIter).toBeGreaterThan(0);
    expect(r.gflops).toBeCloseTo((2 * 64 * 256 * 256) / (r.msPerIter * 1e6), 6);
    expect(r.msBest).toBeLessThanOrEqual(r.msPerIter);
    expect(r.gflopsBest).toBeCloseTo((2 * 64 * 256 * 256) / (r.msBest * 1e6), 6);
  });
});
