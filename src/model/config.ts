import { readFileSync } from 'node:fs';

/** The fields of a Hugging Face LlamaForCausalLM config.json that the model uses. */
export interface LlamaConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  rms_norm_eps: number;
  rope_theta: number;
  vocab_size: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  bos_token_id?: number;
  eos_token_id?: number;
  pad_token_id?: number;
}

const required = [
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'vocab_size',
  'max_position_embeddings',
] as const;

/** Validates a parsed config.json, filling the fields Hugging Face itself defaults. */
export function parseLlamaConfig(raw: unknown, source = 'config.json'): LlamaConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${source}: expected a JSON object`);
  }
  const r = raw as Record<string, unknown>;
  const int = (field: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new Error(`${source}: field '${field}' must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const num = (field: string, v: unknown): number => {
    if (typeof v !== 'number' || !(v > 0)) {
      throw new Error(`${source}: field '${field}' must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  for (const f of required) if (!(f in r)) throw new Error(`${source}: missing field '${f}'`);
  const cfg: LlamaConfig = {
    hidden_size: int('hidden_size', r.hidden_size),
    intermediate_size: int('intermediate_size', r.intermediate_size),
    num_hidden_layers: int('num_hidden_layers', r.num_hidden_layers),
    num_attention_heads: int('num_attention_heads', r.num_attention_heads),
    num_key_value_heads: int('num_key_value_heads', r.num_key_value_heads ?? r.num_attention_heads),
    rms_norm_eps: num('rms_norm_eps', r.rms_norm_eps ?? 1e-6),
    rope_theta: num('rope_theta', r.rope_theta ?? 10000),
    vocab_size: int('vocab_size', r.vocab_size),
    max_position_embeddings: int('max_position_embeddings', r.max_position_embeddings),
    tie_word_embeddings: Boolean(r.tie_word_embeddings ?? false),
  };
  for (const f of ['bos_token_id', 'eos_token_id', 'pad_token_id'] as const) {
    if (typeof r[f] === 'number') cfg[f] = r[f] as number;
  }
  if (cfg.hidden_size % cfg.num_attention_heads !== 0) {
    throw new Error(`${source}: hidden_size ${cfg.hidden_size} is not divisible by num_attention_heads ${cfg.num_attention_heads}`);
  }
  if (cfg.num_attention_heads % cfg.num_key_value_heads !== 0) {
    throw new Error(`${source}: num_key_value_heads ${cfg.num_key_value_heads} must divide num_attention_heads ${cfg.num_attention_heads}`);
  }
  if ((cfg.hidden_size / cfg.num_attention_heads) % 2 !== 0) {
    throw new Error(`${source}: head dimension ${cfg.hidden_size / cfg.num_attention_heads} must be even for rotary embeddings`);
  }
  if (r.hidden_act !== undefined && r.hidden_act !== 'silu') {
    throw new Error(`${source}: hidden_act ${JSON.stringify(r.hidden_act)} is not supported (Llama uses "silu")`);
  }
  for (const f of ['attention_bias', 'mlp_bias'] as const) {
    if (r[f] === true) throw new Error(`${source}: ${f} is true; biases are not supported`);
  }
  if (typeof r.head_dim === 'number' && r.head_dim !== cfg.hidden_size / cfg.num_attention_heads) {
    throw new Error(`${source}: head_dim ${r.head_dim} differs from hidden_size / num_attention_heads; not supported yet`);
  }
  if (r.rope_scaling !== undefined && r.rope_scaling !== null) {
    throw new Error(`${source}: rope_scaling is not supported yet`);
  }
  return cfg;
}

export function loadLlamaConfig(path: string): LlamaConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read config: ${(e as Error).message}`);
  }
  return parseLlamaConfig(raw, path);
}

export const headDim = (c: LlamaConfig): number => c.hidden_size / c.num_attention_heads;
