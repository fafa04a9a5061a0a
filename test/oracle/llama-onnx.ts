import type { LlamaConfig } from '../../src/model/config.js';
import { createSession, ort, runF32 } from '../../bench/onnx/session.js';
import { DataType, encodeModel, int64s, scalar, tensor, type AttrValue, type NodeSpec, type TensorInit } from '../../bench/onnx/proto.js';

export type LlamaWeights = Map<string, Float32Array>;

/** The Hugging Face parameter names of a LlamaForCausalLM and their shapes. */
export function llamaWeightShapes(c: LlamaConfig): Map<string, number[]> {
  const H = c.hidden_size;
  const D = H / c.num_attention_heads;
  const kv = c.num_key_value_heads * D;
  const I = c.intermediate_size;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [c.vocab_size, H]]]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    shapes.set(`${p}.input_layernorm.weight`, [H]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [H, H]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [kv, H]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [kv, H]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [H, H]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [H]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [I, H]);
    shapes.set(`${p}.mlp.up_proj.weight`, [I, H]);
    shapes.set(`${p}.mlp.down_proj.weight`, [H, I]);
  }
  shapes.set('model.norm.weight', [H]);
  if (!c.tie_word_embeddings) shapes.set('lm_head.weight', [c.vocab_size, H]);
  return shapes;
}

/** Throws naming the first missing, extra or mis-sized weight. */
export function checkLlamaWeights(c: LlamaConfig, w: LlamaWeights): void {
  const shapes = llamaWeightShapes(c);
  for (const [name, dims] of shapes) {
    const t = w.get(name);
    if (!t) throw new Error(`Llama weights: missing '${name}' [${dims.join(', ')}]`);
    const n = dims.reduce((a, b) => a * b, 1);
    if (t.length !== n) throw new Error(`Llama weights: '${name}' has ${t.length} values, expected [${dims.join(', ')}] = ${n}`);
  }
  for (const name of w.keys()) {
    if (!shapes.has(name)) {
      throw new Error(`Llama weights: unexpected '${name}'${name === 'lm_head.weight' ? ' (the config ties word embeddings)' : ''}`);
    }
  }
}

function checkBatch(c: LlamaConfig, B: number, T: number): void {
  if (!Number.isInteger(B) || B <= 0 || !Number.isInteger(T) || T <= 0) throw new Error(`Llama input: B=${B} and T=${T} must be positive integers`);
  if (T > c.max_position_embeddings) throw new Error(`Llama input: T=${T} exceeds max_position_embeddings ${c.max_position_embeddings}`);
}

/** Checks token ids against the batch shape and vocabulary; returns them as int64. */
export function checkInputIds(c: LlamaConfig, ids: ArrayLike<number>, B: number, T: number): BigInt64Array {
  checkBatch(c, B, T);
  if (ids.length !== B * T) throw new Error(`Llama input: ${ids.length} token ids for [B=${B}, T=${T}] = ${B * T}`);
  const out = new BigInt64Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= c.vocab_size) {
      throw new Error(`Llama input: token id ${id} at [${Math.floor(i / T)}, ${i % T}] is outside the vocabulary [0, ${c.vocab_size})`);
    }
    out[i] = BigInt(id);
  }
  return out;
}

/** Accumulates nodes under unique names, so the builder reads like the forward it encodes. */
class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorInit[] = [];
  private count = 0;

  op(op: string, inputs: string[], attrs?: Record<string, AttrValue>, name?: string): string {
    const out = name ?? `${op.toLowerCase()}_${this.count++}`;
    this.nodes.push({ op, inputs, outputs: [out], attrs });
    return out;
  }

  init(t: TensorInit): string {
    this.initializers.push(t);
    return t.name;
  }
}

/**
 * The same LlamaForCausalLM forward as Hugging Face in f32, as an ONNX graph of standard ops only,
 * so no fused ORT kernel stands between the weights and the logits.
 * Input: int64 input_ids [B, T]; output: f32 logits [B, T, vocab].
 */
