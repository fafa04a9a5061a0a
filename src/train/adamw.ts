import { Tensor, keep, ops } from '../tensor/index.js';
import type { Arenas } from '../model/arenas.js';
import { shardCounts, shardOffset, type Communicator } from '../parallel/index.js';

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
 *
 * Sharded (ZeRO-1, `shard` given with more than one rank): each rank holds only its contiguous range
 * of each group's masters and moments, the gradients are reduce-scattered onto those ranges
 * (reduceGradients), AdamW updates that range of the weights, and the ranges are all-gathered into
 * every rank's weights. The arithmetic per element is the same as unsharded.
 */
export class AdamW {
  /** Updates done so far. */
  step = 0;
  /** Null when the weights are f32 (they are their own masters), or when sharded. */
  readonly masterArenas: Arenas | null;
  /** Null when sharded. */
  readonly expAvgArenas: Arenas | null;
  readonly expAvgSqArenas: Arenas | null;
  /** Per-parameter views of the state, as checkpoints name it (empty when sharded: see gatherState). */
  readonly master = new Map<string, Tensor>();
  readonly expAvg = new Map<string, Tensor>();
  readonly expAvgSq = new Map<string, Tensor>();
  /** ZeRO-1: this rank's range of each group's arena, and every rank's element counts; null unsharded. */
  readonly shard: { comm: Communicator; counts: number[][]; lo: number[]; n: number[] } | null;
  // The state the update runs on, one tensor per group: the arenas' flats, or this rank's shards.
  private readonly masterFlats: Tensor[] | null;
  private readonly expAvgFlats: Tensor[];
  private readonly expAvgSqFlats: Tensor[];
  // Each group's gradient sum of squares as an f32 (hi, lo) pair: the reduction writes a tensor,
  // read once per step, and hi + lo keeps the double sum's precision.
  private readonly sumSq: Tensor;
  /** Sharded: the global sum of squares reduceGradients found, which the next update uses. */
  private reducedSumSq: number | null = null;
  private readonly fresh: boolean;

  /**
   * Fresh state (masters copied from the weights, zero moments), or, with `restored`, the state of
   * a checkpoint: tensors named as stateTensors() names them (copied in, then disposed), and the
   * steps already taken. `shard`: ZeRO-1 over the communicator's ranks (unsharded on one process).
   */
  constructor(
    readonly weights: Arenas,
    readonly config: AdamWConfig = STUDY_ADAMW,
    restored?: { tensors: Map<string, Tensor>; step: number },
    shard?: Communicator,
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
    this.fresh = !restored;
    if (shard && shard.size > 1) {
      const counts = layout.groups.map((g) => shardCounts(g.numel, shard.size));
      const lo = counts.map((c) => shardOffset(c, shard.rank));
      const n = counts.map((c) => c[shard.rank]);
      this.shard = { comm: shard, counts, lo, n };
      // Restored: a whole checkpoint (whatever world size wrote it) is read into a full arena one
      // role at a time, and this rank keeps its range: re-sharding is a matter of which range.
      const role = (prefix: string, fresh: (i: number, dst: Tensor) => void): Tensor[] => {
        const shards = n.map((k) => keep(Tensor.zeros([k], 'f32', weights.device)));
        if (!restored) shards.forEach((t, i) => fresh(i, t));
        else {
          const full = layout.allocate('f32', weights.device);
          try {
            full.copyFrom(new Map([...layout.shapes.keys()].map((name) => [name, restored.tensors.get(`${prefix}.${name}`)!])), 'AdamW');
            shards.forEach((t, i) => this.castRange(full.flats[i], lo[i], t));
          } finally {
            full.dispose();
          }
        }
        return shards;
      };
      this.masterFlats = f32 ? null : role('master', (i, dst) => this.castRange(weights.flats[i], lo[i], dst));
      this.expAvgFlats = role('exp_avg', () => {});
      this.expAvgSqFlats = role('exp_avg_sq', () => {});
      this.masterArenas = this.expAvgArenas = this.expAvgSqArenas = null;
    } else {
      this.shard = null;
      const role = (prefix: string, fresh: (a: Arenas) => void): Arenas => {
        const a = layout.allocate('f32', weights.device);
        if (!restored) fresh(a);
        else a.copyFrom(new Map([...layout.shapes.keys()].map((name) => [name, restored.tensors.get(`${prefix}.${name}`)!])), 'AdamW');
        return a;
      };
      this.masterArenas = f32 ? null : role('master', (a) => weights.flats.forEach((w, i) => ops.cast(w, 'f32', a.flats[i])));
      this.expAvgArenas = role('exp_avg', () => {});
      this.expAvgSqArenas = role('exp_avg_sq', () => {});
      this.masterFlats = this.masterArenas?.flats ?? null;
      this.expAvgFlats = this.expAvgArenas.flats;
      this.expAvgSqFlats = this.expAvgSqArenas.flats;
      for (const [m, a] of [[this.master, this.masterArenas], [this.expAvg, this.expAvgArenas], [this.expAvgSq, this.expAvgSqArenas]] as const) {
        if (a) for (const [name, t] of a.views) m.set(name, t);
      }
    }
    if (restored) {
      for (const t of restored.tensors.values()) t.dispose();
      this.step = restored.step;
    }
    this.sumSq = keep(Tensor.zeros([2 * weights.flats.length], 'f32', weights.device));
  }

