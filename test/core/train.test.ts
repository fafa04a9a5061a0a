// The model learns, and a long run holds its memory flat.
import { describe, expect, it } from 'vitest';
import { LlamaModel, initLlamaWeights, resolveConfig, countParams } from '../../src/model/index.js';
import { memoryStats, withScope } from '../../src/tensor/index.js';
import { AdamW, hostBatch, trainStep } from '../../src/train/index.js';
import { randint, rng } from '../helpers/random.js';
import { TINY } from '../helpers/tiny.js';

/** Next-token targets for rows of ids: each row predicts its own continuation; the last is untrained. */
function shiftTargets(ids: Int32Array, B: number, T: number): Int32Array {
  const t = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) t[b * T + i] = i + 1 < T ? ids[b * T + i + 1] : -100;
  return t;
}

describe('training', () => {
  it('a ~1M-parameter bf16 model overfits a fixed batch (loss < 0.1)', () => {
    const cfg = resolveConfig('tiny-1m');
    expect(countParams(cfg)).toBeGreaterThan(0.8e6);
    const [B, T] = [4, 32];
    const ids = randint(B * T, cfg.vocab_size, rng(40));
    const model = LlamaModel.fromWeights(cfg, initLlamaWeights(cfg, 41), 'bf16');
    const opt = new AdamW(model.weights, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 });
    const mb = hostBatch(ids, shiftTargets(ids, B, T), B, T);
    const losses: number[] = [];
    for (let step = 0; step < 400; step++) {
      const { loss } = trainStep(model, opt, [mb], 3e-3);
      losses.push(loss);
      if (loss < 0.1) break;
    }
    // Random tokens start at about ln(512) = 6.2 nats.
    expect(losses[0]).toBeGreaterThan(5.5);
    expect(losses.at(-1)!).toBeLessThan(0.1);
    model.dispose();
    opt.dispose();
  });

  it('10,000 training steps leak no native buffers and grow resident memory by little', async () => {
    const cfg = { ...TINY, hidden_size: 16, intermediate_size: 24, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 32 };
    const [B, T] = [2, 6];
    const before = memoryStats();
    {
      const model = LlamaModel.fromWeights(cfg, initLlamaWeights(cfg, 42), 'bf16');
      const opt = new AdamW(model.weights);
      const r = rng(43);
      let rssAt1k = 0;
      let live = 0;
      for (let step = 1; step <= 10_000; step++) {
        withScope(() => {
          const ids = randint(B * T, cfg.vocab_size, r);
          trainStep(model, opt, [hostBatch(ids, shiftTargets(ids, B, T), B, T)], 1e-3);
        });
        // Node runs N-API finalizers of collected tensor handles when the event loop turns, as any
        // real training loop's data loading lets it; a loop that never yields would only pile them up.
        if (step % 100 === 0) await new Promise(setImmediate);
        if (step === 1000) {
          rssAt1k = process.memoryUsage().rss;
          live = memoryStats().liveBuffers;
        }
      }
      expect(memoryStats().liveBuffers).toBe(live);
      const growth = process.memoryUsage().rss - rssAt1k;
      expect(growth).toBeLessThan(16 * 2 ** 20);
      model.dispose();
      opt.dispose();
    }
    expect(memoryStats()).toEqual(before);
  });
});
