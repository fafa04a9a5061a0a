import type { LlamaConfig } from '../../src/model/config.js';

/**
 * Deliberate mistakes the oracle test must catch; each is a bug a real Llama port has shipped with.
 * - rope-interleaved: llama.cpp / Meta pairs (2i, 2i+1) instead of HF rotate_half pairs (i, i + D/2)
 * - rope-theta-doubled: a rope_theta other than the config's (a shift of all positions would not
 *   do: attention only sees position differences, so it cannot change a full-sequence forward)
 * - no-causal-mask: every token sees the future
 * - no-attn-scale: scores not divided by sqrt(D)
 * - gqa-modulo: query head h reads kv head h % Hkv instead of h / (Hq / Hkv)
 * - norm-no-weight: RMSNorm without its learned scale
 * - norm-mean-centred: LayerNorm-style mean subtraction before the RMS
 * - swiglu-swapped: silu(up) * gate instead of silu(gate) * up
 */
export type Perturbation =
  | 'rope-interleaved'
  | 'rope-theta-doubled'
  | 'no-causal-mask'
  | 'no-attn-scale'
  | 'gqa-modulo'
  | 'norm-no-weight'
  | 'norm-mean-centred'
  | 'swiglu-swapped';

/** y[o] = sum_i W[o, i] x[i] for a torch-layout W [out, in], accumulated in double. */
function linear(W: Float32Array, x: Float32Array, xOff: number, inDim: number, outDim: number, y: Float32Array, yOff: number): void {
  for (let o = 0; o < outDim; o++) {
    let s = 0;
    const row = o * inDim;
    for (let i = 0; i < inDim; i++) s += W[row + i] * x[xOff + i];
    y[yOff + o] = s;
  }
}

function rmsNorm(x: Float32Array, off: number, n: number, w: Float32Array, eps: number, perturb: Perturbation | undefined, y: Float32Array, yOff: number): void {
  let mean = 0;
  if (perturb === 'norm-mean-centred') {
    for (let i = 0; i < n; i++) mean += x[off + i];
    mean /= n;
  }
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (x[off + i] - mean) ** 2;
  const r = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) {
    const normed = Math.fround((x[off + i] - mean) * r);
    y[yOff + i] = perturb === 'norm-no-weight' ? normed : normed * w[i];
  }
}

/** Rotates one head vector in place at position pos. */
function rope(v: Float32Array, off: number, D: number, pos: number, theta: number, interleaved: boolean): void {
  for (let i = 0; i < D / 2; i++) {
    const angle = pos * Math.pow(theta, (-2 * i) / D);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const a = interleaved ? off + 2 * i : off + i;
    const b = interleaved ? off + 2 * i + 1 : off + i + D / 2;
    const x1 = v[a];
    const x2 = v[b];
    v[a] = x1 * c - x2 * s;
    v[b] = x2 * c + x1 * s;
  }
}

const get = (w: Map<string, Float32Array>, name: string): Float32Array => {
  const t = w.get(name);
  if (!t) throw new Error(`naive Llama: missing weight '${name}'`);
  return t;
};

/**
 * A loop-by-loop LlamaForCausalLM forward: f32 activations, double accumulators, one sequence
 * at a time. Written for readability against the HF modeling code, not for speed.
 * Returns logits [B, T, vocab].
 */
