// kvAttention on every device other than the CPU against the CPU on identical host inputs, as the
// `backends` blocks of test/ops/ (the CPU op itself is checked against double precision in
// kv-attention.test.ts). The caches start random, so a row appended at the wrong place or a key read
// from the wrong slot or kv head changes the result; segments list slots out of order and take rows
// out of order. Outputs are poisoned first. Devices that are not there show as skipped with the reason.
import { describe, expect, it } from 'vitest';
import { Tensor, native, withScope, type DType, type Device } from '../../src/tensor/index.js';
import { randn, rng } from '../helpers/random.js';
import { backends, caseLabel, compare, host, out, put } from '../ops/harness.js';

interface Case {
  what: string;
  slots: number;
  maxLen: number;
  Hq: number;
  Hkv: number;
  D: number;
  /** [slot, start, n, row] */
  segs: number[][];
}

const shapes: Case[] = [
  { what: 'decoding a batch (first and last cache position), GQA 2, head_dim 128', slots: 3, maxLen: 40, Hq: 4, Hkv: 2, D: 128, segs: [[2, 17, 1, 0], [0, 0, 1, 2], [1, 39, 1, 1]] },
  { what: 'a prefill chunk beside decoding and a 4-token step, GQA 4, head_dim 64', slots: 4, maxLen: 80, Hq: 8, Hkv: 2, D: 64, segs: [[1, 0, 37, 5], [3, 70, 1, 0], [0, 20, 4, 1]] },
  { what: 'head_dim 8 (stories260K), multi-query, a first token and a 20-token chunk', slots: 2, maxLen: 48, Hq: 8, Hkv: 1, D: 8, segs: [[0, 0, 1, 20], [1, 10, 20, 0]] },
  { what: 'the whole cache in one segment, head_dim 32', slots: 1, maxLen: 33, Hq: 2, Hkv: 2, D: 32, segs: [[0, 0, 33, 0]] },
  { what: 'head_dim 16, GQA 2, a segment ending at the cache end', slots: 2, maxLen: 24, Hq: 4, Hkv: 2, D: 16, segs: [[1, 18, 6, 0], [0, 5, 1, 6]] },
];
// bf16 outputs: the CPU's multi-token path rounds the probabilities to bf16 for P·V, the CUDA kernel
// keeps them in fp32 (as attention's harness tolerances in test/ops/attention.test.ts).
const TOL: Record<'f32' | 'bf16', number> = { f32: 1e-10, bf16: 1e-5 };

const rowsOf = (c: Case) => c.segs.reduce((m, [, , n, row]) => Math.max(m, row + n), 0);

function inputs(c: Case, seed: number) {
  const r = rng(seed);
  const rows = rowsOf(c), cache = c.slots * c.maxLen * c.Hkv * c.D;
  return {
    q: randn(rows * c.Hq * c.D, r), kn: randn(rows * c.Hkv * c.D, r), vn: randn(rows * c.Hkv * c.D, r),
    kc: randn(cache, r, 0.7), vc: randn(cache, r),
  };
}

/** out (the segments' rows only), kcache and vcache after one call on `device`, as f32 on the host. */
function run(c: Case, dtype: DType, device: Device, inp: ReturnType<typeof inputs>) {
  return withScope(() => {
    const rows = rowsOf(c);
    const kc = put(inp.kc, [c.slots, c.maxLen, c.Hkv, c.D], dtype, device), vc = put(inp.vc, [c.slots, c.maxLen, c.Hkv, c.D], dtype, device);
    const o = out([rows, c.Hq, c.D], dtype, device);
    native().kvAttention(put(inp.q, [rows, c.Hq, c.D], dtype, device).handle, put(inp.kn, [rows, c.Hkv, c.D], dtype, device).handle,
      put(inp.vn, [rows, c.Hkv, c.D], dtype, device).handle, kc.handle, vc.handle,
      Tensor.fromArray(Int32Array.from(c.segs.flat()), [c.segs.length, 4], 'i32', device).handle, o.handle, 1 / Math.sqrt(c.D));
    const all = host(o), per = c.Hq * c.D;
    const covered = c.segs.flatMap(([, , n, row]) => [...all.subarray(row * per, (row + n) * per)]);
    return { out: Float32Array.from(covered), kcache: host(kc), vcache: host(vc) };
  });
}

