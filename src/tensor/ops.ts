// Typed entry points to the native ops. Outputs are allocated here unless the caller passes one, on
// the device of the op's inputs; all argument checking (shapes, dtypes, ids, one device for all of
// an op's tensors) happens natively, so messages are the same from any caller.
import { native } from './native.js';
import { Tensor } from './tensor.js';

const n = native;

/** out = op(a)·op(b) (or out += with accumulate), fp32 accumulation. */
export function matmul(
  a: Tensor,
  b: Tensor,
  opts: { transA?: boolean; transB?: boolean; out?: Tensor; accumulate?: boolean } = {},
): Tensor {
  const ta = opts.transA ?? false;
  const tb = opts.transB ?? false;
  const out = opts.out ?? Tensor.empty([ta ? a.shape[1] : a.shape[0], tb ? b.shape[0] : b.shape[1]], a.dtype, a.device);
  n().matmul(a.handle, b.handle, out.handle, ta, tb, opts.accumulate ?? false);
  return out;
}

export function embedding(ids: Tensor, weight: Tensor): Tensor {
  const out = Tensor.empty([ids.numel, weight.shape[1]], weight.dtype, weight.device);
  n().embedding(ids.handle, weight.handle, out.handle);
  return out;
}

export function embeddingBackward(ids: Tensor, dout: Tensor, dweight: Tensor): void {
  n().embeddingBackward(ids.handle, dout.handle, dweight.handle);
}

export function rmsnorm(x: Tensor, weight: Tensor, eps: number): { out: Tensor; rstd: Tensor } {
  const out = Tensor.empty(x.shape, x.dtype, x.device);
  const rstd = Tensor.empty([x.shape[0]], 'f32', x.device);
  n().rmsnorm(x.handle, weight.handle, eps, out.handle, rstd.handle);
  return { out, rstd };
}

/** Returns dx; accumulates into dweight. */
export function rmsnormBackward(x: Tensor, weight: Tensor, rstd: Tensor, dout: Tensor, dweight: Tensor): Tensor {
  const dx = Tensor.empty(x.shape, x.dtype, x.device);
  n().rmsnormBackward(x.handle, weight.handle, rstd.handle, dout.handle, dx.handle, dweight.handle);
  return dx;
}

/** Rotates x [N, H, D] in place (or into out) by the angles of positions; inverse for backward. */
export function rope(x: Tensor, positions: Tensor, cos: Tensor, sin: Tensor, opts: { inverse?: boolean; out?: Tensor } = {}): Tensor {
  const out = opts.out ?? x;
  n().rope(x.handle, positions.handle, cos.handle, sin.handle, out.handle, opts.inverse ?? false);
  return out;
}

/**
 * Packed documents, FlashAttention's varlen layout: `cuSeqlens` i32 [docs + 1] are offsets into the
 * flattened B·Tk key positions (0 first, B·Tk last, no document across a row); without them each row
 * is one document. `maxSeqlen` (the longest document; 0 or absent: the row length) sizes the CUDA grid.
 */
export interface AttentionOptions {
  cuSeqlens?: Tensor;
  maxSeqlen?: number;
  scale?: number;
}

