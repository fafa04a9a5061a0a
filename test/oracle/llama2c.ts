import { readFileSync } from 'node:fs';
import type { LlamaConfig } from '../../src/model/config.js';
import type { LlamaWeights } from './llama-onnx.js';

/**
 * Reads a legacy (version 0) llama2.c checkpoint: a 7 x int32 header, then f32 tensors in a fixed
 * order. Weights keep llama2.c's own q/k row order, whose RoPE pairs dims (2i, 2i+1); see
 * toHfRopeLayout for the Hugging Face layout.
 */
export function readLlama2c(path: string): { config: LlamaConfig; weights: LlamaWeights } {
  const buf = readFileSync(path);
  if (buf.byteLength < 28) throw new Error(`${path}: ${buf.byteLength} bytes is too short for a llama2.c header`);
  const [dim, hidden, layers, heads, kvHeads, signedVocab, seqLen] = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(4 * i));
  const vocab = Math.abs(signedVocab);
  const head = dim / heads;
  const kvDim = kvHeads * head;
  const f32 = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.byteLength - ((buf.byteLength - 28) % 4)));
  let at = 0;
  const take = (n: number): Float32Array => {
    if (at + n > f32.length) throw new Error(`${path}: truncated at float ${at}, needs ${n} more of ${f32.length}`);
    return f32.subarray(at, (at += n));
  };
  const perLayer = (n: number): Float32Array[] => {
    const all = take(layers * n);
    return Array.from({ length: layers }, (_, l) => all.subarray(l * n, (l + 1) * n));
  };
  const weights: LlamaWeights = new Map();
  weights.set('model.embed_tokens.weight', take(vocab * dim));
  const groups: [string, number][] = [
    ['input_layernorm', dim],
    ['self_attn.q_proj', dim * dim],
    ['self_attn.k_proj', kvDim * dim],
    ['self_attn.v_proj', kvDim * dim],
    ['self_attn.o_proj', dim * dim],
    ['post_attention_layernorm', dim],
    ['mlp.gate_proj', hidden * dim],
    ['mlp.down_proj', dim * hidden],
    ['mlp.up_proj', hidden * dim],
  ];
  for (const [name, n] of groups) perLayer(n).forEach((w, l) => weights.set(`model.layers.${l}.${name}.weight`, w));
  weights.set('model.norm.weight', take(dim));
  take(seqLen * head); // the precomputed cos/sin tables, which both forwards recompute
  if (signedVocab < 0) weights.set('lm_head.weight', take(vocab * dim));
  if (at !== f32.length) throw new Error(`${path}: ${f32.length - at} floats left over after the last tensor`);
  const config: LlamaConfig = {
    hidden_size: dim,
    intermediate_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    vocab_size: vocab,
    max_position_embeddings: seqLen,
    tie_word_embeddings: signedVocab > 0,
  };
  return { config, weights };
}

/**
 * The row permutation Hugging Face's convert_llama_weights_to_hf applies to q_proj and k_proj:
 * within each head, row 2i+c moves to c*(D/2)+i, so rotate_half pairs what llama2.c paired.
 */
export function toHfRopeLayout(c: LlamaConfig, weights: LlamaWeights): LlamaWeights {
  const D = c.hidden_size / c.num_attention_heads;
  const H = c.hidden_size;
  const out = new Map(weights);
  const permute = (w: Float32Array, heads: number): Float32Array => {
    const p = new Float32Array(w.length);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < D / 2; i++) {
        for (let comp = 0; comp < 2; comp++) {
          const from = (h * D + 2 * i + comp) * H;
          p.set(w.subarray(from, from + H), (h * D + comp * (D / 2) + i) * H);
        }
      }
    }
    return p;
  };
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const q = `model.layers.${l}.self_attn.q_proj.weight`;
    const k = `model.layers.${l}.self_attn.k_proj.weight`;
    out.set(q, permute(weights.get(q)!, c.num_attention_heads));
    out.set(k, permute(weights.get(k)!, c.num_key_value_heads));
  }
  return out;
}

/** The vocabulary of a llama2.c tokenizer.bin: max length, then (score f32, length i32, bytes) per token. */
export function readLlama2cVocab(path: string, vocabSize: number): string[] {
  const buf = readFileSync(path);
  let at = 4;
  const vocab: string[] = [];
  for (let i = 0; i < vocabSize; i++) {
    if (at + 8 > buf.byteLength) throw new Error(`${path}: truncated at token ${i}`);
    const len = buf.readInt32LE(at + 4);
    vocab.push(buf.subarray(at + 8, at + 8 + len).toString('utf8'));
    at += 8 + len;
  }
  return vocab;
}
