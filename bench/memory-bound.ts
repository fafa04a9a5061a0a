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
    const m = tokens * F;
    const g = filled(m, dtype, 6, 2), u = filled(m, dtype, 2, 3), d = filled(m, dtype, 1, 4);
    const out = Tensor.empty([m], dtype), dg = Tensor.empty([m], dtype), du = Tensor.empty([m], dtype);
    // Direct addon calls with preallocated outputs: the kernels, not the allocator, are measured.
    const cases = [
      { name: 'copy', fn: copy.fn, bytes: copy.bytes, op: '' , shape: '' },
      { name: 'ce', op: 'cross-entropy loss', shape: `${tokens}×${V}`, bytes: tokens * V * sz, fn: () => void n.crossEntropy(logits.handle, targets.handle, -100, null, 1) },
      { name: 'ce+grad', op: 'cross-entropy + gradient (in place)', shape: `${tokens}×${V}`, bytes: 2 * tokens * V * sz, fn: () => void n.crossEntropy(logits.handle, targets.handle, -100, logits.handle, 1 / tokens) },
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
    for (const t of [logits, targets, g, u, d, out, dg, du]) t.dispose();
  }
  copy.dispose();
  return { copyGBs, rows };
}
