// matmul: out (+)= op(a)·op(b) with the three products of a linear layer (x·Wᵀ, dY·W, dYᵀ·X), fp32
// accumulation, out rounded once; accumulate adds into out (weight gradients across micro-batches).
import { describe, it } from 'vitest';
import { native, withScope, type DType, type Device } from '../../src/tensor/index.js';
import { randn, rng } from '../helpers/random.js';
import { backends, caseLabel, compare, host, out, put, q, type Tolerance } from './harness.js';

interface Case {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
  dtype: DType;
  tol: Tolerance;
}
const F32: Tolerance = { nmse: 1e-11 }, BF16: Tolerance = { nmse: 2e-5 };
// One row (the small-M path), sizes that are no multiple of the 16/32/64 tiles, and all three layouts.
const cases: Case[] = [
  { M: 1, N: 70, K: 96, transA: false, transB: true, accumulate: false, dtype: 'f32', tol: F32 },
  { M: 40, N: 70, K: 96, transA: false, transB: true, accumulate: false, dtype: 'f32', tol: F32 },
  { M: 33, N: 17, K: 70, transA: false, transB: false, accumulate: false, dtype: 'f32', tol: F32 },
  { M: 17, N: 70, K: 33, transA: true, transB: false, accumulate: true, dtype: 'f32', tol: F32 },
  { M: 3, N: 129, K: 257, transA: false, transB: true, accumulate: false, dtype: 'bf16', tol: BF16 },
  { M: 65, N: 130, K: 200, transA: false, transB: true, accumulate: false, dtype: 'bf16', tol: BF16 },
  { M: 70, N: 33, K: 65, transA: true, transB: false, accumulate: true, dtype: 'bf16', tol: BF16 },
];

function inputs(c: Case) {
  const r = rng(c.M * 7 + c.N * 3 + c.K);
  return { a: q(randn(c.M * c.K, r)), b: q(randn(c.K * c.N, r)), c0: q(randn(c.M * c.N, r)) };
}

function run(c: Case, device: Device): Float32Array {
  const { a, b, c0 } = inputs(c);
  return withScope(() => {
    const at = put(a, c.transA ? [c.K, c.M] : [c.M, c.K], c.dtype, device), bt = put(b, c.transB ? [c.N, c.K] : [c.K, c.N], c.dtype, device);
    const o = c.accumulate ? put(c0, [c.M, c.N], c.dtype, device) : out([c.M, c.N], c.dtype, device);
    native().matmul(at.handle, bt.handle, o.handle, c.transA, c.transB, c.accumulate);
    return host(o);
  });
}

function reference(c: Case): Float64Array {
  const { a, b, c0 } = inputs(c);
  const A = (i: number, k: number) => (c.transA ? a[k * c.M + i] : a[i * c.K + k]);
  const B = (k: number, j: number) => (c.transB ? b[j * c.K + k] : b[k * c.N + j]);
  const y = new Float64Array(c.M * c.N);
  for (let i = 0; i < c.M; i++)
    for (let j = 0; j < c.N; j++) {
      let s = c.accumulate ? c0[i * c.N + j] : 0;
      for (let k = 0; k < c.K; k++) s += A(i, k) * B(k, j);
      y[i * c.N + j] = s;
    }
  return y;
}

const name = (c: Case) => `matmul${c.transA ? 'ᵀ' : ''}${c.transB ? '·ᵀ' : ''}${c.accumulate ? ' +=' : ''}`;

describe('matmul', () => {
  describe('reference', () => {
    it.each(cases)('$dtype M $M N $N K $K transA $transA transB $transB accumulate $accumulate against double precision', (c) => {
      compare(caseLabel(name(c), c.dtype, [c.M, c.N, c.K], 'cpu'), run(c, 'cpu'), reference(c), c.tol);
    });
  });

  // gradients: matmul is its own backward (dY·W and dYᵀ·X are the cases above); finite differences
  // of x·Wᵀ are in test/core/ops-grad.test.ts beside the GEMM's own tests.

  describe.each(backends())('backends: $name', ({ device, skip }) => {
    it.skipIf(!!skip).each(cases)('$dtype M $M N $N K $K transA $transA transB $transB accumulate $accumulate against the cpu', (c) => {
      compare(caseLabel(name(c), c.dtype, [c.M, c.N, c.K], device), run(c, device), run(c, 'cpu'), c.tol);
    });
  });
});
