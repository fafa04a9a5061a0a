// Parameters, gradients and optimizer state live in flat arenas (one per decay group); the
// per-parameter tensors are views. Checked against per-tensor references computed independently.
import { describe, expect, it } from 'vitest';
import { ArenaLayout } from '../../src/model/arenas.js';
import { LlamaModel, initLlamaWeights, isNormWeight, llamaParamShapes } from '../../src/model/index.js';
import { Tensor, memoryStats, ops, withScope } from '../../src/tensor/index.js';
import { AdamW, hostBatch } from '../../src/train/index.js';
import { randint, rng } from '../helpers/random.js';
import { TINY } from '../helpers/tiny.js';

const f64 = (t: Tensor) => Float64Array.from(t.toArray() as Float32Array);

describe('arenas', () => {
  it('lays parameters out per decay group, aligned, and the views share the arena memory', () => {
    const shapes = llamaParamShapes(TINY);
    const layout = new ArenaLayout(shapes, (n) => (isNormWeight(n) ? 'no_decay' : 'decay'));
    expect(layout.groups.map((g) => g.group)).toEqual(['decay', 'no_decay']);
    for (const g of layout.groups) {
      let end = 0;
      for (const e of g.entries) {
        expect(e.offset % 32).toBe(0);
        expect(e.offset).toBeGreaterThanOrEqual(end);
        expect(isNormWeight(e.name)).toBe(g.group === 'no_decay');
        end = e.offset + e.numel;
      }
      expect(g.numel).toBeGreaterThanOrEqual(end);
    }
    expect([...layout.byName.keys()]).toEqual([...shapes.keys()]);

    const a = layout.allocate('f32');
    // Writing each view with its own index pattern shows up at its offset in the flat arena.
    for (const [name, v] of a.views) {
      const { group, entry } = layout.byName.get(name)!;
      expect(v.shape).toEqual(shapes.get(name));
      const vals = Float32Array.from({ length: v.numel }, (_, i) => group * 1e6 + entry.offset + i + 1);
      v.writeBytes(0, vals);
    }
    layout.groups.forEach((g, gi) => {
      const flat = a.flats[gi].toArray() as Float32Array;
      const expected = new Float32Array(g.numel);
      for (const e of g.entries) for (let i = 0; i < e.numel; i++) expected[e.offset + i] = gi * 1e6 + e.offset + i + 1;
      expect(flat).toEqual(expected);
    });
    a.dispose();
  });

  it('a model keeps its weights and gradients in arenas and frees them on dispose', () => {
    const before = memoryStats();
    const weights = initLlamaWeights(TINY, 5);
    const model = LlamaModel.fromWeights(TINY, weights, 'f32');
    for (const [name, t] of model.params) {
      expect(Array.from(t.toArray() as Float32Array)).toEqual(Array.from(weights.get(name)!));
    }
    const [B, T] = [2, 5];
    const ids = randint(B * T, TINY.vocab_size, rng(6));
    const targets = randint(B * T, TINY.vocab_size, rng(7));
    withScope(() => {
      model.zeroGrads();
      model.forwardBackward(hostBatch(ids, targets, B, T), 0.1);
    });
    // The gradient arenas hold exactly the per-parameter gradients at their offsets, zero elsewhere.
    const layout = model.weights.layout;
    layout.groups.forEach((g, gi) => {
      const flat = model.gradArenas.flats[gi].toArray() as Float32Array;
      const expected = new Float32Array(g.numel);
      for (const e of g.entries) expected.set(model.grads.get(e.name)!.toArray() as Float32Array, e.offset);
      expect(flat).toEqual(expected);
      expect(flat.some((x) => x !== 0)).toBe(true);
    });
    model.zeroGrads();
    for (const g of model.gradArenas.flats) expect((g.toArray() as Float32Array).every((x) => x === 0)).toBe(true);
    model.dispose();
    expect(memoryStats().liveBuffers).toBe(before.liveBuffers);
  });

  it('sumSquares writes a double sum as an f32 (hi, lo) pair that keeps its precision', () => {
    const r = rng(11);
    const n = 300_001;
    const x = Float32Array.from({ length: n }, () => (r() - 0.5) * 3);
    // A compensated (Neumaier) sum: the reference's own rounding (a plain running sum drifts ~1e-13
    // over 300k terms) must not count against the kernel's.
    let ref = 0, comp = 0;
    for (const v of x) {
      const t = ref + v * v;
      comp += Math.abs(ref) >= v * v ? ref - t + v * v : v * v - t + ref;
      ref = t;
    }
    ref += comp;
    withScope(() => {
      const t = Tensor.fromArray(x, [n]);
      const out = Tensor.full([4], 'f32', 7);
      ops.sumSquares(t, { out, index: 1 });
      const o = out.toArray() as Float32Array;
      expect([o[0], o[1]]).toEqual([7, 7]);
      expect(o[2]).toBe(Math.fround(ref));
      expect(Math.abs(o[2] + o[3] - ref) / ref).toBeLessThan(1e-13);
      // f32 alone is good to ~6e-8: the lo half is what buys the rest.
      expect(Math.abs(o[2] - ref) / ref).toBeGreaterThan(1e-12);
      expect(() => ops.sumSquares(t, { out, index: 2 })).toThrow(/index 2\.?0* has no \(hi, lo\) pair/);
      expect(() => ops.sumSquares(t, { out: Tensor.zeros([2], 'bf16'), index: 0 })).toThrow(/out/);
    });
  });

  it('the gradient norm of arenas holding an infinity or a NaN is Infinity or NaN, and no update is made', () => {
    const model = LlamaModel.fromWeights(TINY, initLlamaWeights(TINY, 3), 'f32');
    const opt = new AdamW(model.weights);
    const before = model.weights.flats.map((w) => w.toArray());
    for (const [bad, want] of [[Infinity, Infinity], [NaN, NaN]] as const) {
      model.zeroGrads();
      model.grads.get('model.norm.weight')!.writeBytes(4, new Float32Array([bad]));
      expect(opt.gradNorm(model.gradArenas)).toBe(want);
      expect(() => opt.update(model.gradArenas, 1e-3)).toThrow(/gradient norm is (Infinity|NaN)/);
    }
    expect(model.weights.flats.map((w) => w.toArray())).toEqual(before);
    expect(opt.step).toBe(0);
    model.dispose();
    opt.dispose();
  });

  for (const dtype of ['f32', 'bf16'] as const) {
    it(`AdamW on the arenas equals a per-tensor update with the norm taken in double (${dtype})`, () => {
      const weights = initLlamaWeights(TINY, 21);
      const model = LlamaModel.fromWeights(TINY, weights, dtype);
      const cfg = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 0.05 };
      const opt = new AdamW(model.weights, cfg);
      const [B, T] = [2, 6];
      const ids = randint(B * T, TINY.vocab_size, rng(22));
      const targets = randint(B * T, TINY.vocab_size, rng(23));
      // The reference: separately allocated tensors, one ops.adamw per parameter.
      const ref = new Map<string, { p: Tensor; master: Tensor | null; m: Tensor; v: Tensor }>();
      for (const [name, p] of model.params) {
        ref.set(name, {
          p: ops.cast(p, dtype),
          master: dtype === 'f32' ? null : ops.cast(p, 'f32'),
          m: Tensor.zeros(p.shape, 'f32'),
          v: Tensor.zeros(p.shape, 'f32'),
        });
      }
      for (let step = 1; step <= 3; step++) {
        withScope(() => {
          model.zeroGrads();
          model.forwardBackward(hostBatch(ids, targets, B, T), 1 / (B * T));
          let ss = 0;
          for (const g of model.grads.values()) {
            const a = g.dtype === 'f32' ? f64(g) : f64(ops.cast(g, 'f32'));
            for (const x of a) ss += x * x;
          }
          const norm = Math.sqrt(ss);
          const clip = norm > cfg.maxGradNorm ? cfg.maxGradNorm / (norm + 1e-6) : 1;
          for (const [name, r] of ref) {
            ops.adamw(r.p, model.grads.get(name)!, r.master, r.m, r.v, {
              lr: 1e-2, ...cfg, weightDecay: isNormWeight(name) ? 0 : cfg.weightDecay, step, gradScale: clip,
            });
          }
          const got = opt.update(model.gradArenas, 1e-2);
          expect(Math.abs(got.gradNorm - norm) / norm).toBeLessThan(1e-12);
          expect(got.clipScale).toBeLessThan(1);
        });
      }
      const state = opt.stateTensors();
      for (const [name, r] of ref) {
        expect(model.params.get(name)!.toArray()).toEqual(r.p.toArray());
        expect(state.get(`exp_avg.${name}`)!.toArray()).toEqual(r.m.toArray());
        expect(state.get(`exp_avg_sq.${name}`)!.toArray()).toEqual(r.v.toArray());
        if (r.master) expect(state.get(`master.${name}`)!.toArray()).toEqual(r.master.toArray());
        for (const t of [r.p, r.master, r.m, r.v]) t?.dispose();
      }
      expect(state.has('master.model.norm.weight')).toBe(dtype === 'bf16');
      model.dispose();
      opt.dispose();
    });
  }
});
