import { Tensor, keep, ops } from '../tensor/index.js';
import { isNormWeight } from '../model/params.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clipping threshold; 0 disables clipping. */
  maxGradNorm: number;
}

/** The study's settings (beta2 0.95, weight decay 0.1) and Hugging Face's clipping default. */
export const STUDY_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1.0 };

/**
 * AdamW over a model's parameters with fp32 master weights and moments. Norm weights get no decay,
 * as in Hugging Face's Trainer. The bf16 working weights are rewritten from the masters each step.
 */
export class AdamW {
  /** Updates done so far. */
  step = 0;
  readonly master = new Map<string, Tensor>();
  readonly expAvg = new Map<string, Tensor>();
  readonly expAvgSq = new Map<string, Tensor>();

  /**
   * Fresh state (masters copied from the weights, zero moments), or, with `restored`, the state of
   * a checkpoint: tensors named as stateTensors() names them, and the steps already taken.
   */
  constructor(
    readonly params: Map<string, Tensor>,
    readonly config: AdamWConfig = STUDY_ADAMW,
    restored?: { tensors: Map<string, Tensor>; step: number },
  ) {
    const take = (name: string, shape: readonly number[]): Tensor => {
      const t = restored!.tensors.get(name);
      if (!t) throw new Error(`AdamW: the saved optimizer state has no tensor ${name}`);
      if (t.dtype !== 'f32' || t.shape.join() !== shape.join()) {
        throw new Error(`AdamW: saved ${name} is ${t.describe()}, expected f32[${shape.join(', ')}]`);
      }
      return keep(t);
    };
    for (const [name, p] of params) {
      if (restored) {
        if (p.dtype !== 'f32') this.master.set(name, take(`master.${name}`, p.shape));
        this.expAvg.set(name, take(`exp_avg.${name}`, p.shape));
        this.expAvgSq.set(name, take(`exp_avg_sq.${name}`, p.shape));
      } else {
        if (p.dtype !== 'f32') this.master.set(name, keep(ops.cast(p, 'f32')));
        this.expAvg.set(name, keep(Tensor.zeros(p.shape, 'f32')));
        this.expAvgSq.set(name, keep(Tensor.zeros(p.shape, 'f32')));
      }
    }
    if (restored) this.step = restored.step;
  }

  /** The state as checkpoints store it: "master.<name>", "exp_avg.<name>", "exp_avg_sq.<name>". */
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [prefix, m] of [['master', this.master], ['exp_avg', this.expAvg], ['exp_avg_sq', this.expAvgSq]] as const) {
      for (const [name, t] of m) out.set(`${prefix}.${name}`, t);
    }
    return out;
  }

  /** The global L2 norm of all gradients, accumulated in double. */
  static gradNorm(grads: Map<string, Tensor>): number {
    let ss = 0;
    for (const g of grads.values()) ss += ops.sumSquares(g);
    return Math.sqrt(ss);
  }

  /** One update at learning rate lr; returns the gradient norm before clipping. */
  update(grads: Map<string, Tensor>, lr: number): { gradNorm: number; clipScale: number } {
    const norm = AdamW.gradNorm(grads);
    if (!Number.isFinite(norm)) throw new Error(`AdamW: gradient norm is ${norm}; refusing to update the weights`);
    const max = this.config.maxGradNorm;
    const clipScale = max > 0 && norm > max ? max / (norm + 1e-6) : 1;
    this.step += 1;
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g) throw new Error(`AdamW: no gradient for ${name}`);
      ops.adamw(p, g, this.master.get(name) ?? null, this.expAvg.get(name)!, this.expAvgSq.get(name)!, {
        lr,
        beta1: this.config.beta1,
        beta2: this.config.beta2,
        eps: this.config.eps,
        weightDecay: isNormWeight(name) ? 0 : this.config.weightDecay,
        step: this.step,
        gradScale: clipScale,
      });
    }
    return { gradNorm: norm, clipScale };
  }

  dispose(): void {
    for (const m of [this.master, this.expAvg, this.expAvgSq]) for (const t of m.values()) t.dispose();
  }
}
