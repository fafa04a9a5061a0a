// The one micro-batch type from the data layer to the model: host arrays, validated once on the
// host and uploaded to the model's device, so no kernel reads ids, positions or document
// boundaries back from tensor memory to check them.
import { Tensor, type Device } from '../tensor/index.js';
import { IGNORE_INDEX } from '../tensor/ops.js';
import type { LlamaConfig } from './config.js';

export interface Batch {
  /** Token ids of `rows` rows of equal width, row after row. */
  ids: Int32Array;
  /** Rows (B); the width T is ids.length / rows. */
  rows: number;
  /** Next-token targets per position, IGNORE_INDEX (-100) where nothing is trained. */
  targets?: Int32Array;
  /** Rotary positions; absent: 0..T-1 in every row. Packed rows restart them per document. */
  positions?: Int32Array;
  /**
   * Document boundaries of packed rows (docs + 1 offsets into ids, FlashAttention's varlen layout):
   * attention stays inside a document, and no document crosses a row. Absent: one per row.
   */
  cuSeqlens?: Int32Array;
  /** Targets that are not IGNORE_INDEX: what the loss is averaged over. */
  trainedTokens: number;
}

/** A batch of `rows` rows of ids with their targets (if any), one document per row, counted here. */
export function makeBatch(ids: Int32Array, rows: number, targets?: Int32Array, extra: Pick<Batch, 'positions' | 'cuSeqlens'> = {}): Batch {
  return { ids, rows, ...(targets ? { targets } : {}), ...extra, trainedTokens: targets ? countTrained(targets) : 0 };
}

export function countTrained(targets: Int32Array): number {
  let n = 0;
  for (const t of targets) if (t !== IGNORE_INDEX) n++;
  return n;
}

/** The batch's tensors on one device, after validation. */
export interface DeviceBatch {
  B: number;
  T: number;
  /** i32 [B, T]. */
  ids: Tensor;
  /** i32 [B·T], or null without targets. */
  targets: Tensor | null;
  /** i32 [B·T]. */
  positions: Tensor;
  /** i32 [docs + 1], or null when each row is one document. */
  cuSeqlens: Tensor | null;
  /** The longest document (the CUDA attention grid's bound). */
  maxSeqlen: number;
  trainedTokens: number;
}

/**
 * Checks everything the kernels assume of a batch, on the host, with errors naming the field:
 * ids < vocab, targets < vocab or ignored, positions < max positions, documents that run from 0 to
 * the end without going back or crossing a row, and the trained-token count. Returns the width T
 * and the longest document.
 */
export function validateBatch(b: Batch, config: LlamaConfig): { T: number; maxSeqlen: number } {
  const fail = (msg: string): never => {
    throw new Error(`batch: ${msg}`);
  };
  const V = config.vocab_size, P = config.max_position_embeddings;
  if (!(b.ids instanceof Int32Array)) fail('ids must be an Int32Array');
  const N = b.ids.length;
  if (!(Number.isInteger(b.rows) && b.rows > 0 && N % b.rows === 0 && N > 0)) fail(`rows ${b.rows} must be a positive integer dividing ids.length ${N}`);
  const T = N / b.rows;
  const inRange = (name: string, a: Int32Array, hi: number, what: string, skip?: number) => {
    if (!(a instanceof Int32Array) || a.length !== N) fail(`${name} must be an Int32Array of ${N} (ids.length), got ${a?.length}`);
    for (let i = 0; i < N; i++) {
      const x = a[i];
      if (x !== skip && !(x >= 0 && x < hi)) fail(`${name}[${i}] = ${x} is outside [0, ${hi}) (${what})`);
    }
  };
  inRange('ids', b.ids, V, 'vocab_size');
  if (b.targets) {
    inRange('targets', b.targets, V, `vocab_size; ${IGNORE_INDEX} ignores a position`, IGNORE_INDEX);
    const n = countTrained(b.targets);
    if (b.trainedTokens !== n) fail(`trainedTokens ${b.trainedTokens} disagrees with the ${n} targets that are not ${IGNORE_INDEX}`);
  } else if (b.trainedTokens !== 0) fail(`trainedTokens ${b.trainedTokens} without targets`);
  if (b.positions) inRange('positions', b.positions, P, 'max_position_embeddings');
  else if (T > P) fail(`rows of ${T} positions exceed max_position_embeddings ${P}; packed rows give their positions`);
  if (!b.cuSeqlens) return { T, maxSeqlen: T };
  const cu = b.cuSeqlens;
  if (!(cu instanceof Int32Array) || cu.length < 2) fail('cuSeqlens must be an Int32Array of at least two offsets');
  if (cu[0] !== 0 || cu[cu.length - 1] !== N) fail(`cuSeqlens must run from 0 to ids.length ${N}, got ${cu[0]} .. ${cu[cu.length - 1]}`);
  let maxSeqlen = 0;
  for (let d = 0; d + 1 < cu.length; d++) {
    const a = cu[d], e = cu[d + 1];
    if (!(e > a)) fail(`cuSeqlens[${d + 1}] = ${e} does not follow cuSeqlens[${d}] = ${a}: documents are non-empty and in order`);
    if (Math.floor(a / T) !== Math.floor((e - 1) / T)) fail(`document ${d} [${a}, ${e}) crosses the end of a row of ${T} positions`);
    maxSeqlen = Math.max(maxSeqlen, e - a);
  }
  return { T, maxSeqlen };
}

/** Validates the batch and puts it on `device`; default positions are built here, on the host. */
export function uploadBatch(b: Batch, config: LlamaConfig, device: Device): DeviceBatch {
  const { T, maxSeqlen } = validateBatch(b, config);
  const B = b.rows, N = B * T;
  let pos = b.positions;
  if (!pos) {
    pos = new Int32Array(N);
    for (let i = 0; i < N; i++) pos[i] = i % T;
  }
  return {
    B,
    T,
    ids: Tensor.fromArray(b.ids, [B, T], 'i32', device),
    targets: b.targets ? Tensor.fromArray(b.targets, [N], 'i32', device) : null,
    positions: Tensor.fromArray(pos, [N], 'i32', device),
    cuSeqlens: b.cuSeqlens ? Tensor.fromArray(b.cuSeqlens, [b.cuSeqlens.length], 'i32', device) : null,
    maxSeqlen,
    trainedTokens: b.trainedTokens,
  };
}
