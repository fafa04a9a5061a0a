import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runLlamaOnnx } from './llama-onnx.js';
import { readLlama2c, readLlama2cVocab, toHfRopeLayout } from './llama2c.js';
import { naiveLlamaForward } from './naive-llama.js';
import { randomIds } from './random-llama.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = path.join(path.resolve(root, '../shared'), 'data/stories260k');
const present = existsSync(path.join(dir, 'stories260K.bin'));

describe.skipIf(!present)(`ONNX Llama oracle on the trained stories260K weights${present ? '' : ` (skipped: ${dir} is absent)`}`, () => {
  const load = () => readLlama2c(path.join(dir, 'stories260K.bin'));

  it('equals llama2.c semantics (interleaved RoPE) once q/k are permuted to the HF layout', async () => {
    const { config, weights } = load();
    expect(config).toMatchObject({ hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 4, vocab_size: 512 });
    const B = 2;
    const T = 16;
    const ids = randomIds(config, B * T, 9);
    const onnx = await runLlamaOnnx(config, toHfRopeLayout(config, weights), ids, B, T);
    const llama2c = naiveLlamaForward(config, weights, ids, B, T, 'rope-interleaved');
    let diff = 0;
    let peak = 0;
    for (let i = 0; i < onnx.length; i++) {
      diff = Math.max(diff, Math.abs(onnx[i] - llama2c[i]));
      peak = Math.max(peak, Math.abs(llama2c[i]));
    }
    // Trained logits peak near 18 over 5 layers, where f32 rounding alone reaches ~1e-5, so this
    // uses the issue's 1e-4 (6e-6 of the peak) rather than the tiny configs' 1e-5.
    expect(peak).toBeGreaterThan(10);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it("greedy decoding from BOS reproduces llama2.c's story, and the unpermuted weights do not", async () => {
    const { config, weights } = load();
    const vocab = readLlama2cVocab(path.join(dir, 'tok512.bin'), config.vocab_size);
    const greedy = async (w: Map<string, Float32Array>): Promise<string> => {
      const ids = [1];
      for (let step = 0; step < 16; step++) {
        const logits = await runLlamaOnnx(config, w, ids, 1, ids.length);
        const last = logits.subarray((ids.length - 1) * config.vocab_size);
        let best = 0;
        for (let v = 1; v < last.length; v++) if (last[v] > last[best]) best = v;
        ids.push(best);
      }
      return ids.slice(1).map((id) => vocab[id]).join('').trim();
    };
    expect(await greedy(toHfRopeLayout(config, weights))).toMatch(/^Once upon a time, there was a little girl named Lily\./);
    expect(await greedy(weights)).not.toMatch(/girl named Lily\./);
  });
});
