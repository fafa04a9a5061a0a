import type { LlamaConfig } from '../model/config.js';

/** The config fields that fix the parameter shapes; `head_dim` is optional as in Hugging Face. */
export type LlamaShapeConfig = Pick<
  LlamaConfig,
  'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads' | 'num_key_value_heads' | 'vocab_size' | 'tie_word_embeddings'
> & { head_dim?: number };

/** Every parameter of a LlamaForCausalLM under its Hugging Face name, with its shape ([out, in] for linears). */
export function expectedLlamaTensors(c: LlamaShapeConfig): Map<string, number[]> {
  const h = c.hidden_size;
  const hd = c.head_dim ?? h / c.num_attention_heads;
  const q = c.num_attention_heads * hd;
  const kv = c.num_key_value_heads * hd;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [c.vocab_size, h]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    m.set(`${p}self_attn.q_proj.weight`, [q, h]);
    m.set(`${p}self_attn.k_proj.weight`, [kv, h]);
    m.set(`${p}self_attn.v_proj.weight`, [kv, h]);
    m.set(`${p}self_attn.o_proj.weight`, [h, q]);
    m.set(`${p}mlp.gate_proj.weight`, [c.intermediate_size, h]);
    m.set(`${p}mlp.up_proj.weight`, [c.intermediate_size, h]);
    m.set(`${p}mlp.down_proj.weight`, [h, c.intermediate_size]);
    m.set(`${p}input_layernorm.weight`, [h]);
    m.set(`${p}post_attention_layernorm.weight`, [h]);
  }
  m.set('model.norm.weight', [h]);
  if (!c.tie_word_embeddings) m.set('lm_head.weight', [c.vocab_size, h]);
  return m;
}

/**
 * Buffers some older Hugging Face Llama exports carry; transformers recomputes them and ignores
 * them on load, and so do we.
 */
export const isIgnoredHfBuffer = (name: string): boolean => /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(name);

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Throws one error listing every missing, unexpected and misshapen tensor (`source` names the
 * checkpoint, `configName` the config the shapes come from).
 */
export function checkTensorSet(found: ReadonlyMap<string, readonly number[]>, expected: ReadonlyMap<string, readonly number[]>, source: string, configName: string): void {
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const got = found.get(name);
    if (!got) problems.push(`missing tensor '${name}'`);
    else if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      problems.push(`tensor '${name}' has shape ${shapeStr(got)} but ${configName} needs ${shapeStr(shape)}`);
    }
  }
  for (const name of found.keys()) if (!expected.has(name)) problems.push(`unexpected tensor '${name}'`);
  if (problems.length === 0) return;
  const shown = problems.slice(0, 10).join('; ');
  const more = problems.length > 10 ? `; and ${problems.length - 10} more` : '';
  throw new Error(`${source}: tensors do not match ${configName}: ${shown}${more}`);
}
