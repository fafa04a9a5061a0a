// The Llama forward and backward, composed from the native ops by hand (no general autograd).
import { Tensor, keep, ops, withScope, type DType, type Device } from '../tensor/index.js';
import { uploadBatch, type Batch, type DeviceBatch } from './batch.js';
import { headDim, type LlamaConfig } from './config.js';
import { ArenaLayout, type Arenas } from './arenas.js';
import { isNormWeight, llamaParamShapes, toTensors } from './params.js';
import { ropeTables } from './rope-tables.js';

export type { Batch } from './batch.js';

export interface LossResult {
  /** Sum of token losses (nats) over trained tokens. */
  lossSum: number;
  /** Trained tokens: the batch's own count, never read back from the device. */
  count: number;
}

export interface ModelOptions {
  /** Recompute each layer's activations in backward instead of keeping them. */
  checkpointing?: boolean;
  /** Rows of logits materialised at once by the loss head (bounds the [rows, vocab] buffer). */
  headChunk?: number;
}

/** What one layer's forward keeps for its backward. */
interface LayerSaved {
  x: Tensor;
  h1: Tensor;
  rstd1: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  att: Tensor;
  lse: Tensor;
  x2: Tensor;
  h2: Tensor;
  rstd2: Tensor;
  g: Tensor;
  u: Tensor;
  s: Tensor;
}

export class LlamaModel {
  readonly dtype: DType;
  /** Where the weights live; the model allocates everything else of its own there too. */
  readonly device: Device;
  readonly grads = new Map<string, Tensor>();
  /** The weights' storage: one flat buffer per decay group; `params` holds views into it. */
  readonly weights: Arenas;
  private gradStore: Arenas | null = null;
  private readonly cos: Tensor;
  private readonly sin: Tensor;
  private readonly D: number;

  constructor(
    readonly config: LlamaConfig,
    readonly params: Map<string, Tensor>,
    readonly options: ModelOptions = {},
  ) {
    const shapes = llamaParamShapes(config);
    const first = params.get('model.embed_tokens.weight');
    if (!first) throw new Error('model: missing parameter model.embed_tokens.weight');
    this.dtype = first.dtype;
    this.device = first.device;
    for (const [name, shape] of shapes) {
      const t = params.get(name);
      if (!t) throw new Error(`model: missing parameter ${name}`);
      if (t.dtype !== this.dtype || t.shape.join() !== shape.join() || t.device !== this.device) {
        throw new Error(`model: parameter ${name} is ${t.describe()}, expected ${first.describe().replace(/\[.*\]/, `[${shape.join(', ')}]`)}`);
      }
    }
    for (const name of params.keys()) if (!shapes.has(name)) throw new Error(`model: unexpected parameter ${name}`);
    // The given tensors move into the arenas: the map (the caller's) then holds views, in its order.
    this.weights = new ArenaLayout(shapes, (n) => (isNormWeight(n) ? 'no_decay' : 'decay')).allocate(this.dtype, this.device);
    this.weights.copyFrom(params, 'model');
    for (const [name, view] of this.weights.views) {
      params.get(name)!.dispose();
      params.set(name, view);
    }
    this.D = headDim(config);
    ({ cos: this.cos, sin: this.sin } = keepAll(ropeTables(config.max_position_embeddings, this.D, config.rope_theta, this.device)));
  }

  static fromWeights(config: LlamaConfig, weights: Map<string, Float32Array>, dtype: DType, options?: ModelOptions, device: Device = 'cpu'): LlamaModel {
    return new LlamaModel(config, keepAll(toTensors(weights, config, dtype, device)), options);
  }

  private p(name: string): Tensor {
    return this.params.get(name)!;
  }

