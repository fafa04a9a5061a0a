import { describe, expect, it } from 'vitest';
import { buildLlamaOnnx, runLlamaOnnx } from './llama-onnx.js';
import { naiveLlamaForward, type Perturbation } from './naive-llama.js';
import { randomIds, randomLlamaWeights, tinyLlamaConfig } from './random-llama.js';

const B = 2;
const T = 7;
const TOL = 1e-5;

const maxAbsDiff = (x: Float32Array, y: Float32Array): number => {
  if (x.length !== y.length) throw new Error(`length ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
};

describe('ONNX Llama oracle against the naive TypeScript forward', () => {
  for (const tied of [false, true]) {
    describe(tied ? 'tied embeddings' : 'separate lm_head', () => {
      const config = tinyLlamaConfig({ tie_word_embeddings: tied, rope_theta: tied ? 500000 : 10000 });
      const weights = randomLlamaWeights(config, tied ? 2 : 1);
      const ids = randomIds(config, B * T, 3);
      let onnx: Float32Array;

      it(`agrees within ${TOL} on 2 layers, GQA 4/2, hidden 32, intermediate 72, vocab 50, B=${B}, T=${T}`, async () => {
        onnx = await runLlamaOnnx(config, weights, ids, B, T);
        const naive = naiveLlamaForward(config, weights, ids, B, T);
        expect(onnx.length).toBe(B * T * config.vocab_size);
        // Logits of O(1), so an agreement at 1e-5 is not an agreement of two near-zero outputs.
        expect(Math.max(...naive.map(Math.abs))).toBeGreaterThan(1);
        expect(maxAbsDiff(onnx, naive)).toBeLessThanOrEqual(TOL);
      });

      const perturbations: Perturbation[] = [
        'rope-interleaved',
        'rope-theta-doubled',
        'no-causal-mask',
        'no-attn-scale',
        'gqa-modulo',
        'norm-no-weight',
        'norm-mean-centred',
        'swiglu-swapped',
      ];
      for (const p of perturbations) {
        it(`fails the same comparison when the reference has ${p}`, () => {
          const wrong = naiveLlamaForward(config, weights, ids, B, T, p);
          // A hundred times the tolerance: the oracle does not pass these by a hair.
          expect(maxAbsDiff(onnx, wrong)).toBeGreaterThan(100 * TOL);
        });
      }
    });
  }

  it('depends on the future only through the mask: logits at t match a run truncated to t+1 tokens', async () => {
    const config = tinyLlamaConfig();
    const weights = randomLlamaWeights(config, 5);
    const ids = randomIds(config, T, 6);
    const full = await runLlamaOnnx(config, weights, ids, 1, T);
    const prefix = await runLlamaOnnx(config, weights, ids.slice(0, 4), 1, 4);
    expect(maxAbsDiff(full.subarray(0, 4 * config.vocab_size), prefix)).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(full.subarray(4 * config.vocab_size, 5 * config.vocab_size), prefix.subarray(3 * config.vocab_size))).toBeGreaterThan(100 * TOL);
  });

  it('names the missing, extra or mis-sized weight and the bad token id', async () => {
    const config = tinyLlamaConfig();
    const weights = randomLlamaWeights(config, 1);
    const missing = new Map(weights);
    missing.delete('model.layers.1.mlp.up_proj.weight');
    expect(() => buildLlamaOnnx(config, missing, 1, 2)).toThrow(/missing 'model\.layers\.1\.mlp\.up_proj\.weight' \[72, 32\]/);
    const short = new Map(weights).set('model.norm.weight', new Float32Array(31));
    expect(() => buildLlamaOnnx(config, short, 1, 2)).toThrow(/'model\.norm\.weight' has 31 values, expected \[32\]/);
    expect(() => buildLlamaOnnx({ ...config, tie_word_embeddings: true }, weights, 1, 2)).toThrow(/unexpected 'lm_head\.weight' \(the config ties/);
    await expect(runLlamaOnnx(config, weights, [1, 50], 1, 2)).rejects.toThrow(/token id 50 at \[0, 1\] is outside the vocabulary \[0, 50\)/);
    await expect(runLlamaOnnx(config, weights, [1, 2, 3], 1, 2)).rejects.toThrow(/3 token ids for \[B=1, T=2\]/);
  });
});
