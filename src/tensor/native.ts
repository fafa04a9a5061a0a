import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from './root.js';

/** The handle the addon gives for one tensor; src/tensor/tensor.ts is the public face. */
export interface NativeTensor {
  readonly dtype: 'bf16' | 'f32' | 'i32';
  readonly shape: number[];
  /** 'cpu' or 'cuda:N'. */
  readonly device: string;
  readonly disposed: boolean;
  dispose(): void;
  view(shape: number[], elementOffset: number): NativeTensor;
  readBytes(byteOffset?: number, byteLength?: number): Buffer;
  /**
   * A Buffer over the tensor's own memory (no copy), range-checked like readBytes. It holds the
   * memory alive: disposing the tensor frees it only once every view is garbage collected.
   */
  bytesView(byteOffset?: number, byteLength?: number): Buffer;
  writeBytes(byteOffset: number, data: ArrayBufferView): void;
  /** Detaches every bytesView made through this handle (they read as empty after) and ends its exposure. */
  endBytesViews(): void;
  sameStorage(other: NativeTensor): boolean;
}

type T = NativeTensor;

export interface NativeAddon {
  NativeTensor: new (shape: number[], dtype: string, device?: string) => NativeTensor;
  /** Devices this process can allocate on: 'cpu' first, then 'cuda:N' for each GPU a CUDA build sees. */
  devices(): string[];
  /** dst = src, between any two devices (same dtype and element count). */
  copy(src: T, dst: T): void;
  /**
   * Live native buffers and bytes; and the freed host buffers of 8 MiB and more kept for reuse by
   * the next request of their size (POLYTUNE_HOST_CACHE_MB bounds them), with how many requests
   * they served.
   */
  memoryStats(): { liveBuffers: number; liveBytes: number; keptBuffers: number; keptBytes: number; keptReuses: number; keptLimitBytes: number };
  /** simd: the compile-time vector ISA; isa: the kernels' path in words; amx: AMX tiles usable now. */
  /** gemmXwtInPlace: the dtypes whose x·Wᵀ reads W where it lies (nothing packed or cached for W). */
  buildInfo(): { cuda: boolean; threads: number; simd: string; isa: string; amx: boolean; gemmXwtInPlace: ('f32' | 'bf16')[] };
  /** Measured FMA (f32) or vdpbf16ps (bf16) peak of all threads, best of rounds over `ms`; 0 where the build has none. */
  peakGflops(dtype: 'f32' | 'bf16', ms: number): number;
  /** The packed-weights cache of the CPU GEMM (native/cpu/pack_cache.h): live entries, bytes, hits, fills, limit. */
  packCacheStats(): {
    entries: number;
    bytes: number;
    hits: number;
    fills: number;
    limitBytes: number;
    /** Buffers of dropped entries kept for the next fill of their size, their bytes, and the fills that took one. */
    spares: number;
    spareBytes: number;
    reuses: number;
  };
  matmul(a: T, b: T, out: T, transA: boolean, transB: boolean, accumulate: boolean): void;
  embedding(ids: T, weight: T, out: T): void;
  embeddingBackward(ids: T, dout: T, dweight: T): void;
  rmsnorm(x: T, weight: T, eps: number, out: T, rstd: T): void;
  rmsnormBackward(x: T, weight: T, rstd: T, dout: T, dx: T, dweight: T): void;
  rope(x: T, positions: T, cos: T, sin: T, out: T, inverse: boolean): void;
  attention(q: T, k: T, v: T, cuSeqlens: T | null, out: T, lse: T, scale: number, maxSeqlen: number): void;
  attentionBackward(q: T, k: T, v: T, cuSeqlens: T | null, out: T, dout: T, lse: T, dq: T, dk: T, dv: T, scale: number, maxSeqlen: number): void;
  /** Appends each segment's keys/values (i32 [nseg, 4]: slot, start, n, row) to the cache and attends over it. */
  kvAttention(q: T, knew: T, vnew: T, kcache: T, vcache: T, segments: T, out: T, scale: number): void;
  swiglu(gate: T, up: T, out: T): void;
  swigluBackward(gate: T, up: T, dout: T, dgate: T, dup: T): void;
  add(a: T, b: T, out: T): void;
  cast(src: T, dst: T): void;
  fill(t: T, value: number): void;
  scale(t: T, s: number): void;
  sumSquares(t: T): number;
  sumSquaresInto(t: T, out: T, index: number): void;
  crossEntropy(logits: T, targets: T, ignoreIndex: number, losses: T, dlogits: T | null, gradScale: number): undefined;
  adamw(param: T, grad: T, master: T | null, m: T, v: T, opts: AdamWNativeOptions): void;
  /** MPI collectives (native/binding_dist.cc); built: false where the addon was built without MPI. */
  dist: NativeDist;
}

export interface NativeDist {
  built: boolean;
  /** The MPI library's own version line, where built. */
  library?: string;
  nccl: boolean;
  init(timeoutSeconds: number): { rank: number; size: number; host: string; hosts: string[] };
  /** timeoutS: this call's deadline (0 or absent: the job's; Infinity: capped at 1e7 s). */
  allreduceSum(tensors: T[], extra: Float64Array | null, label: string, timeoutS?: number): void;
  broadcast(tensors: T[], root: number, label: string): void;
  /** ZeRO-1: `counts` (one per rank, in rank order) split `full` into contiguous ranges; this rank's range ends up holding the sum. */
  reduceScatterSum(full: T, counts: number[], label: string): void;
  /** Every rank's range of `full` copied to every rank, in place. */
  allgather(full: T, counts: number[], label: string): void;
  /** Every rank's shard into root's `full` (null on the other ranks). */
  gather(shard: T, full: T | null, counts: number[], root: number, label: string, timeoutS?: number): void;
  barrier(label: string, timeoutS?: number): void;
  abort(code: number, why: string): never;
  finalize(): void;
}

export interface AdamWNativeOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
  gradScale: number;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon) return addon;
  const path = join(packageRoot(), 'build', 'Release', 'polytune_native.node');
  if (!existsSync(path)) {
    throw new Error(`the native addon is not built (${path} is missing): run \`npm install\` or \`npm run build:native\``);
  }
  addon = createRequire(import.meta.url)(path) as NativeAddon;
  return addon;
}
