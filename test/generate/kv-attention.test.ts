// The native kvAttention op against a double-precision JS reference: new keys/values land in the
// right cache rows (and nothing else changes), each segment attends causally over its slot.
import { describe, expect, it } from 'vitest';
import { Tensor, bf16ToF32, f32ToBf16, native, withScope } from '../../src/tensor/index.js';
import { randn, rng } from '../helpers/random.js';

const [S, L, Hq, Hkv, D] = [3, 12, 4, 2, 8];

function reference(q: Float32Array, kn: Float32Array, vn: Float32Array, kc: Float32Array, vc: Float32Array, segs: number[][], scale: number, dims = { L, Hq, Hkv, D }) {
  const { L, Hq, Hkv, D } = dims;
  const K = Float64Array.from(kc), Vv = Float64Array.from(vc);
  const out = new Float64Array(q.length);
  const kvRow = Hkv * D;
  for (const [slot, start, n, row] of segs) {
    for (let i = 0; i < n * kvRow; i++) {
      K[(slot * L + start) * kvRow + i] = kn[row * kvRow + i];
      Vv[(slot * L + start) * kvRow + i] = vn[row * kvRow + i];
    }
    for (let i = 0; i < n; i++) {
      for (let h = 0; h < Hq; h++) {
        const hk = Math.floor(h / (Hq / Hkv));
        const seen = start + i + 1;
        const s = new Float64Array(seen);
        for (let j = 0; j < seen; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[((row + i) * Hq + h) * D + d] * K[((slot * L + j) * Hkv + hk) * D + d];
          s[j] = dot * scale;
        }
        const m = Math.max(...s);
        let z = 0;
        for (let j = 0; j < seen; j++) z += s[j] = Math.exp(s[j] - m);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < seen; j++) acc += s[j] * Vv[((slot * L + j) * Hkv + hk) * D + d];
          out[((row + i) * Hq + h) * D + d] = acc / z;
        }
      }
    }
  }
  return { out, K, Vv };
}

