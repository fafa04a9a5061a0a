import type { LlamaConfig } from '../../src/model/config.js';
import { llamaWeightShapes, type LlamaWeights } from './llama-onnx.js';
import { mulberry32, randomArray } from './mulberry32.js';

/** A tiny config with the shapes that catch layout bugs: GQA, intermediate not a multiple of hidden. */
export function tinyLlamaConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    hidden_size: 32,
    intermediate_size: 72,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    vocab_size: 50,
    max_position_embeddings: 64,
    tie_word_embeddings: false,
    ...overrides,
  };
}

/**
 * Seeded random weights scaled so activations stay O(1): Linear weights ~ U(±s/sqrt(in)), norm
 * scales in [0.7, 1.3] (never zero, never all one, so a dropped scale is visible), embeddings ~ U(±1).
 * q/k get s = 2 so attention is far from uniform and masking and scaling mistakes show.
 */
export function randomLlamaWeights(c: LlamaConfig, seed: number): LlamaWeights {
  const rand = mulberry32(seed);
  const w: LlamaWeights = new Map();
  for (const [name, dims] of llamaWeightShapes(c)) {
    const n = dims.reduce((a, b) => a * b, 1);
    if (dims.length === 1) {
      w.set(name, Float32Array.from({ length: n }, () => 1 + 0.3 * (2 * rand() - 1)));
    } else if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') {
      w.set(name, randomArray(rand, n));
    } else {
      const s = /\.(q|k)_proj\./.test(name) ? 2 : 1;
      w.set(name, randomArray(rand, n, s / Math.sqrt(dims[1])));
    }
  }
  return w;
}

export function randomIds(c: LlamaConfig, n: number, seed: number): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(rand() * c.vocab_size));
}
