import { Tensor } from '../tensor/index.js';
import type { Batch, LlamaModel } from '../model/index.js';
import { IGNORE_INDEX } from '../tensor/ops.js';
import type { AdamW } from './adamw.js';

export interface StepResult {
  /** Mean loss per trained token over the whole global batch. */
  loss: number;
  tokens: number;
  gradNorm: number;
}

/** Trained tokens of a micro-batch, counted on the host before any compute. */
export function trainedTokens(targets: Int32Array): number {
  let n = 0;
  for (const t of targets) if (t !== IGNORE_INDEX) n++;
  return n;
}

/**
 * One optimizer step over a global batch given as micro-batches: gradients accumulate with scale
 * 1 / (trained tokens of the whole global batch), so the update is that of the token mean over the
 * global batch however it is split.
 */
export function trainStep(
  model: LlamaModel,
  opt: AdamW,
  micro: { batch: Batch; targets: Int32Array }[],
  lr: number,
): StepResult {
  const tokens = micro.reduce((n, m) => n + trainedTokens(m.targets), 0);
  if (tokens === 0) throw new Error('trainStep: the global batch has no trained tokens');
  model.zeroGrads();
  let lossSum = 0;
  for (const m of micro) lossSum += model.forwardBackward(m.batch, 1 / tokens).lossSum;
  const { gradNorm } = opt.update(model.grads, lr);
  return { loss: lossSum / tokens, tokens, gradNorm };
}

/** A micro-batch from host arrays: ids [B, T] and next-token targets [B·T]. */
export function hostBatch(ids: Int32Array, targets: Int32Array, B: number, T: number): { batch: Batch; targets: Int32Array } {
  return { batch: { ids: Tensor.fromArray(ids, [B, T]), targets: Tensor.fromArray(targets, [B * T]) }, targets };
}
