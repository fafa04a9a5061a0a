// The bf16 attention, forward and backward (vdpbf16ps where the CPU has AVX512-BF16, fp32 tiles
// elsewhere), against double-precision references computed here from the same bf16-representable
// inputs, on shapes that reach every edge of the kernel: key and query blocks cut anywhere, odd head
// widths, query-head groups that split into several chunks, fewer queries than keys, packed documents.
//
// Tolerance: the output is rounded once to bf16 (relative 2^-9), and the probabilities are rounded to
// bf16 before P·V (FlashAttention does the same), which moves an output by at most 2^-9 times the
// spread of the values it averages. So |got - ref| <= 2^-8·(|ref| + max |v|) per element, and the lse
// (fp32, whose sum adds the rounded probabilities) within 2^-8. A wrong mask, block or head moves
// whole rows by O(1): the scores are scaled up so that a few keys dominate each row.
// Backward: P (for dV) and dS (for dK, dQ) are rounded to bf16 as their products' operands, and each
// gradient once at the end, so each element is within 2^-7 of the sum of its terms' magnitudes
// (Σ|P||dO| for dV, scale·Σ|dS||q| for dK, ...), computed alongside the reference.
import { describe, expect, it } from 'vitest';
import { Tensor, bf16ToF32, f32ToBf16, ops, withScope } from '../../src/tensor/index.js';
import { rng, randn } from '../helpers/random.js';

const q16 = (a: Float32Array) => bf16ToF32(f32ToBf16(a));

interface Case {
  name: string;
  Tq: number;
  Tk: number;
  Hq: number;
  Hkv: number;
  D: number;
  scale: number;
  docLens?: number[];
}

function reference(c: Case, q: Float32Array, k: Float32Array, v: Float32Array, doc: Int32Array | null) {
  const { Tq, Tk, Hq, Hkv, D, scale } = c;
  const out = new Float64Array(Tq * Hq * D), lse = new Float64Array(Hq * Tq);
  const s = new Float64Array(Tk);
  for (let h = 0; h < Hq; h++) {
    const hk = Math.floor(h / (Hq / Hkv));
    for (let i = 0; i < Tq; i++) {
      const pos = Tk - Tq + i;
      let mx = -Infinity;
      for (let j = 0; j <= pos; j++) {
        if (doc && doc[j] !== doc[pos]) {
          s[j] = -Infinity;
          continue;
        }
        let dot = 0;
        for (let e = 0; e < D; e++) dot += q[(i * Hq + h) * D + e] * k[(j * Hkv + hk) * D + e];
        s[j] = dot * scale;
        mx = Math.max(mx, s[j]);
      }
      let l = 0;
      for (let j = 0; j <= pos; j++) l += s[j] === -Infinity ? 0 : Math.exp(s[j] - mx);
      for (let j = 0; j <= pos; j++) {
        if (s[j] === -Infinity) continue;
        const p = Math.exp(s[j] - mx) / l;
        for (let e = 0; e < D; e++) out[(i * Hq + h) * D + e] += p * v[(j * Hkv + hk) * D + e];
      }
      lse[h * Tq + i] = mx + Math.log(l);
    }
  }
  return { out, lse };
}

const cases: Case[] = [
  // The benchmark's head width and grouping, with T no multiple of the 64- and 128-key blocks.
  { name: 'D 128, 4 query heads per kv head, T 300', Tq: 300, Tk: 300, Hq: 8, Hkv: 2, D: 128, scale: 0.35 },
  // Odd D (a half-filled last pair), 6 query heads per kv head (chunks of 4 and 2), flatter scores.
  { name: 'odd D 37, 6 query heads per kv head, T 150', Tq: 150, Tk: 150, Hq: 6, Hkv: 1, D: 37, scale: 0.2 },
  // Decoding with a cache: 5 queries at the end of 260 keys.
  { name: 'KV cache: 5 queries over 260 keys', Tq: 5, Tk: 260, Hq: 4, Hkv: 2, D: 64, scale: 0.5 },
  // Packed documents starting and ending inside blocks and vectors, one of a single position.
  { name: 'packed documents', Tq: 270, Tk: 270, Hq: 4, Hkv: 4, D: 48, scale: 0.5, docLens: [1, 17, 130, 3, 119] },
];

