import type { Batch } from '../model/batch.js';
import { seededRandom, shuffled } from './random.js';
import { exampleCount, type TokenizedSet } from './tokenizedSet.js';

/** What truncation to maxSeqLen cost; reported by the run, never silent. */
export interface TruncationStats {
  examples: number;
  truncated: number;
  tokensDropped: number;
  trainedTokensDropped: number;
  /** Examples whose trained tokens all lie beyond maxSeqLen: left out of batches, counted here. */
  noTrainedTokensLeft: number;
}

export interface PreparedExamples {
  /** Usable example indices. */
  indices: number[];
  /** Length after truncation, per example of the set. */
  lengths: Int32Array;
  stats: TruncationStats;
}

/** Truncates (by bookkeeping only) every example to maxSeqLen and counts what that drops. */
export function prepareExamples(set: TokenizedSet, maxSeqLen: number): PreparedExamples {
  const n = exampleCount(set);
  const lengths = new Int32Array(n);
  const indices: number[] = [];
  const stats: TruncationStats = { examples: n, truncated: 0, tokensDropped: 0, trainedTokensDropped: 0, noTrainedTokensLeft: 0 };
  for (let i = 0; i < n; i++) {
    const a = set.offsets[i], b = set.offsets[i + 1];
    const len = Math.min(b - a, maxSeqLen);
    lengths[i] = len;
    if (b - a > maxSeqLen) {
      stats.truncated++;
      stats.tokensDropped += b - a - maxSeqLen;
      for (let t = a + maxSeqLen; t < b; t++) stats.trainedTokensDropped += set.mask[t];
    }
    // Position 0 is never a target (nothing precedes it), so it does not count as trained.
    let trained = 0;
    for (let t = a + 1; t < a + len; t++) trained += set.mask[t];
    if (trained === 0) stats.noTrainedTokensLeft++;
    else indices.push(i);
  }
  return { indices, lengths, stats };
}

export interface BatchPlanOptions {
  /**
   * 'bucket' (default): each row holds one example, batches hold `batchSize` examples of
   * similar length, so padding is small and a varlen kernel needs none.
   * 'pack': rows of up to maxSeqLen tokens hold several examples each (positions restart and
   * attention stays inside each example); batches hold `batchSize` rows.
   */
  mode?: 'bucket' | 'pack';
  batchSize: number;
  maxSeqLen: number;
  seed: number;
  epoch: number;
  /** Examples are sorted by length within windows of batchSize * groupWindow shuffled examples. */
  groupWindow?: number;
}

/** A batch as rows of example indices (one per row when bucketing). */
export type BatchPlan = number[][][];

/**
 * Orders an epoch into batches: shuffle (seed, epoch), sort by length inside windows, cut,
 * then shuffle the batch order so lengths do not ramp through the epoch.
 */
export function planBatches(prep: PreparedExamples, opts: BatchPlanOptions): BatchPlan {
  const { batchSize, maxSeqLen } = opts;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`batching: batchSize must be a positive integer, got ${batchSize}`);
  const rand = seededRandom(`batches:${opts.seed}:${opts.epoch}`);
  const order = shuffled(prep.indices, rand);
  const window = batchSize * (opts.groupWindow ?? 64);
  const len = (i: number) => prep.lengths[i];
  const batches: BatchPlan = [];
  for (let w = 0; w < order.length; w += window) {
    const part = order.slice(w, w + window).sort((a, b) => len(b) - len(a));
    const rows: number[][] = opts.mode === 'pack' ? packRows(part, len, maxSeqLen) : part.map((i) => [i]);
    for (let r = 0; r < rows.length; r += batchSize) batches.push(rows.slice(r, r + batchSize));
  }
  return shuffled(batches, rand);
}

/**
 * First-fit-decreasing (the input is sorted longest first), looking only at the most recent
 * rows: older rows took the long examples and are nearly full, and this keeps it linear.
 */
