// The GEMM's packed-weights cache: reused while a weight is unchanged, never served stale after
// anything writes it (every writer of a tensor is tried), bit-identical to an uncached product.
// AVX-512 builds read W in place for x·Wᵀ (no packing, nothing cached; test/core/gemm.test.ts), so
// this file sends x·Wᵀ down the packed path, the one AMX, AVX2 and odd-K products take, and whose
// cache dY·W uses on every build.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensorSource, writeSafetensors } from '../../src/checkpoint/index.js';
import { Tensor, native, ops, withScope, type DType } from '../../src/tensor/index.js';
import { randn, rng } from '../helpers/random.js';
import { f32ToBf16 } from '../../src/tensor/index.js';

const [M, N, K] = [40, 70, 96]; // above the small-M path, so op(B) is packed
const mk = (a: Float32Array, shape: number[], dt: DType) => (dt === 'bf16' ? Tensor.fromArray(f32ToBf16(a), shape, 'bf16') : Tensor.fromArray(a, shape, 'f32'));

/** x·Wᵀ through the cache-keyed path, and the same product with a fresh copy of W's bytes (a new storage: never cached). */
function bothWays(x: Tensor, w: Tensor): { viaW: Uint8Array; fresh: Uint8Array } {
  return withScope(() => {
    const copy = Tensor.empty(w.shape, w.dtype);
    copy.writeBytes(0, w.readBytes(0, w.nbytes));
    const y1 = ops.matmul(x, w, { transB: true }), y2 = ops.matmul(x, copy, { transB: true });
    return { viaW: y1.readBytes(0, y1.nbytes).slice(), fresh: y2.readBytes(0, y2.nbytes).slice() };
  });
}

