// Cross-entropy and SwiGLU against their memory-bandwidth bound: the bytes each must move (read
// its inputs once, write its outputs once) over the copy bandwidth measured in the same run,
// interleaved with the kernels.
import { Tensor, f32ToBf16, native, type DType } from '../src/tensor/index.js';
import { copyCase } from './machine.js';
import { interleavedMs } from './timing.js';

export interface MemoryBoundRow {
  op: string;
  dtype: DType;
  shape: string;
  bytes: number;
  ms: number;
  boundMs: number;
  /** ms / boundMs: 1.0 is the bandwidth bound; the target is ≤ 1.5. */
  ratio: number;
}

function filled(n: number, dtype: DType, scale: number, seed: number): Tensor {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return dtype === 'bf16' ? Tensor.fromArray(f32ToBf16(a), [n], 'bf16') : Tensor.fromArray(a, [n], 'f32');
}

export function memoryBound(quick: boolean): { copyGBs: number; rows: MemoryBoundRow[] } {
  const tokens = quick ? 64 : 512;
  const [V, F] = [32000, 11008];
  const n = native();
  const copy = copyCase();
  const rows: MemoryBoundRow[] = [];
  let copyGBs = 0;
  for (const dtype of ['bf16', 'f32'] as const) {
    const sz = dtype === 'bf16' ? 2 : 4;
    const logits = filled(tokens * V, dtype, 8, 1).reshape([tokens, V]);
    const targets = Tensor.fromArray(Int32Array.from({ length: tokens }, (_, i) => (i * 7919) % V), [tokens]);
    const losses = Tensor.empty([tokens], 'f32');
    const m = tokens * F;
    const g = filled(m, dtype, 6, 2), u = filled(m, dtype, 2, 3), d = filled(m, dtype, 1, 4);
    const out = Tensor.empty([m], dtype), dg = Tensor.empty([m], dtype), du = Tensor.empty([m], dtype);
    // Direct addon calls with preallocated outputs: the kernels, not the allocator, are measured.
    const cases = [
      { name: 'copy', fn: copy.fn, bytes: copy.bytes, op: '' , shape: '' },
      { name: 'ce', op: 'cross-entropy loss', shape: `${tokens}×${V}`, bytes: tokens * V * sz, fn: () => void n.crossEntropy(logits.handle, targets.handle, -100, losses.handle, null, 1) },
      { name: 'ce+grad', op: 'cross-entropy + gradient (in place)', shape: `${tokens}×${V}`, bytes: 2 * tokens * V * sz, fn: () => void n.crossEntropy(logits.handle, targets.handle, -100, losses.handle, logits.handle, 1 / tokens) },
      { name: 'swiglu', op: 'swiglu forward', shape: `${tokens}×${F}`, bytes: 3 * m * sz, fn: () => n.swiglu(g.handle, u.handle, out.handle) },
      { name: 'swiglu-bwd', op: 'swiglu backward', shape: `${tokens}×${F}`, bytes: 5 * m * sz, fn: () => n.swigluBackward(g.handle, u.handle, d.handle, dg.handle, du.handle) },
    ];
    const ms = interleavedMs(cases, quick ? 3 : 15);
    const gbs = copy.bytes / (ms.copy * 1e6);
    copyGBs = Math.max(copyGBs, gbs);
    for (const c of cases.slice(1)) {
      const boundMs = c.bytes / (gbs * 1e6);
      rows.push({ op: c.op, dtype, shape: c.shape, bytes: c.bytes, ms: ms[c.name], boundMs, ratio: ms[c.name] / boundMs });
    }
    for (const t of [logits, targets, losses, g, u, d, out, dg, du]) t.dispose();
  }
  copy.dispose();
  return { copyGBs, rows };
}

export interface DecodeRow {
  dtype: DType;
  M: number;
  N: number;
  K: number;
  weightBytes: number;
  ms: number;
  boundMs: number;
  /** boundMs / ms: the fraction of the weight-streaming bound reached (target ≥ 0.7 at M = 1). */
  ofBound: number;
}

/**
 * Decoding's x·Wᵀ with M = 1..16 rows: each call must stream the weight matrix from memory once,
 * so its bound is weight bytes / copy bandwidth (the copy measured interleaved with it). The
 * weights rotate through 4 matrices (> L3), as a model's layers do, so no call finds them cached.
 */
export function decodeBound(quick: boolean): { copyGBs: number; rows: DecodeRow[] } {
  const shapes: [number, number][] = quick ? [[1024, 1024]] : [[4096, 4096], [11008, 4096], [4096, 11008]];
  const n = native();
  const copy = copyCase();
  const rows: DecodeRow[] = [];
  let copyGBs = 0;
  for (const dtype of ['bf16', 'f32'] as const) {
    const sz = dtype === 'bf16' ? 2 : 4;
    for (const [N, K] of shapes) {
      const ws = Array.from({ length: 4 }, (_, i) => filled(N * K, dtype, 0.05, 10 + i).reshape([N, K]));
      for (const M of [1, 4, 16]) {
        const x = filled(M * K, dtype, 1, 5).reshape([M, K]);
        const y = Tensor.empty([M, N], dtype);
        let i = 0;
        const cases = [
          { name: 'copy', fn: copy.fn },
          { name: 'decode', fn: () => n.matmul(x.handle, ws[i++ % 4].handle, y.handle, false, true, false) },
        ];
        const ms = interleavedMs(cases, quick ? 4 : 24);
        const gbs = copy.bytes / (ms.copy * 1e6);
        copyGBs = Math.max(copyGBs, gbs);
        const boundMs = (N * K * sz) / (gbs * 1e6);
        rows.push({ dtype, M, N, K, weightBytes: N * K * sz, ms: ms.decode, boundMs, ofBound: boundMs / ms.decode });
        x.dispose();
        y.dispose();
      }
      for (const w of ws) w.dispose();
    }
  }
  copy.dispose();
  return { copyGBs, rows };
}