describe('kvAttention (native)', () => {
  it('writes the new rows into the cache and attends over each slot, f32 within 1e-5', () => {
    const r = rng(17);
    const segs = [[2, 5, 3, 0], [0, 0, 1, 3], [1, 9, 2, 4]]; // slot, start, n, row: a prefill chunk, a first token, a decode pair
    const rows = 6;
    const q = randn(rows * Hq * D, r), kn = randn(rows * Hkv * D, r), vn = randn(rows * Hkv * D, r);
    const kc = randn(S * L * Hkv * D, r), vc = randn(S * L * Hkv * D, r);
    const scale = 1 / Math.sqrt(D);
    const ref = reference(q, kn, vn, kc, vc, segs, scale);
    withScope(() => {
      const t = (a: Float32Array, shape: number[]) => Tensor.fromArray(a, shape);
      const K = t(kc, [S, L, Hkv, D]), V = t(vc, [S, L, Hkv, D]), out = Tensor.empty([rows, Hq, D], 'f32');
      native().kvAttention(t(q, [rows, Hq, D]).handle, t(kn, [rows, Hkv, D]).handle, t(vn, [rows, Hkv, D]).handle, K.handle, V.handle,
        Tensor.fromArray(Int32Array.from(segs.flat()), [3, 4]).handle, out.handle, scale);
      const got = out.toArray() as Float32Array;
      expect(got.reduce((mx, v, i) => Math.max(mx, Math.abs(v - ref.out[i])), 0)).toBeLessThanOrEqual(1e-5);
      expect([...(K.toArray() as Float32Array)]).toEqual([...Float32Array.from(ref.K)]);
      expect([...(V.toArray() as Float32Array)]).toEqual([...Float32Array.from(ref.Vv)]);
    });
  });

  it('refuses bad segments by name', () => {
    withScope(() => {
      const q = Tensor.zeros([4, Hq, D], 'f32'), kn = Tensor.zeros([4, Hkv, D], 'f32'), K = Tensor.zeros([S, L, Hkv, D], 'f32'), V = Tensor.zeros([S, L, Hkv, D], 'f32');
      const out = Tensor.empty([4, Hq, D], 'f32');
      const call = (segs: number[][]) => native().kvAttention(q.handle, kn.handle, kn.handle, K.handle, V.handle, Tensor.fromArray(Int32Array.from(segs.flat()), [segs.length, 4]).handle, out.handle, 0.3);
      expect(() => call([[3, 0, 1, 0]])).toThrow(/kvAttention: segment 0 .*slot outside 0..2/);
      expect(() => call([[0, 0, 1, 0], [0, 1, 1, 1]])).toThrow(/slot appears twice/);
      expect(() => call([[0, 11, 2, 0]])).toThrow(/positions outside the cache's 12/);
      expect(() => call([[0, 0, 2, 3]])).toThrow(/rows outside q's 4/);
      expect(() => call([[0, 0, 2, 0], [1, 0, 2, 1]])).toThrow(/row 1 belongs to two segments/);
      expect(() => native().kvAttention(q.handle, kn.handle, kn.handle, K.handle, V.handle, Tensor.fromArray(Int32Array.from([0, 0, 1, 0]), [1, 4]).handle, q.handle, 0.3)).toThrow(/out overlaps q/);
    });
  });

  // Every segment one token (decoding): the direct path, parallel over kv heads for one long
  // sequence, one segment per thread for a batch. A head dimension that is not a multiple of 16
  // (masked loads), 4 query heads per kv head, bf16 and f32.
  for (const dtype of ['f32', 'bf16'] as const) {
    it(`one token per segment (decode), ${dtype}: one 300-token slot and a batch of 3, against double precision`, () => {
      const dims = { L: 320, Hq: 8, Hkv: 2, D: 72 };
      const r = rng(dtype === 'f32' ? 18 : 19);
      const round = (a: Float32Array) => (dtype === 'bf16' ? bf16ToF32(f32ToBf16(a)) : a);
      for (const segs of [[[1, 299, 1, 0]], [[0, 0, 1, 2], [2, 150, 1, 0], [1, 319, 1, 1]]]) {
        const rows = 3, slots = 3;
        const q = round(randn(rows * dims.Hq * dims.D, r)), kn = round(randn(rows * dims.Hkv * dims.D, r)), vn = round(randn(rows * dims.Hkv * dims.D, r));
        const kc = round(randn(slots * dims.L * dims.Hkv * dims.D, r, 0.5)), vc = round(randn(slots * dims.L * dims.Hkv * dims.D, r));
        const scale = 1 / Math.sqrt(dims.D);
        const ref = reference(q, kn, vn, kc, vc, segs, scale, dims);
        withScope(() => {
          const t = (a: Float32Array, shape: number[]) => (dtype === 'f32' ? Tensor.fromArray(a, shape) : Tensor.fromArray(f32ToBf16(a), shape, 'bf16'));
          const K = t(kc, [slots, dims.L, dims.Hkv, dims.D]), V = t(vc, [slots, dims.L, dims.Hkv, dims.D]), out = Tensor.empty([rows, dims.Hq, dims.D], dtype);
          native().kvAttention(t(q, [rows, dims.Hq, dims.D]).handle, t(kn, [rows, dims.Hkv, dims.D]).handle, t(vn, [rows, dims.Hkv, dims.D]).handle, K.handle, V.handle,
            Tensor.fromArray(Int32Array.from(segs.flat()), [segs.length, 4]).handle, out.handle, scale);
          const o = out.toArray();
          const got = dtype === 'f32' ? (o as Float32Array) : bf16ToF32(o as Uint16Array);
          let worst = 0;
          for (const [, , , row] of segs) {
            for (let i = row * dims.Hq * dims.D; i < (row + 1) * dims.Hq * dims.D; i++) {
              // bf16: the output's rounding (2^-9 relative) on top of fp32 math.
              const tol = dtype === 'f32' ? 1e-5 : 2 ** -8 * Math.abs(ref.out[i]) + 1e-6;
              worst = Math.max(worst, Math.abs(got[i] - ref.out[i]) / tol);
            }
          }
          expect(worst).toBeLessThanOrEqual(1);
          const kk = K.toArray(), want = dtype === 'f32' ? Float32Array.from(ref.K) : f32ToBf16(Float32Array.from(ref.K));
          expect([...kk].every((v, i) => v === want[i])).toBe(true);
        });
      }
    });
  }
});