function packRows(sorted: number[], len: (i: number) => number, capacity: number): number[][] {
  const rows: number[][] = [];
  const free: number[] = [];
  for (const i of sorted) {
    const l = len(i);
    let r = -1;
    for (let k = Math.max(0, free.length - 64); k < free.length; k++) if (free[k] >= l) { r = k; break; }
    if (r < 0) {
      r = rows.length;
      rows.push([]);
      free.push(capacity);
    }
    rows[r].push(i);
    free[r] -= l;
  }
  return rows;
}

/**
 * The model's Batch as one flat, padding-free packed row (every token of every example back to
 * back, `rows` 1), with what the data layer keeps beside it.
 */
export interface CollatedBatch extends Batch {
  /** The next token where it is trained and in the same example, else -100. */
  targets: Int32Array;
  /** Position within its own example: restarts at 0 for each example. */
  positions: Int32Array;
  /** Example boundaries in tokens (docs + 1): attention stays inside each. */
  cuSeqlens: Int32Array;
  /** Index of the token's example within this batch (0..docs-1), for padded layouts. */
  docIds: Int32Array;
  /** Plan-row boundaries in tokens (plan rows + 1); a plan row is what a padded layout makes one sequence of. */
  rowStarts: Int32Array;
  /** Example index (into the TokenizedSet) of each doc. */
  examples: number[];
}

export const IGNORE_INDEX = -100;

/** Builds the arrays of one planned batch; examples are cut to maxSeqLen. */
export function collateBatch(set: TokenizedSet, rows: number[][], maxSeqLen: number): CollatedBatch {
  let total = 0, docs = 0;
  for (const row of rows) for (const i of row) { total += Math.min(set.offsets[i + 1] - set.offsets[i], maxSeqLen); docs++; }
  const tokens = new Int32Array(total), labels = new Int32Array(total), positions = new Int32Array(total), docIds = new Int32Array(total);
  const cuSeqlens = new Int32Array(docs + 1), rowStarts = new Int32Array(rows.length + 1);
  const examples: number[] = [];
  let pos = 0, d = 0, trained = 0;
  rows.forEach((row, r) => {
    for (const i of row) {
      const a = set.offsets[i];
      const len = Math.min(set.offsets[i + 1] - a, maxSeqLen);
      for (let t = 0; t < len; t++) {
        tokens[pos + t] = set.tokens[a + t];
        positions[pos + t] = t;
        docIds[pos + t] = d;
        const next = t + 1 < len && set.mask[a + t + 1] === 1;
        labels[pos + t] = next ? set.tokens[a + t + 1] : IGNORE_INDEX;
        if (next) trained++;
      }
      pos += len;
      examples.push(i);
      cuSeqlens[++d] = pos;
    }
    rowStarts[r + 1] = pos;
  });
  return { ids: tokens, rows: 1, targets: labels, positions, cuSeqlens, trainedTokens: trained, docIds, rowStarts, examples };
}

/** The same batch as [rows, width] arrays for kernels that want rectangles; padding has docId -1 and label -100. */
export function toPadded(batch: CollatedBatch, padId: number): { rows: number; width: number; tokens: Int32Array; labels: Int32Array; positions: Int32Array; docIds: Int32Array } {
  const rows = batch.rowStarts.length - 1;
  let width = 0;
  for (let r = 0; r < rows; r++) width = Math.max(width, batch.rowStarts[r + 1] - batch.rowStarts[r]);
  const tokens = new Int32Array(rows * width).fill(padId);
  const labels = new Int32Array(rows * width).fill(IGNORE_INDEX);
  const positions = new Int32Array(rows * width);
  const docIds = new Int32Array(rows * width).fill(-1);
  for (let r = 0; r < rows; r++) {
    const a = batch.rowStarts[r], b = batch.rowStarts[r + 1];
    tokens.set(batch.ids.subarray(a, b), r * width);
    labels.set(batch.targets.subarray(a, b), r * width);
    positions.set(batch.positions.subarray(a, b), r * width);
    docIds.set(batch.docIds.subarray(a, b), r * width);
  }
  return { rows, width, tokens, labels, positions, docIds };
}
