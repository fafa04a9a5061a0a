// The bf16 path of every op against its f32 path, and bad calls against their error messages. Each
// op's double-precision reference, gradients and cross-backend cases: test/ops/<op>.test.ts.
import { describe, expect, it } from 'vitest';
import { Tensor, bf16ToF32, f32ToBf16, memoryStats, ops, withScope } from '../../src/tensor/index.js';
import { ropeTables } from '../../src/model/rope-tables.js';
import { rng, randn, randint } from '../helpers/random.js';

const f32 = (a: Float32Array, shape: number[]) => Tensor.fromArray(a, shape, 'f32');
const bf = (a: Float32Array, shape: number[]) => Tensor.fromArray(f32ToBf16(a), shape, 'bf16');
const asF32 = (t: Tensor) => (t.dtype === 'bf16' ? bf16ToF32(t.toArray() as Uint16Array) : (t.toArray() as Float32Array));
/** Rounds through bf16, so both paths start from identical values. */
const q = (a: Float32Array) => bf16ToF32(f32ToBf16(a));

describe('bf16 path agrees with the f32 path', () => {
  // Inputs are bf16-representable, so the only differences are the bf16 roundings inside the op.
  const r = rng(30);
  const close = (name: string, a: Float32Array, b: Float32Array, rel = 1.6e-2) => {
    let scale = 0;
    for (const v of b) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < a.length; i++) {
      const err = Math.abs(a[i] - b[i]);
      if (err > rel * Math.abs(b[i]) + 4e-3 * scale) {
        throw new Error(`${name}: element ${i}: bf16 path ${a[i]} vs f32 path ${b[i]}`);
      }
    }
  };
  const both = <R extends Tensor | Tensor[]>(mk: (make: typeof f32) => R) => {
    const fromF = withScope(() => [mk(f32)].flat().map(asF32));
    const fromB = withScope(() => [mk(bf)].flat().map(asF32));
    return { fromF, fromB };
  };
  const cases: [string, (make: typeof f32) => Tensor | Tensor[]][] = (() => {
    const [M, K, N] = [33, 70, 17];
    const a = q(randn(M * K, r)), b = q(randn(N * K, r)), g = q(randn(M * N, r));
    const x = q(randn(M * K, r)), w = q(randn(K, r)), dy = q(randn(M * K, r));
    const [B, T, H, Hk, D] = [2, 11, 4, 2, 16];
    const qq = q(randn(B * T * H * D, r)), kk = q(randn(B * T * Hk * D, r)), vv = q(randn(B * T * Hk * D, r));
    const gg = q(randn(B * T * H * D, r));
    return [
      ['matmul x·Wᵀ', (mk) => ops.matmul(mk(a, [M, K]), mk(b, [N, K]), { transB: true })],
      ['matmul dY·W', (mk) => ops.matmul(mk(g, [M, N]), mk(b, [N, K]))],
      ['matmul dYᵀ·X', (mk) => ops.matmul(mk(g, [M, N]), mk(a, [M, K]), { transA: true })],
      ['rmsnorm', (mk) => ops.rmsnorm(mk(x, [M, K]), mk(w, [K]), 1e-6).out],
      ['rmsnorm backward', (mk) => {
        const xt = mk(x, [M, K]), wt = mk(w, [K]);
        const dw = mk(new Float32Array(K), [K]);
        return [ops.rmsnormBackward(xt, wt, ops.rmsnorm(xt, wt, 1e-6).rstd, mk(dy, [M, K]), dw), dw];
      }],
      ['swiglu', (mk) => ops.swiglu(mk(x, [M, K]), mk(dy, [M, K]))],
      ['swiglu backward', (mk) => Object.values(ops.swigluBackward(mk(x, [M, K]), mk(dy, [M, K]), mk(a, [M, K])))],
      ['attention', (mk) => ops.attention(mk(qq, [B, T, H, D]), mk(kk, [B, T, Hk, D]), mk(vv, [B, T, Hk, D])).out],
      ['attention backward', (mk) => {
        const [qt, kt, vt] = [mk(qq, [B, T, H, D]), mk(kk, [B, T, Hk, D]), mk(vv, [B, T, Hk, D])];
        const { out, lse } = ops.attention(qt, kt, vt);
        return Object.values(ops.attentionBackward(qt, kt, vt, out, mk(gg, [B, T, H, D]), lse));
      }],
      ['embedding backward', (mk) => {
        const ids = Tensor.fromArray(new Int32Array([1, 2, 1, 0, 1]), [5]);
        const dw = mk(new Float32Array(3 * K), [3, K]);
        ops.embeddingBackward(ids, mk(x.slice(0, 5 * K), [5, K]), dw);
        return dw;
      }],
      ['cross-entropy gradient', (mk) => {
        const l = mk(a, [M, K]);
        ops.crossEntropy(l, Tensor.fromArray(randint(M, K, rng(3)), [M]), Tensor.zeros([M], 'f32'), { dlogits: l, gradScale: 1 / M });
        return l;
      }],
    ];
  })();
  for (const [name, mk] of cases) {
    it(name, () => {
      const { fromF, fromB } = both(mk);
      fromF.forEach((f, i) => close(name, fromB[i], f));
    });
  }
});