  /** Elements [lo, lo + n) of a flat arena as a view; null when empty (the kernels get no empty tensors). */
  private static range(flat: Tensor, lo: number, n: number): Tensor | null {
    return n === 0 ? null : flat.rows(lo, n);
  }

  /** dst = elements [lo, lo + dst.numel) of src, in f32. */
  private castRange(src: Tensor, lo: number, dst: Tensor): void {
    const v = AdamW.range(src, lo, dst.numel);
    if (!v) return;
    ops.cast(v, 'f32', dst);
    v.dispose();
  }

  /**
   * After the initial broadcast of the weights: a fresh sharded state recasts its masters from the
   * broadcast weights (unsharded, the broadcast carries the state itself: stateFlats).
   */
  syncMastersFromWeights(): void {
    if (!this.shard || !this.fresh || !this.masterFlats) return;
    this.masterFlats.forEach((t, i) => this.castRange(this.weights.flats[i], this.shard!.lo[i], t));
  }

  /** Bytes of optimizer state this process holds, and what one unsharded copy takes. */
  stateBytes(): { perRank: number; unsharded: number } {
    const roles = this.masterFlats ? 3 : 2;
    const perRank = [...(this.masterFlats ?? []), ...this.expAvgFlats, ...this.expAvgSqFlats].reduce((a, t) => a + t.numel * 4, 0);
    const unsharded = roles * this.weights.layout.groups.reduce((a, g) => a + g.numel * 4, 0);
    return { perRank, unsharded };
  }

  /** The state as checkpoints store it: "master.<name>", "exp_avg.<name>", "exp_avg_sq.<name>" (unsharded only). */
  stateTensors(): Map<string, Tensor> {
    if (this.shard) throw new Error('AdamW: the state is sharded over the ranks; gatherState() collects it');
    const out = new Map<string, Tensor>();
    for (const [prefix, m] of [['master', this.master], ['exp_avg', this.expAvg], ['exp_avg_sq', this.expAvgSq]] as const) {
      for (const [name, t] of m) out.set(`${prefix}.${name}`, t);
    }
    return out;
  }

  /**
   * The whole state as stateTensors() names it, on rank 0 (a collective: every rank calls it), for a
   * checkpoint; null on the other ranks. Sharded, rank 0 gathers the shards into full arenas for
   * the write (`dispose` frees them); unsharded, it is stateTensors() itself.
   */
  gatherState(label: string): { tensors: Map<string, Tensor>; dispose(): void } | null {
    if (!this.shard) return { tensors: this.stateTensors(), dispose() {} };
    const { comm, counts } = this.shard;
    const lead = comm.rank === 0;
    const roles: [string, Tensor[] | null][] = [['master', this.masterFlats], ['exp_avg', this.expAvgFlats], ['exp_avg_sq', this.expAvgSqFlats]];
    const arenas: Arenas[] = [];
    const tensors = new Map<string, Tensor>();
    for (const [prefix, shards] of roles) {
      if (!shards) continue;
      const full = lead ? this.weights.layout.allocate('f32') : null;
      if (full) arenas.push(full);
      // An empty shard (a small arena over many ranks) still takes part: it sends nothing.
      shards.forEach((t, i) => comm.gather(t, full?.flats[i] ?? null, counts[i], `${label}: ${prefix} shards`));
      if (full) for (const [name, v] of full.views) tensors.set(`${prefix}.${name}`, v);
    }
    return lead ? { tensors, dispose: () => arenas.forEach((a) => a.dispose()) } : null;
  }

