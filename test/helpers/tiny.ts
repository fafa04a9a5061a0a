import type { LlamaConfig } from '../../src/model/index.js';

/** 2 layers, GQA (4 query heads over 2 kv heads), an intermediate size that is no multiple of hidden. */
export const TINY: LlamaConfig = {
  hidden_size: 32,
  intermediate_size: 56,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  vocab_size: 61,
  max_position_embeddings: 64,
  tie_word_embeddings: false,
};