  private headWeight(): Tensor {
    return this.p(this.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  }

  /** The gradients' storage, laid out as the weights' (allocated by the first zeroGrads()). */
  get gradArenas(): Arenas {
    if (!this.gradStore) this.zeroGrads();
    return this.gradStore!;
  }

  /** Allocates the gradient arenas (the weights' dtype and layout) on first use and zeroes them. */
  zeroGrads(): void {
    if (!this.gradStore) {
      this.gradStore = this.weights.layout.allocate(this.dtype, this.device);
      for (const [name, g] of this.gradStore.views) this.grads.set(name, g);
      return;
    }
    for (const g of this.gradStore.flats) ops.fill(g, 0);
  }

  /** Logits [B·T, V] for every position. */
  forwardLogits(batch: Batch): Tensor {
    return withScope(() => {
      const x = this.trunk(this.upload(batch), null);
      const hf = ops.rmsnorm(x, this.p('model.norm.weight'), this.config.rms_norm_eps).out;
      return ops.matmul(hf, this.headWeight(), { transB: true });
    });
  }

  /** Loss without gradients (validation). */
  forwardLoss(batch: Batch): LossResult {
    return withScope(() => {
      const b = this.upload(batch, true);
      const x = this.trunk(b, null);
      const hf = ops.rmsnorm(x, this.p('model.norm.weight'), this.config.rms_norm_eps).out;
      return this.head(hf, b, null, 0);
    });
  }

  /**
   * Forward and backward of one micro-batch: gradients of gradScale · lossSum are added to
   * this.grads (call zeroGrads() before the first micro-batch of a step). gradScale is
   * 1 / (trained tokens in the global batch), so micro-batches sum to the batch mean.
   */
  forwardBackward(host: Batch, gradScale: number): LossResult {
    if (this.grads.size === 0) this.zeroGrads();
    return withScope(() => {
      const batch = this.upload(host, true);
      const saved: (LayerSaved | Tensor)[] = [];
      const xL = this.trunk(batch, saved);
      const wn = this.p('model.norm.weight');
      const { out: hf, rstd } = ops.rmsnorm(xL, wn, this.config.rms_norm_eps);
      const dhf = Tensor.empty(hf.shape, hf.dtype, this.device);
      const loss = this.head(hf, batch, dhf, gradScale);
      let dx = ops.rmsnormBackward(xL, wn, rstd, dhf, this.grads.get('model.norm.weight')!);
      for (let l = this.config.num_hidden_layers - 1; l >= 0; l--) {
        const s = saved[l];
        // A checkpointed layer recomputes its activations here; they die with this scope.
        const dOut = dx;
        dx = withScope(() => this.layerBackward(l, s instanceof Tensor ? this.layerForward(l, s, batch, false) : s, dOut, batch));
        dOut.dispose();
        // Layer l's input (or saved activations) is needed by no earlier layer's backward.
        if (s instanceof Tensor) s.dispose();
        else for (const t of Object.values(s)) t.dispose();
      }
      xL.dispose();
      ops.embeddingBackward(batch.ids, dx, this.grads.get('model.embed_tokens.weight')!);
      return loss;
    });
  }

  /** Validates the host batch (ids, targets, positions, documents, count) and puts it on the model's device. */
  private upload(batch: Batch, needTargets = false): DeviceBatch {
    if (needTargets && !batch.targets) throw new Error('model: this batch has no targets');
    return uploadBatch(batch, this.config, this.device);
  }

  /** Embedding and all layers; with `saved`, keeps what backward needs (or only layer inputs when checkpointing). */
  private trunk(b: DeviceBatch, saved: (LayerSaved | Tensor)[] | null): Tensor {
    let x = ops.embedding(b.ids, this.p('model.embed_tokens.weight'));
    for (let l = 0; l < this.config.num_hidden_layers; l++) {
      if (!saved) {
        x = withScope(() => this.layerForward(l, x, b, false).x3);
      } else if (this.options.checkpointing) {
        saved.push(x);
        x = withScope(() => this.layerForward(l, x, b, false).x3);
      } else {
        // The scope frees what backward does not need (o, d, the attention output's 4-d handle).
        const s = withScope(() => this.layerForward(l, x, b, true));
        saved.push(s);
        // The next layer's input is this layer's output; saved activations stay alive (kept) until backward.
        x = s.x3;
        delete (s as Partial<LayerSaved & { x3: Tensor }>).x3;
      }
    }
    return x;
  }

  /**
   * One decoder layer. Returns the saved activations plus its output as x3. With keepSaved the
   * activations are moved out of the enclosing scope for backward; otherwise only x3 survives.
   */
  private layerForward(l: number, x: Tensor, batch: DeviceBatch, keepSaved: boolean): LayerSaved & { x3: Tensor } {
    const c = this.config;
    const { B, T } = batch;
    const N = B * T;
    const D = this.D;
    const pre = `model.layers.${l}.`;
    const pos = batch.positions;
    const { out: h1, rstd: rstd1 } = ops.rmsnorm(x, this.p(pre + 'input_layernorm.weight'), c.rms_norm_eps);
    const q = ops.matmul(h1, this.p(pre + 'self_attn.q_proj.weight'), { transB: true });
    const k = ops.matmul(h1, this.p(pre + 'self_attn.k_proj.weight'), { transB: true });
    const v = ops.matmul(h1, this.p(pre + 'self_attn.v_proj.weight'), { transB: true });
    const Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
    ops.rope(q.reshape([N, Hq, D]), pos, this.cos, this.sin);
    ops.rope(k.reshape([N, Hkv, D]), pos, this.cos, this.sin);
    const { out: att4, lse } = ops.attention(q.reshape([B, T, Hq, D]), k.reshape([B, T, Hkv, D]), v.reshape([B, T, Hkv, D]), this.docs(batch));
    const att = att4.reshape([N, Hq * D]);
    const o = ops.matmul(att, this.p(pre + 'self_attn.o_proj.weight'), { transB: true });
    const x2 = ops.add(x, o);
    const { out: h2, rstd: rstd2 } = ops.rmsnorm(x2, this.p(pre + 'post_attention_layernorm.weight'), c.rms_norm_eps);
    const g = ops.matmul(h2, this.p(pre + 'mlp.gate_proj.weight'), { transB: true });
    const u = ops.matmul(h2, this.p(pre + 'mlp.up_proj.weight'), { transB: true });
    const s = ops.swiglu(g, u);
    const d = ops.matmul(s, this.p(pre + 'mlp.down_proj.weight'), { transB: true });
    const x3 = ops.add(x2, d);
    const result = { x, h1, rstd1, q, k, v, att, lse, x2, h2, rstd2, g, u, s, x3 };
    if (keepSaved) for (const [key, t] of Object.entries(result)) if (key !== 'x') keep(t);
    return result;
  }

  /** Backward of one layer: accumulates weight gradients, returns the gradient of its input. */
  private layerBackward(l: number, a: LayerSaved, dx3: Tensor, batch: DeviceBatch): Tensor {
    const c = this.config;
    const { B, T } = batch;
    const N = B * T;
    const D = this.D;
    const Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
    const pre = `model.layers.${l}.`;
    const W = (n: string) => this.p(pre + n);
    const G = (n: string) => this.grads.get(pre + n)!;
    const dW = (dy: Tensor, x: Tensor, name: string) => ops.matmul(dy, x, { transA: true, out: G(name), accumulate: true });

    // MLP: x3 = x2 + down(silu(gate(h2)) * up(h2))
    const ds = ops.matmul(dx3, W('mlp.down_proj.weight'));
    dW(dx3, a.s, 'mlp.down_proj.weight');
    const { dgate, dup } = ops.swigluBackward(a.g, a.u, ds);
    const dh2 = ops.matmul(dgate, W('mlp.gate_proj.weight'));
    ops.matmul(dup, W('mlp.up_proj.weight'), { out: dh2, accumulate: true });
    dW(dgate, a.h2, 'mlp.gate_proj.weight');
    dW(dup, a.h2, 'mlp.up_proj.weight');
    const dx2 = ops.rmsnormBackward(a.x2, W('post_attention_layernorm.weight'), a.rstd2, dh2, G('post_attention_layernorm.weight'));
    ops.add(dx2, dx3, dx2);

    // Attention: x2 = x + o_proj(attention(rope(q), rope(k), v))
    const datt = ops.matmul(dx2, W('self_attn.o_proj.weight'));
    dW(dx2, a.att, 'self_attn.o_proj.weight');
    const { dq, dk, dv } = ops.attentionBackward(
      a.q.reshape([B, T, Hq, D]),
      a.k.reshape([B, T, Hkv, D]),
      a.v.reshape([B, T, Hkv, D]),
      a.att.reshape([B, T, Hq, D]),
      datt.reshape([B, T, Hq, D]),
      a.lse,
      this.docs(batch),
    );
    const pos = batch.positions;
    ops.rope(dq.reshape([N, Hq, D]), pos, this.cos, this.sin, { inverse: true });
    ops.rope(dk.reshape([N, Hkv, D]), pos, this.cos, this.sin, { inverse: true });
    const dq2 = dq.reshape([N, Hq * D]), dk2 = dk.reshape([N, Hkv * D]), dv2 = dv.reshape([N, Hkv * D]);
    const dh1 = ops.matmul(dq2, W('self_attn.q_proj.weight'));
    ops.matmul(dk2, W('self_attn.k_proj.weight'), { out: dh1, accumulate: true });
    ops.matmul(dv2, W('self_attn.v_proj.weight'), { out: dh1, accumulate: true });
    dW(dq2, a.h1, 'self_attn.q_proj.weight');
    dW(dk2, a.h1, 'self_attn.k_proj.weight');
    dW(dv2, a.h1, 'self_attn.v_proj.weight');
    const dx = ops.rmsnormBackward(a.x, W('input_layernorm.weight'), a.rstd1, dh1, G('input_layernorm.weight'));
    return ops.add(dx, dx2, dx);
  }

  private docs(batch: DeviceBatch): ops.AttentionOptions {
    return batch.cuSeqlens ? { cuSeqlens: batch.cuSeqlens, maxSeqlen: batch.maxSeqlen } : {};
  }

  /**
   * Final projection and loss, a chunk of rows at a time, so the [rows, vocab] logits buffer stays
   * bounded whatever the batch; with dhf, also the gradients of the head weight and of hf.
   */
  private head(hf: Tensor, batch: DeviceBatch, dhf: Tensor | null, gradScale: number): LossResult {
    const targets = batch.targets!;
    const N = hf.shape[0];
    const V = this.config.vocab_size;
    // About 1 GiB of logits per chunk: few enough chunks that the head weight is streamed (and
    // its bf16 gradient rounded) only a handful of times per micro-batch.
    const chunk = Math.max(1, this.options.headChunk ?? Math.floor(2 ** 30 / (V * (this.dtype === 'bf16' ? 2 : 4))));
    const w = this.headWeight();
    const dw = dhf ? this.grads.get(this.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight')! : null;
    const losses = Tensor.empty([N], 'f32', this.device);
    for (let r0 = 0; r0 < N; r0 += chunk) {
      withScope(() => {
        const rows = Math.min(chunk, N - r0);
        const h = hf.rows(r0, rows);
        const logits = ops.matmul(h, w, { transB: true });
        ops.crossEntropy(logits, targets.rows(r0, rows), losses.rows(r0, rows), dhf ? { dlogits: logits, gradScale } : {});
        if (dhf && dw) {
          ops.matmul(logits, w, { out: dhf.rows(r0, rows) });
          ops.matmul(logits, h, { transA: true, out: dw, accumulate: true });
        }
      });
    }
    // The loss is read once per micro-batch: the row losses, summed in row order in double.
    let lossSum = 0;
    for (const x of losses.toArray() as Float32Array) lossSum += x;
    return { lossSum, count: batch.trainedTokens };
  }

  dispose(): void {
    this.weights.dispose();
    this.gradStore?.dispose();
    this.cos.dispose();
    this.sin.dispose();
  }
}

function keepAll<T extends Record<string, Tensor> | Map<string, Tensor>>(x: T): T {
  for (const t of x instanceof Map ? x.values() : Object.values(x)) keep(t);
  return x;
}
