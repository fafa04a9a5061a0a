import { performance } from 'node:perf_hooks';
import { DataType, encodeModel } from './proto.js';
import { createSession, ort, runF32 } from './session.js';

export interface MatmulOptions {
  /** B given as [N, K] (a torch Linear weight), computing A·Bᵀ with Gemm transB=1. */
  transB?: boolean;
  threads?: number;
}

export interface OrtMatmul {
  /** A is [M, K]; B is [K, N], or [N, K] with transB. Returns C [M, N]. */
  run(a: Float32Array, b: Float32Array): Promise<Float32Array>;
  release(): Promise<void>;
}

function checkDims(M: number, N: number, K: number): void {
  for (const [k, v] of Object.entries({ M, N, K })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`ORT matmul: ${k} must be a positive integer, got ${v}`);
  }
}

/** A one-node ORT session computing C = A·B (MatMul) or A·Bᵀ (Gemm transB=1) in f32. */
export async function createOrtMatmul(M: number, N: number, K: number, opts: MatmulOptions = {}): Promise<OrtMatmul> {
  checkDims(M, N, K);
  const bShape = opts.transB ? [N, K] : [K, N];
  const model = encodeModel({
    name: opts.transB ? 'gemm_transB' : 'matmul',
    // Gemm rather than Transpose+MatMul: that is how ORT itself runs x·Wᵀ, without a copy of W.
    nodes: [
      opts.transB
        ? { op: 'Gemm', inputs: ['A', 'B'], outputs: ['C'], attrs: { transB: 1 } }
        : { op: 'MatMul', inputs: ['A', 'B'], outputs: ['C'] },
    ],
    initializers: [],
    inputs: [
      { name: 'A', elemType: DataType.FLOAT, shape: [M, K] },
      { name: 'B', elemType: DataType.FLOAT, shape: bShape },
    ],
    outputs: [{ name: 'C', elemType: DataType.FLOAT, shape: [M, N] }],
  });
  const session = await createSession(model, { threads: opts.threads });
  return {
    async run(a, b) {
      if (a.length !== M * K) throw new Error(`ORT matmul: A has ${a.length} values, expected [${M}, ${K}] = ${M * K}`);
      if (b.length !== N * K) throw new Error(`ORT matmul: B has ${b.length} values, expected [${bShape.join(', ')}] = ${N * K}`);
      return runF32(session, { A: new ort.Tensor('float32', a, [M, K]), B: new ort.Tensor('float32', b, bShape) }, 'C');
    },
    release: () => session.release(),
  };
}

export interface PeerOptions extends MatmulOptions {
  warmup?: number;
  /** Timed iterations; at least this many, and more until minMs has elapsed. */
  iters?: number;
  minMs?: number;
  /** Seed of the random inputs, so two runs time the same data. */
  seed?: number;
}

export interface PeerResult {
  /** From the median iteration. */
  gflops: number;
  msPerIter: number;
  /** From the fastest iteration: steadier than the median when other processes share the cores. */
  gflopsBest: number;
  msBest: number;
  iters: number;
}

/**
 * Times ORT's f32 MatMul of [M,K]x[K,N] (or Gemm transB) on random inputs created once per call.
 * Both operands are graph inputs, not initializers, so ORT cannot pre-pack B: in training the
 * weights change every step, and our matmul gets no such head start either.
 */
export async function ortMatmulPeer(M: number, N: number, K: number, opts: PeerOptions = {}): Promise<PeerResult> {
  checkDims(M, N, K);
  const mm = await createOrtMatmul(M, N, K, opts);
  try {
    let s = (opts.seed ?? 1) >>> 0;
    // Uniform in [-1, 1): xorshift is enough for timing inputs, which only need to be non-trivial.
    const rand = () => {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      return s / 2 ** 31 - 1;
    };
    const a = Float32Array.from({ length: M * K }, rand);
    const b = Float32Array.from({ length: K * N }, rand);
    for (let i = 0; i < (opts.warmup ?? 2); i++) await mm.run(a, b);
    const times: number[] = [];
    const minIters = opts.iters ?? 5;
    const minMs = opts.minMs ?? 1000;
    const start = performance.now();
    while (times.length < minIters || performance.now() - start < minMs) {
      const t0 = performance.now();
      await mm.run(a, b);
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    const mid = times.length >> 1;
    const ms = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
    const flops = 2 * M * N * K;
    return { gflops: flops / (ms * 1e6), msPerIter: ms, gflopsBest: flops / (times[0] * 1e6), msBest: times[0], iters: times.length };
  } finally {
    await mm.release();
  }
}
