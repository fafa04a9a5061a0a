// Backwards against centered finite differences of their own forward, in the f32 path: matmul,
// attention (rmsnorm, rope, swiglu, embedding and crossEntropy: test/ops/<op>.test.ts).
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

  for (const [Hq, Hkv, label] of [[4, 2, 'GQA'], [3, 3, 'MHA'], [4, 1, 'MQA']] as const) {
    it(`causal attention backward from the saved lse (${label})`, () => {
      const r = rng(7 + Hq * 10 + Hkv);
      const [B, T, D] = [2, 9, 8];
      const q = randn(B * T * Hq * D, r), k = randn(B * T * Hkv * D, r), v = randn(B * T * Hkv * D, r);
      const G = randn(B * T * Hq * D, r);
      const qs = [B, T, Hq, D], ks = [B, T, Hkv, D];
      const f = () => withScope(() => dot(arr(ops.attention(f32(q, qs), f32(k, ks), f32(v, ks)).out), G));
      const grads = withScope(() => {
        const [qt, kt, vt] = [f32(q, qs), f32(k, ks), f32(v, ks)];
        const { out, lse } = ops.attention(qt, kt, vt);
        const { dq, dk, dv } = ops.attentionBackward(qt, kt, vt, out, f32(G, qs), lse);
        return [arr(dq), arr(dk), arr(dv)];
      });
      gradCheck(`attention ${label}`, [q, k, v], grads, f);
    });
  }

  it('attention on packed documents', () => {
    const r = rng(9);
    const [B, T, H, D] = [1, 10, 2, 4];
    const doc = new Int32Array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2]);
    const q = randn(B * T * H * D, r), k = randn(B * T * H * D, r), v = randn(B * T * H * D, r), G = randn(B * T * H * D, r);
    const s = [B, T, H, D];
    const f = () =>
      withScope(() => dot(arr(ops.attention(f32(q, s), f32(k, s), f32(v, s), { doc: Tensor.fromArray(doc, [B, T]) }).out), G));
    const grads = withScope(() => {
      const d = Tensor.fromArray(doc, [B, T]);
      const [qt, kt, vt] = [f32(q, s), f32(k, s), f32(v, s)];
      const { out, lse } = ops.attention(qt, kt, vt, { doc: d });
      const g = ops.attentionBackward(qt, kt, vt, out, f32(G, s), lse, { doc: d });
      return [arr(g.dq), arr(g.dk), arr(g.dv)];
    });
    gradCheck('attention packed', [q, k, v], grads, f);
  });

});
