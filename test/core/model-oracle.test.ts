// The native model's forward against onnxruntime-node running the same Llama as a plain ONNX graph.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LlamaModel, makeBatch, type LlamaConfig } from '../../src/model/index.js';
import { bf16ToF32, withScope } from '../../src/tensor/index.js';
import { runLlamaOnnx } from '../oracle/llama-onnx.js';
import { readLlama2c, toHfRopeLayout } from '../oracle/llama2c.js';
import { randomIds, randomLlamaWeights, tinyLlamaConfig } from '../oracle/random-llama.js';

function nativeLogits(config: LlamaConfig, weights: Map<string, Float32Array>, ids: number[], B: number, T: number, dtype: 'f32' | 'bf16' = 'f32', docs?: { cuSeqlens: Int32Array; positions: Int32Array }) {
  return withScope(() => {
    const model = LlamaModel.fromWeights(config, weights, dtype);
    const logits = model.forwardLogits(makeBatch(Int32Array.from(ids), B, undefined, docs ?? {}));
    const out = dtype === 'f32' ? (logits.toArray() as Float32Array) : bf16ToF32(logits.toArray() as Uint16Array);
    model.dispose();
    return out;
  });
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('forward pass against onnxruntime-node (f32)', () => {
  for (const tied of [false, true]) {
    it(`tiny GQA Llama, ${tied ? 'tied' : 'untied'} embeddings: max |logit difference| <= 1e-4`, async () => {
      const config = tinyLlamaConfig({ tie_word_embeddings: tied, rope_theta: tied ? 500000 : 10000 });
      const weights = randomLlamaWeights(config, tied ? 3 : 4);
      const [B, T] = [2, 7];
      const ids = randomIds(config, B * T, 5);
      const ours = nativeLogits(config, weights, ids, B, T);
      const ref = await runLlamaOnnx(config, weights, ids, B, T);
      expect(ours.length).toBe(ref.length);
      expect(maxDiff(ours, ref)).toBeLessThanOrEqual(1e-4);
    });
  }

  it('packed documents: each document gives the logits it gives alone', async () => {
    const config = tinyLlamaConfig();
    const weights = randomLlamaWeights(config, 6);
    const lens = [3, 5, 4];
    const T = lens.reduce((a, b) => a + b);
    const ids = randomIds(config, T, 8);
    const cuSeqlens = new Int32Array(lens.length + 1), positions = new Int32Array(T);
    let at = 0;
    lens.forEach((n, d) => {
      for (let i = 0; i < n; i++, at++) positions[at] = i;
      cuSeqlens[d + 1] = at;
    });
    const packed = nativeLogits(config, weights, ids, 1, T, 'f32', { cuSeqlens, positions });
    at = 0;
    for (const n of lens) {
      const alone = await runLlamaOnnx(config, weights, ids.slice(at, at + n), 1, n);
      const V = config.vocab_size;
      expect(maxDiff(packed.slice(at * V, (at + n) * V), alone)).toBeLessThanOrEqual(1e-4);
      at += n;
    }
  });

  it('the bf16 model stays within bf16 tolerance of the f32 oracle', async () => {
    const config = tinyLlamaConfig();
    const weights = randomLlamaWeights(config, 7);
    const ids = randomIds(config, 2 * 7, 9);
    const ref = await runLlamaOnnx(config, weights, ids, 2, 7);
    const ours = nativeLogits(config, weights, ids, 2, 7, 'bf16');
    const peak = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(maxDiff(ours, ref)).toBeLessThan(0.05 * peak);
    expect(maxDiff(ours, ref)).toBeGreaterThan(0); // it really ran in bf16
  });
});

const root = fileURLToPath(new URL('../..', import.meta.url));
const stories = path.join(path.resolve(root, '../shared'), 'data/stories260k/stories260K.bin');
const present = existsSync(stories);

describe.skipIf(!present)(`forward pass on the trained stories260K weights${present ? '' : ` (skipped: ${stories} is absent)`}`, () => {
  it('matches onnxruntime-node within 1e-4', async () => {
    const { config, weights } = readLlama2c(stories);
    const hf = toHfRopeLayout(config, weights);
    const [B, T] = [2, 24];
    const ids = randomIds(config, B * T, 10);
    const ref = await runLlamaOnnx(config, hf, ids, B, T);
    expect(maxDiff(nativeLogits(config, hf, ids, B, T), ref)).toBeLessThanOrEqual(1e-4);
  });
});