export function buildLlamaOnnx(c: LlamaConfig, weights: LlamaWeights, B: number, T: number): Uint8Array {
  checkLlamaWeights(c, weights);
  checkBatch(c, B, T);
  const g = new GraphBuilder();
  const H = c.hidden_size;
  const Hq = c.num_attention_heads;
  const Hkv = c.num_key_value_heads;
  const D = H / Hq;
  const rep = Hq / Hkv;
  const shapes = llamaWeightShapes(c);
  const added = new Set<string>();
  // Tied embeddings are read twice but stored once.
  const w = (name: string): string => {
    if (!added.has(name)) g.init(tensor(name, shapes.get(name)!, weights.get(name)!));
    added.add(name);
    return name;
  };
  // torch Linear keeps W as [out, in]; y = x·Wᵀ. The Transpose of an initializer is what keeps
  // the graph in the checkpoint's layout rather than a pre-transposed copy.
  const linear = (x: string, name: string): string => g.op('MatMul', [x, g.op('Transpose', [w(name)], { perm: [1, 0] })]);

  const eps = g.init(scalar('rms_eps', c.rms_norm_eps));
  const rmsNorm = (x: string, weight: string): string => {
    const ms = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    return g.op('Mul', [g.op('Div', [x, g.op('Sqrt', [g.op('Add', [ms, eps])])]), w(weight)]);
  };

  // RoPE tables in the HF layout: inv_freq[i] = theta^(-2i/D), emb = cat(freqs, freqs).
  const cos = new Float32Array(T * D);
  const sin = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < D / 2; i++) {
      const angle = t * Math.pow(c.rope_theta, (-2 * i) / D);
      cos[t * D + i] = cos[t * D + i + D / 2] = Math.cos(angle);
      sin[t * D + i] = sin[t * D + i + D / 2] = Math.sin(angle);
    }
  }
  const ropeCos = g.init(tensor('rope_cos', [T, D], cos));
  const ropeSin = g.init(tensor('rope_sin', [T, D], sin));
  const lowStart = g.init(int64s('half_lo_start', [0]));
  const mid = g.init(int64s('half_mid', [D / 2]));
  const highEnd = g.init(int64s('half_hi_end', [D]));
  const lastAxis = g.init(int64s('last_axis', [-1]));
  // rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2]); x is [B, heads, T, D].
  const rope = (x: string): string => {
    const lo = g.op('Slice', [x, lowStart, mid, lastAxis]);
    const hi = g.op('Slice', [x, mid, highEnd, lastAxis]);
    const rotated = g.op('Concat', [g.op('Neg', [hi]), lo], { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, ropeCos]), g.op('Mul', [rotated, ropeSin])]);
  };

  const mask = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -Infinity;
  const causal = g.init(tensor('causal_mask', [T, T], mask));
  const scale = g.init(scalar('attn_scale', 1 / Math.sqrt(D)));
  const qShape = g.init(int64s('q_shape', [B, T, Hq, D]));
  const kvShape = g.init(int64s('kv_shape', [B, T, Hkv, D]));
  const kvSplit = g.init(int64s('kv_split_shape', [B, Hkv, 1, T, D]));
  const kvExpand = g.init(int64s('kv_expand_shape', [B, Hkv, rep, T, D]));
  const kvRepeated = g.init(int64s('kv_repeated_shape', [B, Hq, T, D]));
  const hiddenShape = g.init(int64s('hidden_shape', [B, T, H]));
  const heads = (x: string, shape: string): string => g.op('Transpose', [g.op('Reshape', [x, shape])], { perm: [0, 2, 1, 3] });
  // HF repeat_kv: kv head j serves query heads j*rep .. j*rep+rep-1.
  const repeatKv = (x: string): string =>
    rep === 1 ? x : g.op('Reshape', [g.op('Expand', [g.op('Reshape', [x, kvSplit]), kvExpand]), kvRepeated]);

  let x = g.op('Gather', [w('model.embed_tokens.weight'), 'input_ids'], { axis: 0 });
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const h = rmsNorm(x, `${p}.input_layernorm.weight`);
    const q = rope(heads(linear(h, `${p}.self_attn.q_proj.weight`), qShape));
    const k = repeatKv(rope(heads(linear(h, `${p}.self_attn.k_proj.weight`), kvShape)));
    const v = repeatKv(heads(linear(h, `${p}.self_attn.v_proj.weight`), kvShape));
    const scores = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), scale]);
    const probs = g.op('Softmax', [g.op('Add', [scores, causal])], { axis: -1 });
    const attn = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] }), hiddenShape]);
    x = g.op('Add', [x, linear(attn, `${p}.self_attn.o_proj.weight`)]);

    const h2 = rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const gate = linear(h2, `${p}.mlp.gate_proj.weight`);
    const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
    const up = linear(h2, `${p}.mlp.up_proj.weight`);
    x = g.op('Add', [x, linear(g.op('Mul', [silu, up]), `${p}.mlp.down_proj.weight`)]);
  }
  const head = c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const normed = rmsNorm(x, 'model.norm.weight');
  g.op('MatMul', [normed, g.op('Transpose', [w(head)], { perm: [1, 0] })], undefined, 'logits');

  return encodeModel({
    name: 'llama_oracle',
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [{ name: 'input_ids', elemType: DataType.INT64, shape: [B, T] }],
    outputs: [{ name: 'logits', elemType: DataType.FLOAT, shape: [B, T, c.vocab_size] }],
  });
}

/** Builds the oracle graph, runs it once in onnxruntime-node (f32, no graph fusions) and returns logits [B, T, vocab]. */
export async function runLlamaOnnx(c: LlamaConfig, weights: LlamaWeights, ids: ArrayLike<number>, B: number, T: number): Promise<Float32Array> {
  const input = checkInputIds(c, ids, B, T);
  const session = await createSession(buildLlamaOnnx(c, weights, B, T), { optimization: 'disabled' });
  try {
    return await runF32(session, { input_ids: new ort.Tensor('int64', input, [B, T]) }, 'logits');
  } finally {
    await session.release();
  }
}