/** The op's cu_seqlens for documents of these lengths; the references keep per-position ids. */
function offsets(lens: number[]): Tensor {
  const cu = [0];
  for (const n of lens) cu.push(cu[cu.length - 1] + n);
  return Tensor.fromArray(Int32Array.from(cu), [cu.length]);
}

describe('bf16 attention forward against a double-precision reference', () => {
  for (const c of cases) {
    it(c.name, () => {
      const r = rng(c.Tq * 31 + c.D);
      const q = q16(randn(c.Tq * c.Hq * c.D, r)), k = q16(randn(c.Tk * c.Hkv * c.D, r)), v = q16(randn(c.Tk * c.Hkv * c.D, r));
      let doc: Int32Array | null = null;
      if (c.docLens) {
        doc = new Int32Array(c.Tk);
        let at = 0;
        c.docLens.forEach((n, id) => (doc!.fill(id, at, at + n), (at += n)));
        expect(at).toBe(c.Tk);
      }
      const ref = reference(c, q, k, v, doc);
      let vmax = 0;
      for (const x of v) vmax = Math.max(vmax, Math.abs(x));
      withScope(() => {
        const bf = (a: Float32Array, shape: number[]) => Tensor.fromArray(f32ToBf16(a), shape, 'bf16');
        const { out, lse } = ops.attention(bf(q, [1, c.Tq, c.Hq, c.D]), bf(k, [1, c.Tk, c.Hkv, c.D]), bf(v, [1, c.Tk, c.Hkv, c.D]), {
          scale: c.scale,
          ...(c.docLens ? { cuSeqlens: offsets(c.docLens) } : {}),
        });
        const got = bf16ToF32(out.toArray() as Uint16Array), gl = lse.toArray() as Float32Array;
        let worst = 0;
        for (let i = 0; i < got.length; i++) {
          const err = Math.abs(got[i] - ref.out[i]), tol = 2 ** -8 * (Math.abs(ref.out[i]) + vmax);
          if (!(err <= tol)) throw new Error(`out[${i}]: ${got[i]} vs reference ${ref.out[i]}`);
          worst = Math.max(worst, err / tol);
        }
        for (let i = 0; i < gl.length; i++) {
          if (!(Math.abs(gl[i] - ref.lse[i]) <= 2 ** -8)) throw new Error(`lse[${i}]: ${gl[i]} vs reference ${ref.lse[i]}`);
        }
        // The bound is loose by design; typical errors are far inside it.
        expect(worst).toBeLessThan(1);
      });
    });
  }

  // The backward's reference takes out and lse from the op's own forward, as its contract says
  // (P = exp(s·scale - lse), delta = dout·out), so it checks the backward alone.
  function backwardReference(c: Case, q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array,
    g: Float32Array, doc: Int32Array | null) {
    const { Tk: T, Hq, Hkv, D, scale } = c;
    const G = Hq / Hkv;
    const grads = { dq: new Float64Array(T * Hq * D), dk: new Float64Array(T * Hkv * D), dv: new Float64Array(T * Hkv * D) };
    const mags = { dq: new Float64Array(T * Hq * D), dk: new Float64Array(T * Hkv * D), dv: new Float64Array(T * Hkv * D) };
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / G);
      for (let i = 0; i < T; i++) {
        const qi = (i * Hq + h) * D;
        let delta = 0;
        for (let e = 0; e < D; e++) delta += g[qi + e] * out[qi + e];
        for (let j = 0; j <= i; j++) {
          if (doc && doc[j] !== doc[i]) continue;
          const kj = (j * Hkv + hk) * D;
          let s = 0, dp = 0;
          for (let e = 0; e < D; e++) {
            s += q[qi + e] * k[kj + e];
            dp += g[qi + e] * v[kj + e];
          }
          const p = Math.exp(s * scale - lse[h * T + i]), ds = p * (dp - delta);
          for (let e = 0; e < D; e++) {
            grads.dv[kj + e] += p * g[qi + e];
            mags.dv[kj + e] += Math.abs(p * g[qi + e]);
            grads.dk[kj + e] += scale * ds * q[qi + e];
            mags.dk[kj + e] += Math.abs(scale * ds * q[qi + e]);
            grads.dq[qi + e] += scale * ds * k[kj + e];
            mags.dq[qi + e] += Math.abs(scale * ds * k[kj + e]);
          }
        }
      }
    }
    return { grads, mags };
  }

  const backwardCases: Case[] = [
    { name: 'D 128, 4 query heads per kv head, T 200', Tq: 200, Tk: 200, Hq: 8, Hkv: 2, D: 128, scale: 0.35 },
    { name: 'odd D 37, 3 query heads per kv head, packed documents', Tq: 210, Tk: 210, Hq: 6, Hkv: 2, D: 37, scale: 0.3, docLens: [1, 70, 66, 2, 71] },
  ];
  for (const c of backwardCases) {
    it(`backward: ${c.name}`, () => {
      const r = rng(c.Tq * 17 + c.D);
      const T = c.Tk;
      const q = q16(randn(T * c.Hq * c.D, r)), k = q16(randn(T * c.Hkv * c.D, r)), v = q16(randn(T * c.Hkv * c.D, r));
      const g = q16(randn(T * c.Hq * c.D, r));
      let doc: Int32Array | null = null;
      if (c.docLens) {
        doc = new Int32Array(T);
        let at = 0;
        c.docLens.forEach((n, id) => (doc!.fill(id, at, at + n), (at += n)));
        expect(at).toBe(T);
      }
      withScope(() => {
        const bf = (a: Float32Array, shape: number[]) => Tensor.fromArray(f32ToBf16(a), shape, 'bf16');
        const [qs, ks] = [[1, T, c.Hq, c.D], [1, T, c.Hkv, c.D]];
        const [qt, kt, vt] = [bf(q, qs), bf(k, ks), bf(v, ks)];
        const opts = { scale: c.scale, ...(c.docLens ? { cuSeqlens: offsets(c.docLens) } : {}) };
        const { out, lse } = ops.attention(qt, kt, vt, opts);
        const got = ops.attentionBackward(qt, kt, vt, out, bf(g, qs), lse, opts);
        const ref = backwardReference(c, q, k, v, bf16ToF32(out.toArray() as Uint16Array), lse.toArray() as Float32Array, g, doc);
        for (const name of ['dq', 'dk', 'dv'] as const) {
          const a = bf16ToF32(got[name].toArray() as Uint16Array), want = ref.grads[name], mag = ref.mags[name];
          for (let i = 0; i < a.length; i++) {
            if (!(Math.abs(a[i] - want[i]) <= 2 ** -7 * mag[i] + 1e-6)) {
              throw new Error(`${name}[${i}]: ${a[i]} vs reference ${want[i]} (terms' magnitude ${mag[i]})`);
            }
          }
        }
      });
    });
  }

  it('a NaN in one key poisons exactly the rows that see it', () => {
    const [T, H, D] = [200, 2, 32];
    const r = rng(7);
    const q = q16(randn(T * H * D, r)), k = q16(randn(T * H * D, r)), v = q16(randn(T * H * D, r));
    k[(150 * H + 1) * D + 3] = NaN;  // key 150 of kv head 1
    withScope(() => {
      const bf = (a: Float32Array) => Tensor.fromArray(f32ToBf16(a), [1, T, H, D], 'bf16');
      const out = bf16ToF32(ops.attention(bf(q), bf(k), bf(v)).out.toArray() as Uint16Array);
      for (let i = 0; i < T; i++) {
        for (let h = 0; h < H; h++) {
          const nan = Number.isNaN(out[(i * H + h) * D]);
          expect(nan, `query ${i} head ${h}`).toBe(h === 1 && i >= 150);
        }
      }
    });
  });
});