export function naiveLlamaForward(
  c: LlamaConfig,
  w: Map<string, Float32Array>,
  ids: ArrayLike<number>,
  B: number,
  T: number,
  perturb?: Perturbation,
): Float32Array {
  const H = c.hidden_size;
  const Hq = c.num_attention_heads;
  const Hkv = c.num_key_value_heads;
  const D = H / Hq;
  const KV = Hkv * D;
  const I = c.intermediate_size;
  const V = c.vocab_size;
  const eps = c.rms_norm_eps;
  const theta = perturb === 'rope-theta-doubled' ? 2 * c.rope_theta : c.rope_theta;
  const logits = new Float32Array(B * T * V);

  const x = new Float32Array(T * H);
  const h = new Float32Array(T * H);
  const q = new Float32Array(T * H);
  const k = new Float32Array(T * KV);
  const v = new Float32Array(T * KV);
  const attn = new Float32Array(T * H);
  const proj = new Float32Array(H);
  const gate = new Float32Array(I);
  const up = new Float32Array(I);
  const act = new Float32Array(I);
  const scores = new Float64Array(T);

  const embed = get(w, 'model.embed_tokens.weight');
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const id = ids[b * T + t];
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`naive Llama: token id ${id} at [${b}, ${t}] outside [0, ${V})`);
      x.set(embed.subarray(id * H, (id + 1) * H), t * H);
    }

    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      const wq = get(w, `${p}.self_attn.q_proj.weight`);
      const wk = get(w, `${p}.self_attn.k_proj.weight`);
      const wv = get(w, `${p}.self_attn.v_proj.weight`);
      const wo = get(w, `${p}.self_attn.o_proj.weight`);
      const inNorm = get(w, `${p}.input_layernorm.weight`);
      for (let t = 0; t < T; t++) {
        rmsNorm(x, t * H, H, inNorm, eps, perturb, h, t * H);
        linear(wq, h, t * H, H, H, q, t * H);
        linear(wk, h, t * H, H, KV, k, t * KV);
        linear(wv, h, t * H, H, KV, v, t * KV);
        const interleaved = perturb === 'rope-interleaved';
        for (let hd = 0; hd < Hq; hd++) rope(q, t * H + hd * D, D, t, theta, interleaved);
        for (let hd = 0; hd < Hkv; hd++) rope(k, t * KV + hd * D, D, t, theta, interleaved);
      }

      const scale = perturb === 'no-attn-scale' ? 1 : 1 / Math.sqrt(D);
      for (let hd = 0; hd < Hq; hd++) {
        const kvHead = perturb === 'gqa-modulo' ? hd % Hkv : Math.floor(hd / (Hq / Hkv));
        for (let t = 0; t < T; t++) {
          const last = perturb === 'no-causal-mask' ? T - 1 : t;
          let max = -Infinity;
          for (let j = 0; j <= last; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) s += q[t * H + hd * D + d] * k[j * KV + kvHead * D + d];
            scores[j] = Math.fround(s) * scale;
            max = Math.max(max, scores[j]);
          }
          let sum = 0;
          for (let j = 0; j <= last; j++) {
            scores[j] = Math.exp(scores[j] - max);
            sum += scores[j];
          }
          for (let d = 0; d < D; d++) {
            let o = 0;
            for (let j = 0; j <= last; j++) o += scores[j] * v[j * KV + kvHead * D + d];
            attn[t * H + hd * D + d] = o / sum;
          }
        }
      }

      const postNorm = get(w, `${p}.post_attention_layernorm.weight`);
      const wg = get(w, `${p}.mlp.gate_proj.weight`);
      const wu = get(w, `${p}.mlp.up_proj.weight`);
      const wd = get(w, `${p}.mlp.down_proj.weight`);
      for (let t = 0; t < T; t++) {
        linear(wo, attn, t * H, H, H, proj, 0);
        for (let i = 0; i < H; i++) x[t * H + i] += proj[i];
        rmsNorm(x, t * H, H, postNorm, eps, perturb, h, t * H);
        linear(wg, h, t * H, H, I, gate, 0);
        linear(wu, h, t * H, H, I, up, 0);
        const [sg, other] = perturb === 'swiglu-swapped' ? [up, gate] : [gate, up];
        for (let i = 0; i < I; i++) act[i] = (sg[i] / (1 + Math.exp(-sg[i]))) * other[i];
        linear(wd, act, 0, I, H, proj, 0);
        for (let i = 0; i < H; i++) x[t * H + i] += proj[i];
      }
    }

    const finalNorm = get(w, 'model.norm.weight');
    const head = c.tie_word_embeddings ? embed : get(w, 'lm_head.weight');
    for (let t = 0; t < T; t++) {
      rmsNorm(x, t * H, H, finalNorm, eps, perturb, h, t * H);
      linear(head, h, t * H, H, V, logits, (b * T + t) * V);
    }
  }
  return logits;
}