  /** The flat state buffers (masters, then moments), for whole-state collectives such as the initial broadcast; none when sharded. */
  stateFlats(): Tensor[] {
    if (this.shard) return [];
    return [...(this.masterFlats ?? []), ...this.expAvgFlats, ...this.expAvgSqFlats];
  }

  /**
   * Data parallel: sums the gradients over the ranks together with `extra` (f64 side values).
   * Unsharded, one all-reduce of the arenas. Sharded, a reduce-scatter per arena onto this rank's
   * range (the only range its update reads), then the global sum of squares from the ranges, one
   * f64 all-reduced with `extra`.
   */
  reduceGradients(grads: Arenas, extra: Float64Array, label: string, comm: Communicator): void {
    if (!this.shard) {
      comm.allreduceSum(grads.flats, extra, label);
      return;
    }
    const { counts, lo, n } = this.shard;
    grads.flats.forEach((g, i) => comm.reduceScatterSum(g, counts[i], `${label} (reduce-scatter)`));
    let ss = 0;
    grads.flats.forEach((g, i) => {
      const v = AdamW.range(g, lo[i], n[i]);
      if (!v) return;
      ops.sumSquares(v, { out: this.sumSq, index: i });
      v.dispose();
    });
    const parts = this.sumSq.toArray();
    for (let i = 0; i < grads.flats.length; i++) {
      if (n[i] === 0) continue;
      ss += Number.isFinite(parts[2 * i]) ? parts[2 * i] + parts[2 * i + 1] : parts[2 * i];
    }
    const all = new Float64Array([ss, ...extra]);
    this.shard.comm.allreduceSum([], all, `${label} (norm)`);
    this.reducedSumSq = all[0];
    extra.set(all.subarray(1));
  }

  /** The global L2 norm of the gradient arenas: one reduction per arena, one host read. */
  gradNorm(grads: Arenas): number {
    if (this.shard) {
      if (this.reducedSumSq === null) throw new Error('AdamW: sharded, the gradients must go through reduceGradients before the update');
      return Math.sqrt(this.reducedSumSq);
    }
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
    this.reducedSumSq = null;
    if (!Number.isFinite(norm)) throw new Error(`AdamW: gradient norm is ${norm}; refusing to update the weights`);
    const max = this.config.maxGradNorm;
    const clipScale = max > 0 && norm > max ? max / (norm + 1e-6) : 1;
    this.step += 1;
    this.weights.layout.groups.forEach((g, i) => {
      const opts = {
        lr,
        beta1: this.config.beta1,
        beta2: this.config.beta2,
        eps: this.config.eps,
        weightDecay: g.group === 'decay' ? this.config.weightDecay : 0,
        step: this.step,
        gradScale: clipScale,
      };
      if (!this.shard) {
        ops.adamw(this.weights.flats[i], grads.flats[i], this.masterFlats?.[i] ?? null, this.expAvgFlats[i], this.expAvgSqFlats[i], opts);
        return;
      }
      const { lo, n, counts, comm } = this.shard;
      const w = AdamW.range(this.weights.flats[i], lo[i], n[i]);
      const gr = AdamW.range(grads.flats[i], lo[i], n[i]);
      if (w && gr) ops.adamw(w, gr, this.masterFlats?.[i] ?? null, this.expAvgFlats[i], this.expAvgSqFlats[i], opts);
      w?.dispose();
      gr?.dispose();
      // Every rank's updated range into every rank's weights (bf16 ones move as bf16: half the bytes).
      comm.allgather(this.weights.flats[i], counts[i], `weights of step ${this.step} (all-gather)`);
    });
    return { gradNorm: norm, clipScale };
  }

  dispose(): void {
    if (this.shard) {
      for (const t of [...(this.masterFlats ?? []), ...this.expAvgFlats, ...this.expAvgSqFlats]) t.dispose();
    } else {
      this.masterArenas?.dispose();
      this.expAvgArenas?.dispose();
      this.expAvgSqArenas?.dispose();
    }
    this.sumSq.dispose();
  }
}
