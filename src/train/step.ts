import { makeBatch, type Batch, type LlamaModel } from '../model/index.js';
import type { AdamW } from './adamw.js';
import type { Communicator } from '../parallel/index.js';

export interface StepResult {
  /** Mean loss per trained token over the whole global batch. */
  loss: number;
  tokens: number;
  gradNorm: number;
}

/**
 * One optimizer step over a global batch given as micro-batches: gradients accumulate with scale
 * 1 / (trained tokens of the whole global batch), so the update is that of the token mean over the
 * global batch however it is split.
 */
export function trainStep(
  model: LlamaModel,
  opt: AdamW,
  micro: Batch[],
  lr: number,
): StepResult {
  // Each batch brings its count (the model checks it against its targets on the host).
  const tokens = micro.reduce((n, b) => n + b.trainedTokens, 0);
  if (tokens === 0) throw new Error('trainStep: the global batch has no trained tokens');
  model.zeroGrads();
  let lossSum = 0;
  for (const b of micro) lossSum += model.forwardBackward(b, 1 / tokens).lossSum;
  const { gradNorm } = opt.update(model.gradArenas, lr);
  return { loss: lossSum / tokens, tokens, gradNorm };
}

/**
 * One data-parallel step: this rank's share of the global batch's micro-batches, with gradients
 * scaled by 1 / (trained tokens of the whole global batch), summed over the ranks in one all-reduce
 * (bf16 gradients in fp32, rounded once) together with the loss sums and the stop requests. Every
 * rank then holds the global batch's gradient, so the norm, the clipping and AdamW are global and
 * identical on every rank. With ZeRO-1 (a sharded AdamW) each rank gets the sum on its range only
 * and updates that range; AdamW all-gathers the weights.
 */
export function parallelStep(
  model: LlamaModel,
  opt: AdamW,
  mine: Batch[],
  tokens: number,
  lr: number,
  comm: Communicator,
  at: { step: number; stop: boolean },
): StepResult & { stop: boolean } {
  if (tokens === 0) throw new Error('trainStep: the global batch has no trained tokens');
  model.zeroGrads();
  let lossSum = 0;
  for (const b of mine) lossSum += model.forwardBackward(b, 1 / tokens).lossSum;
  const extra = new Float64Array([lossSum, at.stop ? 1 : 0]);
  // The gradient arenas (one per decay group, laid out identically on every rank), in large buckets:
  // all-reduced, or with ZeRO-1 reduce-scattered onto the range of the state each rank holds.
  opt.reduceGradients(model.gradArenas, extra, `gradients of step ${at.step}`, comm);
  const { gradNorm } = opt.update(model.gradArenas, lr);
  return { loss: extra[0] / tokens, tokens, gradNorm, stop: extra[1] > 0 };
}

/** A micro-batch of B rows of T ids with next-token targets [B·T], one document per row. */
export function hostBatch(ids: Int32Array, targets: Int32Array, B: number, T: number): Batch {
  if (ids.length !== B * T) throw new Error(`hostBatch: ${ids.length} ids are not ${B} rows of ${T}`);
  return makeBatch(ids, B, targets);
}
