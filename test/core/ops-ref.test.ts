// Ops against independent double-precision references written here, the bf16 path against the f32
// path, and bad calls against their error messages.
import { describe, expect, it } from 'vitest';
import { Tensor, bf16ToF32, f32ToBf16, memoryStats, ops, withScope } from '../../src/tensor/index.js';
import { ropeTables } from '../../src/model/rope-tables.js';
import { rng, randn, randint } from '../helpers/random.js';

const f32 = (a: Float32Array, shape: number[]) => Tensor.fromArray(a, shape, 'f32');
const bf = (a: Float32Array, shape: number[]) => Tensor.fromArray(f32ToBf16(a), shape, 'bf16');
const asF32 = (t: Tensor) => (t.dtype === 'bf16' ? bf16ToF32(t.toArray() as Uint16Array) : (t.toArray() as Float32Array));
/** Rounds through bf16, so both paths start from identical values. */
const q = (a: Float32Array) => bf16ToF32(f32ToBf16(a));

describe('against double-precision references', () => {
  it('cross-entropy loss is -log softmax at the target', () => {
    const r = rng(20);
    const [N, V] = [5, 5000];
    const x = randn(N * V, r, 6);
    const t = randint(N, V, r);
    t[2] = -100;
    const want = new Float64Array(N);
    for (let n = 0; n < N; n++) {
      if (t[n] === -100) continue;
      let mx = -Infinity;
      for (let c = 0; c < V; c++) mx = Math.max(mx, x[n * V + c]);
      let s = 0;
      for (let c = 0; c < V; c++) s += Math.exp(x[n * V + c] - mx);
      want[n] = mx + Math.log(s) - x[n * V + t[n]];
    }
    // Per-row losses, 0 for the ignored row (written, not left: the buffer starts at -1).
    const got = withScope(() => {
      const losses = Tensor.full([N], 'f32', -1);
      ops.crossEntropy(f32(x, [N, V]), Tensor.fromArray(t, [N]), losses);
      return Array.from(losses.toArray() as Float32Array);
    });
    expect(got[2]).toBe(0);
    got.forEach((g, n) => expect(Math.abs(g - want[n])).toBeLessThan(1e-6 * Math.max(1, want[n])));
  });

  it('AdamW follows torch.optim.AdamW over several steps, with clipping scale and bf16 weights', () => {
    const r = rng(21);
    const n = 257;
    const w0 = randn(n, r);
    const o = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
    // Reference in double.
    const w = Float64Array.from(w0), m = new Float64Array(n), v = new Float64Array(n);
    const master = f32(w0, [n]);
    const param = bf(w0, [n]);
    const mt = Tensor.zeros([n], 'f32'), vt = Tensor.zeros([n], 'f32');
    for (let step = 1; step <= 5; step++) {
      const g = q(randn(n, r));
      const scale = step === 3 ? 0.5 : 1;
      for (let i = 0; i < n; i++) {
        const gi = g[i] * scale;
        m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
        v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
        const mh = m[i] / (1 - o.beta1 ** step), vh = v[i] / (1 - o.beta2 ** step);
        w[i] = w[i] * (1 - o.lr * o.weightDecay) - (o.lr * mh) / (Math.sqrt(vh) + o.eps);
      }
      const gt = bf(g, [n]);
      ops.adamw(param, gt, master, mt, vt, { ...o, step, gradScale: scale });
      gt.dispose();
    }
    const gotMaster = master.toArray() as Float32Array;
    const gotParam = asF32(param);
    for (let i = 0; i < n; i++) {
      expect(Math.abs(gotMaster[i] - w[i])).toBeLessThan(1e-5);
      // The bf16 working weights are the fp32 master rounded once.
      expect(gotParam[i]).toBe(q(new Float32Array([gotMaster[i]]))[0]);
    }
    for (const t of [master, param, mt, vt]) t.dispose();
  });

  it('sumSquares and the bf16 rounding of cast match JS', () => {
    const r = rng(22);
    const x = randn(1001, r, 3);
    withScope(() => {
      const t = f32(x, [1001]);
      let ss = 0;
      for (const v of x) ss += v * v;
      expect(ops.sumSquares(t)).toBeCloseTo(ss, 9);
      const b = ops.cast(t, 'bf16');
      expect(Array.from(b.toArray())).toEqual(Array.from(f32ToBf16(x)));
    });
  });

  it('rope rotates pairs (i, i + D/2) as Hugging Face rotate_half does', () => {
    const [N, H, D] = [3, 2, 6];
    const x = randn(N * H * D, rng(23));
    const pos = new Int32Array([0, 4, 9]);
    const { cos, sin } = ropeTables(16, D, 500);
    const got = withScope(() => asF32(ops.rope(f32(x, [N, H, D]), Tensor.fromArray(pos, [N]), cos, sin)));
    for (let n = 0; n < N; n++)
      for (let h = 0; h < H; h++)
        for (let i = 0; i < D / 2; i++) {
          const a = pos[n] * Math.pow(500, (-2 * i) / D);
          const base = (n * H + h) * D;
          const [x1, x2] = [x[base + i], x[base + i + D / 2]];
          expect(got[base + i]).toBeCloseTo(x1 * Math.cos(a) - x2 * Math.sin(a), 5);
          expect(got[base + i + D / 2]).toBeCloseTo(x2 * Math.cos(a) + x1 * Math.sin(a), 5);
        }
    cos.dispose();
    sin.dispose();
  });

  it('attention with a KV cache: the last query of a long prefix equals full attention', () => {
    const r = rng(24);
    const [B, T, Hq, Hkv, D] = [1, 12, 4, 2, 8];
    const qa = randn(B * T * Hq * D, r), k = randn(B * T * Hkv * D, r), v = randn(B * T * Hkv * D, r);
    withScope(() => {
      const full = asF32(ops.attention(f32(qa, [B, T, Hq, D]), f32(k, [B, T, Hkv, D]), f32(v, [B, T, Hkv, D])).out);
      const last = qa.slice((T - 3) * Hq * D);
      const part = asF32(ops.attention(f32(last, [B, 3, Hq, D]), f32(k, [B, T, Hkv, D]), f32(v, [B, T, Hkv, D])).out);
      const tail = full.slice((T - 3) * Hq * D);
      for (let i = 0; i < tail.length; i++) expect(part[i]).toBeCloseTo(tail[i], 5);
    });
  });

  it('attention on a row of many short packed documents: each document as if alone, forward and backward', () => {
    // T is no multiple of the kernel's 64- and 128-position blocks, and documents of 1 to 45
    // positions start and end anywhere inside them.
    const r = rng(25);
    const [T, Hq, Hkv, D] = [333, 4, 2, 8];
    const doc = new Int32Array(T), starts: number[] = [];
    for (let at = 0, id = 0; at < T; id++) {
      const n = Math.min(T - at, 1 + Math.floor(r() * 45));
      starts.push(at);
      doc.fill(id, at, at + n);
      at += n;
    }
    starts.push(T);
    const qa = randn(T * Hq * D, r), k = randn(T * Hkv * D, r), v = randn(T * Hkv * D, r), g = randn(T * Hq * D, r);
    const run = (n: number, s: number, docIds: Int32Array | null) => {
      const [qs, ks] = [[1, n, Hq, D], [1, n, Hkv, D]];
      const [qt, kt, vt] = [f32(qa.slice(s * Hq * D, (s + n) * Hq * D), qs), f32(k.slice(s * Hkv * D, (s + n) * Hkv * D), ks), f32(v.slice(s * Hkv * D, (s + n) * Hkv * D), ks)];
      const opt = docIds ? { doc: Tensor.fromArray(docIds, [1, n]) } : {};
      const { out, lse } = ops.attention(qt, kt, vt, opt);
      const gr = ops.attentionBackward(qt, kt, vt, out, f32(g.slice(s * Hq * D, (s + n) * Hq * D), qs), lse, opt);
      return [asF32(out), asF32(gr.dq), asF32(gr.dk), asF32(gr.dv)];
    };
    withScope(() => {
      const packed = run(T, 0, doc);
      for (let d = 0; d + 1 < starts.length; d++) {
        const [s, n] = [starts[d], starts[d + 1] - starts[d]];
        const alone = run(n, s, null);
        alone.forEach((a, t) => {
          const w = t === 0 || t === 1 ? Hq * D : Hkv * D;  // out and dq per query head, dk and dv per kv head
          for (let i = 0; i < a.length; i++) expect(packed[t][s * w + i]).toBeCloseTo(a[i], 5);
        });
      }
    });
  });
});

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
        ops.crossEntropy(l, Tensor.fromArray(randint(M, K, rng(3)), [M]), Tensor.empty([M], 'f32'), { dlogits: l, gradScale: 1 / M });
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
    ['ids dtype', () => ops.embedding(Tensor.zeros([2], 'f32'), Tensor.zeros([5, 4], 'f32')), /embedding: ids f32\[2\] must be i32/],
    ['target out of range', () => ops.crossEntropy(Tensor.zeros([2, 4], 'f32'), Tensor.fromArray(new Int32Array([1, 4]), [2]), Tensor.empty([2], 'f32')), /cross_entropy: target 4 at row 1 is outside the vocabulary/],
    ['losses shape', () => ops.crossEntropy(Tensor.zeros([2, 4], 'f32'), Tensor.fromArray(new Int32Array([1, 3]), [2]), Tensor.empty([3], 'f32')), /crossEntropy: .*losses/],
    ['losses dtype', () => ops.crossEntropy(Tensor.zeros([2, 4], 'f32'), Tensor.fromArray(new Int32Array([1, 3]), [2]), Tensor.empty([2], 'bf16')), /crossEntropy: .*losses/],
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

describe('edge values', () => {
  it('cross-entropy ignores whole vocabulary chunks of -inf logits (masked vocabulary)', () => {
    const V = 9000;
    const x = new Float32Array(V).fill(-Infinity);
    x[8000] = 1;
    x[8001] = 0.5;
    x[8999] = -1;
    const want = Math.log(Math.exp(1) + Math.exp(0.5) + Math.exp(-1)) - 1;
    const got = withScope(() => {
      const losses = Tensor.empty([1], 'f32');
      ops.crossEntropy(Tensor.fromArray(x, [1, V]), Tensor.fromArray(new Int32Array([8000]), [1]), losses);
      return (losses.toArray() as Float32Array)[0];
    });
    expect(got).toBeCloseTo(want, 6);
  });
});