describe('kvAttention', () => {
  describe.each(backends())('backends: $name', ({ device, skip }) => {
    shapes.forEach((c, i) => {
      for (const dtype of ['f32', 'bf16'] as const) {
        const label = caseLabel('kvAttention', dtype, [rowsOf(c), c.Hq, c.Hkv, c.D], device);
        it.skipIf(!!skip)(`${label}: ${c.what}, against the cpu`, () => {
          const inp = inputs(c, 100 + i);
          const got = run(c, dtype, device, inp), want = run(c, dtype, 'cpu', inp);
          compare(`${label} out`, got.out, want.out, { nmse: TOL[dtype] });
          // The appended rows are copies: bit for bit, and every other cache row untouched.
          compare(`${label} kcache`, got.kcache, want.kcache, { nmse: 0 });
          compare(`${label} vcache`, got.vcache, want.vcache, { nmse: 0 });
        });
      }
    });

    // The op keeps the last segments it validated on the device (a decoder passes the same tensor to
    // every layer): a rewrite of that tensor between calls must be read, not the kept table used.
    it.skipIf(!!skip)('one segments tensor, rewritten between calls and reused across two caches, as a decoder does', () => {
      const c = shapes[1];
      const inp = inputs(c, 7);
      const segsB = [[3, 71, 1, 0], [0, 24, 4, 1], [1, 37, 37, 5]]; // every row of q again
      const steps = (dev: Device) =>
        withScope(() => {
          const rows = rowsOf(c), shape = [c.slots, c.maxLen, c.Hkv, c.D];
          const caches = [0, 1].map(() => [put(inp.kc, shape, 'f32', dev), put(inp.vc, shape, 'f32', dev)]);
          const segs = Tensor.fromArray(Int32Array.from(c.segs.flat()), [c.segs.length, 4], 'i32', dev);
          const q = put(inp.q, [rows, c.Hq, c.D], 'f32', dev), kn = put(inp.kn, [rows, c.Hkv, c.D], 'f32', dev), vn = put(inp.vn, [rows, c.Hkv, c.D], 'f32', dev);
          const outs: Float32Array[] = [];
          for (const next of [null, segsB]) {
            if (next) segs.writeBytes(0, new Uint8Array(Int32Array.from(next.flat()).buffer));
            for (const [kc, vc] of caches) {
              const o = out([rows, c.Hq, c.D], 'f32', dev);
              native().kvAttention(q.handle, kn.handle, vn.handle, kc.handle, vc.handle, segs.handle, o.handle, 1 / Math.sqrt(c.D));
              outs.push(host(o), host(kc));
            }
          }
          return outs;
        });
      const got = steps(device), want = steps('cpu');
      got.forEach((g, i) => compare(`call ${i >> 1} output ${i & 1 ? 'kcache' : 'out'}`, g, want[i], { nmse: i & 1 ? 0 : TOL.f32 }));
    });

    it.skipIf(!!skip)('bad segments are refused on the device as on the cpu, by name; head_dim 72 is refused by name', () => {
      withScope(() => {
        const [S, L, Hq, Hkv, D] = [3, 12, 4, 2, 8];
        const z = (shape: number[]) => Tensor.zeros(shape, 'f32', device);
        const q = z([4, Hq, D]), kn = z([4, Hkv, D]), K = z([S, L, Hkv, D]), V = z([S, L, Hkv, D]), o = z([4, Hq, D]);
        const call = (segs: number[][]) =>
          native().kvAttention(q.handle, kn.handle, kn.handle, K.handle, V.handle, Tensor.fromArray(Int32Array.from(segs.flat()), [segs.length, 4], 'i32', device).handle, o.handle, 0.3);
        expect(() => call([[3, 0, 1, 0]])).toThrow(/kvAttention: segment 0 .*slot outside 0..2/);
        expect(() => call([[0, 0, 1, 0], [0, 1, 1, 1]])).toThrow(/slot appears twice/);
        expect(() => call([[0, 11, 2, 0]])).toThrow(/positions outside the cache's 12/);
        expect(() => call([[0, 0, 2, 0], [1, 0, 2, 1]])).toThrow(/row 1 belongs to two segments/);
        const q72 = z([1, 2, 72]), k72 = z([1, 1, 72]), c72 = z([1, 4, 1, 72]), v72 = z([1, 4, 1, 72]), o72 = z([1, 2, 72]);
        expect(() => native().kvAttention(q72.handle, k72.handle, k72.handle, c72.handle, v72.handle,
          Tensor.fromArray(Int32Array.from([0, 0, 1, 0]), [1, 4], 'i32', device).handle, o72.handle, 0.3)).toThrow(/head_dim 72 is not supported on CUDA/);
      });
    });
  });
});
