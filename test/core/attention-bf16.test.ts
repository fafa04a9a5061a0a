// The bf16 attention forward (vdpbf16ps where the CPU has AVX512-BF16, fp32 tiles elsewhere) against
// a double-precision reference computed here from the same bf16-representable inputs, on shapes that
// reach every edge of the kernel: key and query blocks cut anywhere, odd head widths, query-head
// groups that split into several chunks, fewer queries than keys, packed documents.
//
// Tolerance: the output is rounded once to bf16 (relative 2^-9), and the probabilities are rounded to
// bf16 before P·V (FlashAttention does the same), which moves an output by at most 2^-9 times the
// spread of the values it averages. So |got - ref| <= 2^-8·(|ref| + max |v|) per element, and the lse
// (fp32, whose sum adds the rounded probabilities) within 2^-8. A wrong mask, block or head moves
// whole rows by O(1): the scores are scaled up so that a few keys dominate each row.
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
          ...(doc ? { doc: Tensor.fromArray(doc, [1, c.Tk]) } : {}),
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
