import { Tensor, keep, ops } from '../tensor/index.js';
import type { Arenas } from '../model/arenas.js';

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
 * AdamW over a model's parameters with fp32 master weights and moments, kept in arenas laid out as
 * the weights' (one per decay group), so a step is one norm reduction and one AdamW call per group.
 * Norm weights get no decay, as in Hugging Face's Trainer. The bf16 working weights are rewritten
 * from the masters each step.
 */
export class AdamW {
  /** Updates done so far. */
  step = 0;
  /** Null when the weights are f32 (they are their own masters). */
  readonly masterArenas: Arenas | null;
  readonly expAvgArenas: Arenas;
  readonly expAvgSqArenas: Arenas;
  /** Per-parameter views of the state, as checkpoints name it. */
  readonly master = new Map<string, Tensor>();
  readonly expAvg = new Map<string, Tensor>();
  readonly expAvgSq = new Map<string, Tensor>();
  // Each group's gradient sum of squares as an f32 (hi, lo) pair: the reduction writes a tensor,
  // read once per step, and hi + lo keeps the double sum's precision.
  private readonly sumSq: Tensor;

  /**
   * Fresh state (masters copied from the weights, zero moments), or, with `restored`, the state of
   * a checkpoint: tensors named as stateTensors() names them (copied in, then disposed), and the
   * steps already taken.
   */
  constructor(
    readonly weights: Arenas,
    readonly config: AdamWConfig = STUDY_ADAMW,
    restored?: { tensors: Map<string, Tensor>; step: number },
  ) {
    const layout = weights.layout;
    const f32 = weights.flats[0].dtype === 'f32';
    const roles = f32 ? ['exp_avg', 'exp_avg_sq'] : ['master', 'exp_avg', 'exp_avg_sq'];
    // The saved state is checked whole before anything is allocated, so a bad one leaks nothing.
    if (restored) {
      for (const prefix of roles) {
        for (const [name, shape] of layout.shapes) {
          const t = restored.tensors.get(`${prefix}.${name}`);
          if (!t) throw new Error(`AdamW: the saved optimizer state has no tensor ${prefix}.${name}`);
          if (t.dtype !== 'f32' || t.shape.join() !== shape.join()) {
            throw new Error(`AdamW: saved ${prefix}.${name} is ${t.describe()}, expected f32[${shape.join(', ')}]`);
          }
        }
      }
    }
    const role = (prefix: string, fresh: (a: Arenas) => void): Arenas => {
      const a = layout.allocate('f32', weights.device);
      if (!restored) fresh(a);
      else a.copyFrom(new Map([...layout.shapes.keys()].map((name) => [name, restored.tensors.get(`${prefix}.${name}`)!])), 'AdamW');
      return a;
    };
    this.masterArenas = f32 ? null : role('master', (a) => weights.flats.forEach((w, i) => ops.cast(w, 'f32', a.flats[i])));
    this.expAvgArenas = role('exp_avg', () => {});
    this.expAvgSqArenas = role('exp_avg_sq', () => {});
    if (restored) {
      for (const t of restored.tensors.values()) t.dispose();
      this.step = restored.step;
    }
    for (const [m, a] of [[this.master, this.masterArenas], [this.expAvg, this.expAvgArenas], [this.expAvgSq, this.expAvgSqArenas]] as const) {
      if (a) for (const [name, t] of a.views) m.set(name, t);
    }
    this.sumSq = keep(Tensor.zeros([2 * weights.flats.length], 'f32', weights.device));
  }

  /** The state as checkpoints store it: "master.<name>", "exp_avg.<name>", "exp_avg_sq.<name>". */
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [prefix, m] of [['master', this.master], ['exp_avg', this.expAvg], ['exp_avg_sq', this.expAvgSq]] as const) {
      for (const [name, t] of m) out.set(`${prefix}.${name}`, t);
    }
    return out;
  }

  /** The flat state buffers (masters, then moments), for whole-state collectives such as the initial broadcast. */
  stateFlats(): Tensor[] {
    return [...(this.masterArenas?.flats ?? []), ...this.expAvgArenas.flats, ...this.expAvgSqArenas.flats];
  }

  /** The global L2 norm of the gradient arenas: one reduction per arena, one host read. */
  gradNorm(grads: Arenas): number {
    grads.flats.forEach((g, i) => ops.sumSquares(g, { out: this.sumSq, index: i }));
    const parts = this.sumSq.toArray();
    let ss = 0;
    // An infinite sum has a NaN lo (inf - inf): the hi alone says what it was.
    for (let i = 0; i < grads.flats.length; i++) ss += Number.isFinite(parts[2 * i]) ? parts[2 * i] + parts[2 * i + 1] : parts[2 * i];
    return Math.sqrt(ss);
  }

  /** One update at learning rate lr from gradients laid out as the weights; returns the gradient norm before clipping. */
  update(grads: Arenas, lr: number): { gradNorm: number; clipScale: number } {
    if (grads.layout !== this.weights.layout) throw new Error('AdamW: the gradients are not laid out as the weights');
    const norm = this.gradNorm(grads);
    if (!Number.isFinite(norm)) throw new Error(`AdamW: gradient norm is ${norm}; refusing to update the weights`);
    const max = this.config.maxGradNorm;
    const clipScale = max > 0 && norm > max ? max / (norm + 1e-6) : 1;
    this.step += 1;
    this.weights.layout.groups.forEach((g, i) => {
      ops.adamw(this.weights.flats[i], grads.flats[i], this.masterArenas?.flats[i] ?? null, this.expAvgArenas.flats[i], this.expAvgSqArenas.flats[i], {
        lr,
        beta1: this.config.beta1,
        beta2: this.config.beta2,
        eps: this.config.eps,
        weightDecay: g.group === 'decay' ? this.config.weightDecay : 0,
        step: this.step,
        gradScale: clipScale,
      });
    });
    return { gradNorm: norm, clipScale };
  }

  dispose(): void {
    this.masterArenas?.dispose();
    this.expAvgArenas.dispose();
    this.expAvgSqArenas.dispose();
    this.sumSq.dispose();
  }
}
