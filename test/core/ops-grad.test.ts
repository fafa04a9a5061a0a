// Every op's backward against centered finite differences of its own forward, in the f32 path.
import { describe, expect, it } from 'vitest';
import { Tensor, ops, withScope } from '../../src/tensor/index.js';
import { rng, randn } from '../helpers/random.js';
import { dot, gradCheck } from '../helpers/gradcheck.js';
import { ropeTables } from '../../src/model/rope-tables.js';

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

  it('embedding: backward scatter-adds repeated ids', () => {
    const r = rng(3);
    const [V, C, N] = [11, 5, 9];
    const w = randn(V * C, r), G = randn(N * C, r);
    const ids = new Int32Array([3, 1, 3, 10, 0, 3, 1, 7, 7]);
    const f = () => withScope(() => dot(arr(ops.embedding(Tensor.fromArray(ids, [N]), f32(w, [V, C]))), G));
    const dw = withScope(() => {
      const d = Tensor.zeros([V, C], 'f32');
      ops.embeddingBackward(Tensor.fromArray(ids, [N]), f32(G, [N, C]), d);
      return arr(d);
    });
    // Only looked-up rows have a gradient; check those exactly and the rest are zero.
    const used = new Set(ids);
    for (let v = 0; v < V; v++) if (!used.has(v)) for (let c = 0; c < C; c++) expect(dw[v * C + c]).toBe(0);
    gradCheck('embedding', [w], [dw], f, { coords: 0 });
  });

  it('rmsnorm', () => {
    const r = rng(4);
    const [N, C] = [4, 16];
    const x = randn(N * C, r), w = randn(C, r), G = randn(N * C, r);
    const f = () => withScope(() => dot(arr(ops.rmsnorm(f32(x, [N, C]), f32(w, [C]), 1e-5).out), G));
    const [dx, dw] = withScope(() => {
      const { rstd } = ops.rmsnorm(f32(x, [N, C]), f32(w, [C]), 1e-5);
      const dw = Tensor.zeros([C], 'f32');
      const dx = ops.rmsnormBackward(f32(x, [N, C]), f32(w, [C]), rstd, f32(G, [N, C]), dw);
      return [arr(dx), arr(dw)];
    });
    gradCheck('rmsnorm', [x, w], [dx, dw], f);
  });

  it('rope: the inverse rotation is the backward', () => {
    const r = rng(5);
    const [N, H, D] = [6, 3, 8];
    const { cos, sin } = ropeTables(32, D, 10000);
    const x = randn(N * H * D, r), G = randn(N * H * D, r);
    const pos = new Int32Array([0, 1, 2, 5, 17, 31]);
    const run = (src: Float32Array, inverse: boolean) =>
      withScope(() => arr(ops.rope(f32(src, [N, H, D]), Tensor.fromArray(pos, [N]), cos, sin, { inverse })));
    const dx = run(G, true);
    gradCheck('rope', [x], [dx], () => dot(run(x, false), G));
    cos.dispose();
    sin.dispose();
  });

  it('swiglu', () => {
    const r = rng(6);
    const n = 40;
    const g = randn(n, r, 3), u = randn(n, r), G = randn(n, r);
    const f = () => withScope(() => dot(arr(ops.swiglu(f32(g, [n]), f32(u, [n]))), G));
    const [dg, du] = withScope(() => {
      const { dgate, dup } = ops.swigluBackward(f32(g, [n]), f32(u, [n]), f32(G, [n]));
      return [arr(dgate), arr(dup)];
    });
    gradCheck('swiglu', [g, u], [dg, du], f);
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

  it('cross-entropy with ignored rows', () => {
    const r = rng(10);
    // V spans more than one vocabulary chunk; few rows keep the float32 loss precise enough for
    // differences of single logits.
    const [N, V] = [3, 4500];
    const x = randn(N * V, r, 4);
    const t = new Int32Array([4321, -100, 7]);
    const scale = 1 / 4;
    // The row losses summed in double, as the model sums them.
    const lossOf = (losses: Tensor) => (losses.toArray() as Float32Array).reduce((a, b) => a + b, 0);
    const f = () => withScope(() => {
      const losses = Tensor.empty([N], 'f32');
      ops.crossEntropy(f32(x, [N, V]), Tensor.fromArray(t, [N]), losses);
      return lossOf(losses) * scale;
    });
    const { dx, rowLoss } = withScope(() => {
      const logits = f32(x.slice(), [N, V]);
      const losses = Tensor.full([N], 'f32', -1);
      ops.crossEntropy(logits, Tensor.fromArray(t, [N]), losses, { dlogits: logits, gradScale: scale });
      return { dx: arr(logits), rowLoss: Array.from(losses.toArray() as Float32Array) };
    });
    expect(rowLoss[1]).toBe(0);
    expect(rowLoss[0]).toBeGreaterThan(0);
    for (const row of [1]) for (let c = 0; c < V; c++) expect(dx[row * V + c]).toBe(0);
    gradCheck('cross-entropy', [x], [dx], f, { h: 5e-2, coords: 20 });
  });
});
