// The whole model's gradients against finite differences, and checkpointing against no checkpointing.
import { describe, expect, it } from 'vitest';
import { LlamaModel, initLlamaWeights, makeBatch } from '../../src/model/index.js';
import { memoryStats, withScope } from '../../src/tensor/index.js';
import { gradCheck } from '../helpers/gradcheck.js';
import { randint, rng } from '../helpers/random.js';
import { TINY } from '../helpers/tiny.js';

function batchOf(B: number, T: number, V: number, seed: number) {
  const r = rng(seed);
  const ids = randint(B * T, V, r);
  const targets = randint(B * T, V, r);
  targets[3] = -100;
  targets[B * T - 1] = -100;
  return { ids, targets, B, T };
}

describe('whole-model gradients (f32, tiny GQA config)', () => {
  for (const tied of [false, true]) {
    it(`match finite differences (${tied ? 'tied' : 'untied'} embeddings)`, () => {
      const cfg = { ...TINY, tie_word_embeddings: tied };
      // A large init makes the nonlinear parts matter; std 0.02 would leave the model nearly linear.
      const weights = initLlamaWeights(cfg, 11, 0.3);
      const { ids, targets, B, T } = batchOf(2, 7, cfg.vocab_size, 5);
      const model = LlamaModel.fromWeights(cfg, weights, 'f32', { headChunk: 5 });
      const batch = makeBatch(ids, B, targets);
      model.zeroGrads();
      const res = model.forwardBackward(batch, 1);
      expect(res.count).toBe(B * T - 2);
      const names = [...model.params.keys()];
      const grads = names.map((n) => model.grads.get(n)!.toArray() as Float32Array);
      const inputs = names.map((n) => weights.get(n)!);
      const loss = () => {
        names.forEach((n, i) => model.params.get(n)!.writeBytes(0, inputs[i]));
        return model.forwardLoss(batch).lossSum;
      };
      // The forward loss and the training forward agree exactly.
      expect(loss()).toBe(res.lossSum);
      gradCheck('llama', inputs, grads, loss, { coords: 3, h: 3e-3, hCoord: 1e-2 });
      model.dispose();
    });
  }

  it('activation checkpointing gives the same gradients, bit for bit', () => {
    const weights = initLlamaWeights(TINY, 12, 0.1);
    const { ids, targets, B } = batchOf(3, 9, TINY.vocab_size, 6);
    const run = (checkpointing: boolean) =>
      withScope(() => {
        const model = LlamaModel.fromWeights(TINY, weights, 'bf16', { checkpointing });
        const batch = makeBatch(ids, B, targets);
        model.zeroGrads();
        const loss = model.forwardBackward(batch, 1 / 25);
        const grads = [...model.grads].map(([n, g]) => [n, Array.from(g.toArray())] as const);
        model.dispose();
        return { loss, grads };
      });
    const before = memoryStats().liveBuffers;
    const plain = run(false);
    const ckpt = run(true);
    expect(memoryStats().liveBuffers).toBe(before);
    expect(ckpt.loss).toEqual(plain.loss);
    for (let i = 0; i < plain.grads.length; i++) expect(ckpt.grads[i]).toEqual(plain.grads[i]);
  });

  it('micro-batches with gradScale 1/total add up to the whole batch', () => {
    const weights = initLlamaWeights(TINY, 13, 0.1);
    const { ids, targets, B, T } = batchOf(4, 6, TINY.vocab_size, 7);
    const total = targets.filter((t) => t !== -100).length;
    withScope(() => {
      const whole = LlamaModel.fromWeights(TINY, weights, 'f32');
      whole.zeroGrads();
      whole.forwardBackward(makeBatch(ids, B, targets), 1 / total);
      const split = LlamaModel.fromWeights(TINY, weights, 'f32');
      split.zeroGrads();
      for (const half of [0, 1]) {
        const rows = B / 2;
        const sl = (a: Int32Array) => a.slice(half * rows * T, (half + 1) * rows * T);
        split.forwardBackward(makeBatch(sl(ids), rows, sl(targets)), 1 / total);
      }
      for (const [name, g] of whole.grads) {
        const a = g.toArray() as Float32Array, b = split.grads.get(name)!.toArray() as Float32Array;
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-6 + 1e-4 * Math.abs(a[i]));
      }
      whole.dispose();
      split.dispose();
    });
  });
});