describe('bad calls throw errors naming the op and the shapes', () => {
  it.each([
    ['matmul inner dims', () => ops.matmul(Tensor.zeros([2, 3], 'f32'), Tensor.zeros([4, 5], 'f32')), /matmul: inner dimensions differ: a f32\[2, 3\] and b f32\[4, 5\]/],
    ['mixed dtypes', () => ops.matmul(Tensor.zeros([2, 3], 'f32'), Tensor.zeros([3, 5], 'bf16')), /matmul: .*must share one dtype/],
    ['token id out of range', () => ops.embedding(Tensor.fromArray(new Int32Array([0, 7]), [2]), Tensor.zeros([5, 4], 'f32')), /embedding: token id 7 at position 1 is outside the vocabulary \[0, 5\)/],
    ['negative token id', () => ops.embedding(Tensor.fromArray(new Int32Array([-1]), [1]), Tensor.zeros([5, 4], 'bf16')), /embedding: token id -1/],
    ['token id out of range in backward, table untouched', () => {
      const dw = Tensor.zeros([5, 4], 'f32');
      try {
        ops.embeddingBackward(Tensor.fromArray(new Int32Array([2, 9, 0]), [3]), Tensor.full([3, 4], 'f32', 1), dw);
      } finally {
        expect([...(dw.toArray() as Float32Array)].every((x) => x === 0)).toBe(true);
      }
    }, /embedding_backward: token id 9 at position 1 is outside the vocabulary \[0, 5\)/],
    ['ids dtype', () => ops.embedding(Tensor.zeros([2], 'f32'), Tensor.zeros([5, 4], 'f32')), /embedding: ids f32\[2\] must be i32/],
    ['target out of range', () => ops.crossEntropy(Tensor.zeros([2, 4], 'f32'), Tensor.fromArray(new Int32Array([1, 4]), [2]), Tensor.zeros([2], 'f32')), /cross_entropy: target 4 at row 1 is outside the vocabulary/],
    ['kv heads must divide', () => ops.attention(Tensor.zeros([1, 2, 3, 4], 'f32'), Tensor.zeros([1, 2, 2, 4], 'f32'), Tensor.zeros([1, 2, 2, 4], 'f32')), /attention: kv heads/],
    ['rope position past the table', () => {
      const { cos, sin } = ropeTables(4, 4, 10000);
      ops.rope(Tensor.zeros([1, 1, 4], 'f32'), Tensor.fromArray(new Int32Array([4]), [1]), cos, sin);
    }, /rope: position 4 at row 0 is outside the table \[0, 4\)/],
    ['rmsnorm weight shape', () => ops.rmsnorm(Tensor.zeros([2, 8], 'bf16'), Tensor.zeros([7], 'bf16'), 1e-5), /rmsnorm: weight bf16\[7\] must have shape \[8\]/],
    ['adamw bf16 without master', () => ops.adamw(Tensor.zeros([3], 'bf16'), Tensor.zeros([3], 'bf16'), null, Tensor.zeros([3], 'f32'), Tensor.zeros([3], 'f32'), { lr: 1, step: 1 }), /adamw: a bf16 param bf16\[3\] needs fp32 master weights/],
    ['fromArray size', () => Tensor.fromArray(new Float32Array(5), [2, 3]), /5 values do not fill shape \[2, 3\]/],
    ['bad dtype', () => Tensor.empty([2], 'f16' as never), /unknown dtype 'f16'/],
    ['negative shape', () => Tensor.empty([2, -1], 'f32'), /shape entry 1 is not a non-negative integer/],
  ])('%s', (_name, call, msg) => {
    withScope(() => expect(call).toThrow(msg));
  });

  it('a disposed tensor is refused by every op', () => {
    const t = Tensor.zeros([2, 2], 'f32');
    t.dispose();
    expect(() => ops.add(t, t)).toThrow(/add: argument 'a' \(f32\[2, 2\]\) has been disposed/);
    expect(() => t.toArray()).toThrow(/disposed/);
  });

  it('scopes free what they made, keep what they return', () => {
    const before = memoryStats().liveBuffers;
    const kept = withScope(() => {
      Tensor.zeros([100], 'f32');
      ops.add(Tensor.zeros([10], 'f32'), Tensor.zeros([10], 'f32'));
      return Tensor.zeros([5], 'bf16');
    });
    expect(memoryStats().liveBuffers).toBe(before + 1);
    kept.dispose();
    expect(memoryStats().liveBuffers).toBe(before);
    expect(() => withScope(() => { Tensor.zeros([3], 'f32'); throw new Error('boom'); })).toThrow('boom');
    expect(memoryStats().liveBuffers).toBe(before);
  });
});
