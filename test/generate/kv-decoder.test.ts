// The KV-cache decoder against the model's full forward pass, which the oracle tests check against
// onnxruntime-node: same logits at every position, however the tokens are split into passes.
import { afterAll, describe, expect, it } from 'vitest';
import { KvDecoder } from '../../src/generate/kv-decoder.js';
import { LlamaModel, makeBatch, type LlamaConfig } from '../../src/model/index.js';
import { bf16ToF32, memoryStats, withScope } from '../../src/tensor/index.js';
import { randomIds, randomLlamaWeights, tinyLlamaConfig } from '../oracle/random-llama.js';

const config: LlamaConfig = tinyLlamaConfig({ max_position_embeddings: 48 });
const weights = randomLlamaWeights(config, 11);
const models = { f32: LlamaModel.fromWeights(config, weights, 'f32'), bf16: LlamaModel.fromWeights(config, weights, 'bf16') };
afterAll(() => Object.values(models).forEach((m) => m.dispose()));

/** Full-forward logits [T, V] of one sequence. */
function fullLogits(model: LlamaModel, ids: number[]): Float32Array {
  return withScope(() => {
    const t = model.forwardLogits(makeBatch(Int32Array.from(ids), 1)).toArray();
    return t instanceof Uint16Array ? bf16ToF32(t) : (t as Float32Array);
  });
}

const maxDiff = (a: Float32Array, b: Float32Array) => {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
};
const peak = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('KV-cache decoder', () => {
  const V = config.vocab_size;
  const ids = randomIds(config, 40, 3);

  it('token by token gives the full forward logits at every position (f32, 1e-5)', () => {
    const dec = new KvDecoder(models.f32, { slots: 1, maxLen: 48 });
    const ref = fullLogits(models.f32, ids);
    expect(peak(ref)).toBeGreaterThan(2);
    const inc = new Float32Array(ids.length * V);
    ids.forEach((id, t) => inc.set(dec.forward([{ slot: 0, ids: [id] }])[0], t * V));
    expect(maxDiff(inc, ref)).toBeLessThanOrEqual(1e-5);
    expect(dec.lengths[0]).toBe(ids.length);
    dec.dispose();
  });

  it('prefill in chunks, then decode, equals the full forward; last-token logits equal the all-logits row', () => {
    const dec = new KvDecoder(models.f32, { slots: 1, maxLen: 48, chunk: 7 });
    const ref = fullLogits(models.f32, ids);
    const pre = dec.forward([{ slot: 0, ids: ids.slice(0, 23) }], { allLogits: true })[0];
    expect(maxDiff(pre, ref.subarray(0, 23 * V))).toBeLessThanOrEqual(1e-5);
    const last = dec.forward([{ slot: 0, ids: ids.slice(23, 30) }])[0];
    expect(maxDiff(last, ref.subarray(29 * V, 30 * V))).toBeLessThanOrEqual(1e-5);
    for (let t = 30; t < 40; t++) expect(maxDiff(dec.forward([{ slot: 0, ids: [ids[t]] }])[0], ref.subarray(t * V, (t + 1) * V))).toBeLessThanOrEqual(1e-5);
    dec.dispose();
  });

  it.each([['the kvAttention op', false], ['views and the plain attention op', true]])('batched sequences of different lengths equal each one decoded alone (%s)', (_, viewsOnly) => {
    KvDecoder.viewsOnly = viewsOnly as boolean;
    const seqs = [randomIds(config, 5, 21), randomIds(config, 17, 22), randomIds(config, 1, 23), randomIds(config, 30, 24)];
    const alone = seqs.map((s) => fullLogits(models.f32, s));
    const dec = new KvDecoder(models.f32, { slots: 4, maxLen: 48, chunk: 16 });
    // Mixed passes: prefills of different lengths in one call, then steps where some slots are idle.
    const got = seqs.map((s) => new Float32Array(s.length * V));
    const fed = [0, 0, 0, 0];
    const feed = (plan: number[]) => {
      const items = plan.map((n, slot) => ({ slot, ids: seqs[slot].slice(fed[slot], fed[slot] + n) })).filter((it) => it.ids.length > 0);
      const out = dec.forward(items, { allLogits: true });
      items.forEach((it, i) => {
        got[it.slot].set(out[i], fed[it.slot] * V);
        fed[it.slot] += it.ids.length;
      });
    };
    feed([3, 10, 1, 12]);
    while (fed.some((f, i) => f < seqs[i].length)) feed(seqs.map((s, i) => (i % 2 === fed[0] % 2 ? 1 : 2)));
    KvDecoder.viewsOnly = false;
    seqs.forEach((_, i) => expect(maxDiff(got[i], alone[i])).toBeLessThanOrEqual(1e-5));
    dec.dispose();
  });

  it('bf16: incremental decoding stays within bf16 rounding of the bf16 full forward', () => {
    const dec = new KvDecoder(models.bf16, { slots: 1, maxLen: 48 });
    const ref = fullLogits(models.bf16, ids.slice(0, 20));
    const inc = new Float32Array(20 * V);
    ids.slice(0, 20).forEach((id, t) => inc.set(dec.forward([{ slot: 0, ids: [id] }])[0], t * V));
    // Both round activations to bf16 after every op; they differ only where a rounding flips.
    expect(maxDiff(inc, ref)).toBeLessThanOrEqual(0.05 * peak(ref));
    dec.dispose();
  });

  it('reset and truncate reuse a slot; no native buffer is allocated per token', () => {
    const dec = new KvDecoder(models.f32, { slots: 2, maxLen: 48 });
    const ref = fullLogits(models.f32, ids.slice(0, 10));
    dec.forward([{ slot: 1, ids: randomIds(config, 12, 9) }]);
    dec.reset(1);
    const before = memoryStats().liveBuffers;
    let last: Float32Array = new Float32Array();
    for (let t = 0; t < 10; t++) last = dec.forward([{ slot: 1, ids: [ids[t]] }])[0];
    expect(memoryStats().liveBuffers).toBe(before);
    expect(maxDiff(last, ref.subarray(9 * V))).toBeLessThanOrEqual(1e-5);
    dec.truncate(1, 5);
    expect(maxDiff(dec.forward([{ slot: 1, ids: ids.slice(5, 10) }])[0], ref.subarray(9 * V))).toBeLessThanOrEqual(1e-5);
    dec.dispose();
  });

  it('refuses overflowing the cache, bad slots, duplicate slots and out-of-vocabulary ids', () => {
    const dec = new KvDecoder(models.f32, { slots: 2, maxLen: 8 });
    expect(() => dec.forward([{ slot: 0, ids: randomIds(config, 9, 1) }])).toThrow(/more than the cache's 8/);
    expect(() => dec.forward([{ slot: 2, ids: [1] }])).toThrow(/slot 2 is outside 0..1/);
    expect(() => dec.forward([{ slot: 0, ids: [1] }, { slot: 0, ids: [2] }])).toThrow(/appears twice/);
    expect(() => dec.forward([{ slot: 0, ids: [V] }])).toThrow(/outside the vocabulary/);
    expect(dec.lengths[0]).toBe(0);
    expect(() => new KvDecoder(models.f32, { slots: 1, maxLen: 49 })).toThrow(/max_position_embeddings/);
    dec.dispose();
  });
});