describe('packed-weights cache', () => {
  let before: string | undefined;
  beforeAll(() => {
    before = process.env.POLYTUNE_GEMM_DIRECT;
    process.env.POLYTUNE_GEMM_DIRECT = '0';
  });
  afterAll(() => {
    if (before === undefined) delete process.env.POLYTUNE_GEMM_DIRECT;
    else process.env.POLYTUNE_GEMM_DIRECT = before;
  });
  for (const dt of ['f32', 'bf16'] as const) {
    it(`${dt}: hits while W is unchanged, and every way of writing W invalidates it`, () => {
      withScope(() => {
        const r = rng(dt === 'f32' ? 61 : 62);
        const x = mk(randn(M * K, r), [M, K], dt);
        const w = mk(randn(N * K, r), [N, K], dt);
        const g = mk(randn(N * K, r, 0.1), [N, K], dt);
        const master = Tensor.fromArray(randn(N * K, rng(63)), [N, K], 'f32');
        const m = Tensor.zeros([N, K], 'f32'), v = Tensor.zeros([N, K], 'f32');
        const ref = () => {
          const { viaW, fresh } = bothWays(x, w);
          expect(Buffer.from(viaW).equals(Buffer.from(fresh))).toBe(true);
          return viaW;
        };
        // Uses 1 and 2 fill the cache; 3 and 4 must hit it.
        const first = ref();
        ref();
        const hits0 = native().packCacheStats().hits;
        const again = ref();
        expect(native().packCacheStats().hits).toBeGreaterThan(hits0);
        expect(Buffer.from(again).equals(Buffer.from(first))).toBe(true);

        const writers: [string, () => void][] = [
          ['adamw (the optimizer step)', () => ops.adamw(w, g, master, m, v, { lr: 0.1, step: 1 })],
          ['writeBytes', () => w.writeBytes(0, mk(randn(N * K, r), [N, K], dt).readBytes(0, w.nbytes))],
          ['fill', () => ops.fill(w, 0.25)],
          ['scaleInPlace', () => ops.scaleInPlace(w, -3)],
          ['cast into it', () => ops.cast(mk(randn(N * K, r), [N, K], dt), dt, w)],
          ['matmul out', () => ops.matmul(mk(randn(N * 8, r), [N, 8], dt), mk(randn(8 * K, r), [8, K], dt), { out: w })],
          ['add into it', () => ops.add(w, g, w)],
          ['a view written through', () => ops.fill(w.rows(3, 5), 7)],
        ];
        let prev = first;
        for (const [name, write] of writers) {
          ref(); // the cache now holds this version's packing
          write();
          const after = ref(); // must see the new values: equal to a fresh copy (checked in ref)
          expect(Buffer.from(after).equals(Buffer.from(prev)), `${name} changed nothing?`).toBe(false);
          ref();
          prev = after;
        }
        // A Buffer over W's memory lets JS write it behind our back: while it is live, W is not cached.
        const fills0 = native().packCacheStats().fills;
        const view = w.bytesView(0, w.nbytes);
        ref();
        ref();
        view.fill(0x3c);
        const whileExposed = ref(); // sees the write made through the view (checked against a fresh copy)
        expect(native().packCacheStats().fills).toBe(fills0);
        expect(Buffer.from(whileExposed).equals(Buffer.from(prev))).toBe(false);
        // Ending the exposure detaches the view (no later write can reach W through it) and the cache
        // serves W again: a fill, then hits.
        w.endBytesViews();
        expect(view.byteLength).toBe(0);
        ref();
        ref();
        expect(native().packCacheStats().fills).toBeGreaterThan(fills0);
        const hits1 = native().packCacheStats().hits;
        expect(Buffer.from(ref()).equals(Buffer.from(whileExposed))).toBe(true);
        expect(native().packCacheStats().hits).toBeGreaterThan(hits1);
        // ...and every writer still invalidates it after an exposure has ended.
        ops.fill(w, -0.5);
        expect(Buffer.from(ref()).equals(Buffer.from(whileExposed))).toBe(false);
      });
    });
  }

  it('a checkpoint save exposes the weights only while it writes them: the cache is used again after', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pt-packcache-'));
    try {
      withScope(() => {
        const r = rng(65);
        const x = Tensor.fromArray(randn(M * K, r), [M, K]);
        const w = Tensor.fromArray(randn(N * K, r), [N, K]);
        const before = bothWays(x, w).viaW;
        bothWays(x, w);
        writeSafetensors(join(dir, 'w.safetensors'), [tensorSource('w', w)]);
        expect(readFileSync(join(dir, 'w.safetensors')).includes(Buffer.from(w.readBytes(0, w.nbytes)))).toBe(true);
        const s0 = native().packCacheStats();
        bothWays(x, w); // refills (the save may have written W, as far as the cache knows)
        bothWays(x, w);
        const s1 = native().packCacheStats();
        expect(s1.fills).toBeGreaterThan(s0.fills);
        const after = bothWays(x, w);
        expect(native().packCacheStats().hits).toBeGreaterThan(s1.hits);
        expect(Buffer.from(after.viaW).equals(Buffer.from(before))).toBe(true);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // bf16 x·Wᵀ cuts K into deeper slices than Xᵀ·Wᵀ does: one W packed under one depth must not be
  // served to the other form (K = 2100 spans two slices either way, at different boundaries).
  it('bf16: the same W for x·Wᵀ and Xᵀ·Wᵀ in turn, each as if uncached', () => {
    withScope(() => {
      const r = rng(64), K2 = 2100;
      const w = mk(randn(N * K2, r), [N, K2], 'bf16');
      const x = mk(randn(M * K2, r), [M, K2], 'bf16'), xt = mk(randn(K2 * M, r), [K2, M], 'bf16');
      const bytes = (t: Tensor) => Buffer.from(t.readBytes(0, t.nbytes).slice());
      for (let round = 0; round < 3; round++)
        for (const [a, transA] of [[x, false], [xt, true]] as const) {
          // A fresh copy each time: its first use, never from the cache.
          const copy = Tensor.empty(w.shape, w.dtype);
          copy.writeBytes(0, w.readBytes(0, w.nbytes));
          const got = bytes(ops.matmul(a, w, { transA, transB: true }));
          expect(got.equals(bytes(ops.matmul(a, copy, { transA, transB: true }))), `round ${round} transA=${transA}`).toBe(true);
        }
      expect(native().packCacheStats().hits).toBeGreaterThan(0);
    });
  });

  // dY·W's W over several column chunks is packed whole, in stripes of rows streamed to memory:
  // into the scratch at its first use, into its cache entry at the second, read from there after.
  for (const dt of ['f32', 'bf16'] as const)
    it(`${dt}: dY·W over three column chunks, its stripes filling the cache, as if uncached`, () => {
      withScope(() => {
        const r = rng(65), [Kd, Nd] = [300, 1100];
        const w = mk(randn(Kd * Nd, r), [Kd, Nd], dt), dy = mk(randn(M * Kd, r), [M, Kd], dt);
        const bytes = (t: Tensor) => Buffer.from(t.readBytes(0, t.nbytes).slice());
        const s0 = native().packCacheStats();
        for (let round = 0; round < 3; round++) {
          const copy = Tensor.empty(w.shape, w.dtype);
          copy.writeBytes(0, w.readBytes(0, w.nbytes));
          expect(bytes(ops.matmul(dy, w)).equals(bytes(ops.matmul(dy, copy))), `round ${round}`).toBe(true);
        }
        const s1 = native().packCacheStats();
        expect(s1.fills).toBe(s0.fills + 1);
        expect(s1.hits).toBe(s0.hits + 1);
      });
    });

  // Each training step writes the weights, so each step packs them again: the dropped entry's
  // buffer is kept and taken by the next fill of its size instead of fresh memory (page faults).
  it("a dropped entry's buffer is taken by the next fill of its size", () => {
    withScope(() => {
      const r = rng(66);
      const x = mk(randn(M * K, r), [M, K], 'f32'), w = mk(randn(N * K, r), [N, K], 'f32');
      const s0 = native().packCacheStats();
      for (let step = 0; step < 3; step++) {
        const { viaW, fresh } = bothWays(x, w); // first use at this version
        expect(Buffer.from(viaW).equals(Buffer.from(fresh))).toBe(true);
        const again = bothWays(x, w); // second use: a fill, into a kept buffer from step 1 on
        expect(Buffer.from(again.viaW).equals(Buffer.from(again.fresh))).toBe(true);
        ops.fill(w, 0.5 + step); // a new version: its entry is dropped at the next use
      }
      const s1 = native().packCacheStats();
      expect(s1.fills - s0.fills).toBe(3);
      expect(s1.reuses - s0.reuses).toBeGreaterThanOrEqual(2);
      expect(s1.spareBytes).toBeLessThanOrEqual(s1.limitBytes);
    });
  });

  it('is bounded: entries die with their storage', () => {
    const before = native().packCacheStats();
    withScope(() => {
      const x = Tensor.fromArray(randn(M * K, rng(64)), [M, K]);
      for (let i = 0; i < 5; i++) {
        const w = Tensor.fromArray(randn(N * K, rng(70 + i)), [N, K]);
        ops.matmul(x, w, { transB: true });
        ops.matmul(x, w, { transB: true });
        w.dispose();
      }
    });
    const after = native().packCacheStats();
    expect(after.fills).toBeGreaterThan(before.fills);
    expect(after.entries).toBeLessThanOrEqual(before.entries);
    expect(after.bytes).toBeLessThanOrEqual(after.limitBytes);
  });
});