/** q [B, Tq, Hq, D], k/v [B, Tk, Hkv, D]; returns out [B, Tq, Hq, D] and lse [B, Hq, Tq]. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): { out: Tensor; lse: Tensor } {
  const out = Tensor.empty(q.shape, q.dtype, q.device);
  const lse = Tensor.empty([q.shape[0], q.shape[2], q.shape[1]], 'f32', q.device);
  n().attention(q.handle, k.handle, v.handle, opts.cuSeqlens?.handle ?? null, out.handle, lse.handle, opts.scale ?? 1 / Math.sqrt(q.shape[3]), opts.maxSeqlen ?? 0);
  return { out, lse };
}

export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  dout: Tensor,
  lse: Tensor,
  opts: AttentionOptions = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const dq = Tensor.empty(q.shape, q.dtype, q.device);
  const dk = Tensor.empty(k.shape, k.dtype, q.device);
  const dv = Tensor.empty(v.shape, v.dtype, q.device);
  n().attentionBackward(
    q.handle, k.handle, v.handle, opts.cuSeqlens?.handle ?? null, out.handle, dout.handle, lse.handle,
    dq.handle, dk.handle, dv.handle, opts.scale ?? 1 / Math.sqrt(q.shape[3]), opts.maxSeqlen ?? 0,
  );
  return { dq, dk, dv };
}

export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const out = Tensor.empty(gate.shape, gate.dtype, gate.device);
  n().swiglu(gate.handle, up.handle, out.handle);
  return out;
}

export function swigluBackward(gate: Tensor, up: Tensor, dout: Tensor): { dgate: Tensor; dup: Tensor } {
  const dgate = Tensor.empty(gate.shape, gate.dtype, gate.device);
  const dup = Tensor.empty(up.shape, up.dtype, gate.device);
  n().swigluBackward(gate.handle, up.handle, dout.handle, dgate.handle, dup.handle);
  return { dgate, dup };
}

/** a + b into out (default: a new tensor; pass a to add in place). */
export function add(a: Tensor, b: Tensor, out?: Tensor): Tensor {
  const o = out ?? Tensor.empty(a.shape, a.dtype, a.device);
  n().add(a.handle, b.handle, o.handle);
  return o;
}

export function cast(src: Tensor, dtype: 'bf16' | 'f32', out?: Tensor): Tensor {
  const o = out ?? Tensor.empty(src.shape, dtype, src.device);
  n().cast(src.handle, o.handle);
  return o;
}

export function fill(t: Tensor, value: number): Tensor {
  n().fill(t.handle, value);
  return t;
}

export function scaleInPlace(t: Tensor, s: number): Tensor {
  n().scale(t.handle, s);
  return t;
}

/**
 * Sum of squares (accumulated in double, in fixed blocks: the same on any thread count). With
 * `into`, written as an f32 (hi, lo) pair at out[2·index], out[2·index + 1] instead of returned, so
 * several reductions are read back in one transfer; hi + lo is the double sum to about 2^-48.
 */
export function sumSquares(t: Tensor): number;
export function sumSquares(t: Tensor, into: { out: Tensor; index: number }): void;
export function sumSquares(t: Tensor, into?: { out: Tensor; index: number }): number | void {
  if (!into) return n().sumSquares(t.handle);
  n().sumSquaresInto(t.handle, into.out.handle, into.index);
}

export const IGNORE_INDEX = -100;

/**
 * Per-row losses of logits [N, V] (nats; 0 for ignored rows) written into `losses` (f32 [N]), so
 * a caller reads the loss once per micro-batch instead of once per call; the trained-token count
 * is the host's to know (from the targets it made). With dlogits (which may be logits itself), also
 * writes gradScale * dLoss/dlogits, fused so the row is read from memory only twice.
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  losses: Tensor,
  opts: { ignoreIndex?: number; dlogits?: Tensor; gradScale?: number } = {},
): void {
  n().crossEntropy(logits.handle, targets.handle, opts.ignoreIndex ?? IGNORE_INDEX, losses.handle, opts.dlogits?.handle ?? null, opts.gradScale ?? 1);
}

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** 1-based count of updates including this one. */
  step: number;
  /** Multiplies the gradient before the update: the clipping factor. */
  gradScale?: number;
}

/** One AdamW update of one tensor; betas and eps default to the study's 0.9 / 0.95 / 1e-8, weight decay to 0. */
export function adamw(param: Tensor, grad: Tensor, master: Tensor | null, m: Tensor, v: Tensor, o: AdamWOptions): void {
  n().adamw(param.handle, grad.handle, master?.handle ?? null, m.handle, v.handle, {
    lr: o.lr,
    beta1: o.beta1 ?? 0.9,
    beta2: o.beta2 ?? 0.95,
    eps: o.eps ?? 1e-8,
    weightDecay: o.weightDecay ?? 0,
    step: o.step,
    gradScale: o.gradScale ?? 1,
  });
}
