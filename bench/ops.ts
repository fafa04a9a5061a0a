// Kernel throughput: our matmul and fused attention against onnxruntime-node on the same shapes,
// measured in the same run, reported as ratios.
import { performance } from 'node:perf_hooks';
import { Tensor, f32ToBf16, native, ops, withScope, type DType } from '../src/tensor/index.js';
import { ortAttentionPeer } from './onnx/attention-peer.js';
import { ortMatmulPeer } from './onnx/matmul-peer.js';
import { startOnednnPeer } from './onednn/peer.js';
import { ortVersion } from './onnx/session.js';
import { measureMachine, printMachine } from './machine.js';
import { decodeBound, memoryBound } from './memory-bound.js';
import { printTable, writeReport } from './report.js';
import { median } from './timing.js';
import type { BenchSuite } from './types.js';

/** Median milliseconds of fn over at least `minMs` (and 3 runs), after one warm-up run. */
function timeMs(fn: () => void, minMs: number): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || performance.now() - start < minMs) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

function medianOfCalls(fn: () => void, n: number): number {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

function random(shape: number[], dtype: DType): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  return dtype === 'bf16' ? Tensor.fromArray(f32ToBf16(a), shape, 'bf16') : Tensor.fromArray(a, shape, 'f32');
}

export interface MatmulCase {
  name: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

// The three products of a Llama linear layer (x·Wᵀ forward, dY·W and dYᵀ·X backward) at 7B widths,
// with fewer tokens than a real micro-batch so a 2-core run finishes in minutes.
export function matmulCases(quick: boolean): MatmulCase[] {
  const t = quick ? 128 : 512;
  const c = quick ? 1024 : 4096;
  const f = quick ? 2752 : 11008;
  return [
    { name: 'q_proj x·Wᵀ', M: t, N: c, K: c, transA: false, transB: true },
    { name: 'q_proj dY·W', M: t, N: c, K: c, transA: false, transB: false },
    { name: 'q_proj dYᵀ·X', M: c, N: c, K: t, transA: true, transB: false },
    { name: 'up_proj x·Wᵀ', M: t, N: f, K: c, transA: false, transB: true },
    { name: 'down_proj x·Wᵀ', M: t, N: c, K: f, transA: false, transB: true },
    { name: 'square', M: quick ? 512 : 2048, N: quick ? 512 : 2048, K: quick ? 512 : 2048, transA: false, transB: false },
    { name: 'small', M: 64, N: 256, K: 256, transA: false, transB: true },
  ];
}

const parts = ['memory', 'decode', 'gemm', 'attention'] as const;

export const run: BenchSuite = async (opts) => {
  if (opts.device !== 'cpu') throw new Error(`bench ops measures the CPU kernels only; on a GPU the CUDA kernels' figures come from bench/device-check.sh (polytune_cuda_check --bench)`);
  // 'bound' is the name the cross-entropy and SwiGLU rows were first run by.
  const only = opts.only?.split(',').map((p) => p.trim()).filter(Boolean).map((p) => (p === 'bound' ? 'memory' : p));
  const unknown = only?.filter((p) => !(parts as readonly string[]).includes(p));
  if (unknown?.length) throw new Error(`bench ops --only: unknown part(s) ${unknown.join(', ')} (choose from ${parts.join(', ')}; bound is memory)`);
  if (only && only.length === 0) throw new Error(`bench ops --only: no part named (choose from ${parts.join(', ')}; bound is memory)`);
  const want = (p: (typeof parts)[number]) => !only?.length || only.includes(p);
  const minMs = opts.quick ? 150 : 1500;
  const machine = measureMachine(opts.quick);
  printMachine(machine);
  const report: Record<string, unknown> = { device: opts.device, quick: opts.quick, build: native().buildInfo(), machine, onnxruntime: ortVersion() };
  if (only?.length) report.only = only;

  if (want('memory')) {
    const mem = memoryBound(opts.quick);
    console.log(`cross-entropy and SwiGLU against their memory-bandwidth bound (bytes moved / copy ${mem.copyGBs.toFixed(1)} GB/s, same run; target ≤ 1.5)`);
    printTable(mem.rows.map((r) => ({ op: r.op, dtype: r.dtype, shape: r.shape, MB: r.bytes / 1e6, ms: r.ms, 'bound ms': r.boundMs, 'ms / bound': r.ratio })));
    console.log('');
    report.memoryBound = mem;
  }

  if (want('decode')) {
    const decode = decodeBound(opts.quick);
    console.log(`decoding x·Wᵀ (M rows, small-M path) against streaming the weights once (weight bytes / copy ${decode.copyGBs.toFixed(1)} GB/s, same run; target ≥ 70% at M = 1)`);
    printTable(decode.rows.map((r) => ({ dtype: r.dtype, M: r.M, 'N×K': `${r.N}×${r.K}`, 'weights MB': r.weightBytes / 1e6, ms: r.ms, 'bound ms': r.boundMs, '% of bound': 100 * r.ofBound, 'tokens/s at M': (r.M * 1e3) / r.ms })));
    console.log('');
    report.decode = decode;
  }

  const matmul: Record<string, unknown>[] = [];
  if (want('gemm')) {
    // GEMM: ours against oneDNN in the same dtype, interleaved round by round (ours k calls, the
    // peer k calls, ...), medians of the per-round medians; ORT's f32 MatMul as a second f32 peer.
    const dnnl = await startOnednnPeer();
    if ('missing' in dnnl) console.log(`oneDNN peer skipped: ${dnnl.missing}\n`);
    // Five rounds: two-thread wall times on a shared 2-vCPU machine moved ±8% between runs of 3.
    const rounds = opts.quick ? 2 : 5, perRound = opts.quick ? 2 : 3;
    const inPlace = native().buildInfo().gemmXwtInPlace;
    const rows: Record<string, string | number>[] = [];
    for (const c of matmulCases(opts.quick)) {
      const flops = 2 * c.M * c.N * c.K;
      const row: Record<string, string | number> = { case: c.name, 'M×N×K': `${c.M}×${c.N}×${c.K}` };
      const rec: Record<string, unknown> = { ...c };
      for (const dtype of ['bf16', 'f32'] as const) {
        const a = random(c.transA ? [c.K, c.M] : [c.M, c.K], dtype);
        const b = random(c.transB ? [c.N, c.K] : [c.K, c.N], dtype);
        const out = Tensor.empty([c.M, c.N], dtype);
        // Cold: B is marked written before each call (a zero-byte write), so it is packed every time,
        // as oneDNN's matmul packs it; warm: B unchanged, its packing reused (gradient accumulation
        // reuses the weights across micro-batches; dYᵀ·X's B is an activation, so only cold is real).
        const nothing = new Uint8Array(0);
        const cold = () => (b.writeBytes(0, nothing), ops.matmul(a, b, { transA: c.transA, transB: c.transB, out }));
        const warm = () => ops.matmul(a, b, { transA: c.transA, transB: c.transB, out });
        cold();
        const ours: number[] = [], oursWarm: number[] = [], peer: number[] = [];
        for (let r = 0; r < rounds; r++) {
          // The peer goes first in every other round, so a drift of the machine within a round (a
          // neighbour's job starting, the clock settling) weighs on both sides alike.
          const timePeer = async () => {
            if (!('missing' in dnnl)) peer.push(await dnnl.matmul(dtype, c.M, c.N, c.K, c.transA, c.transB, perRound));
          };
          if (r % 2) await timePeer();
          ours.push(medianOfCalls(cold, perRound));
          // No warm figure where nothing is cached: dYᵀ·X's B is an activation, and x·Wᵀ may read W in place.
          if (!c.transA && !(c.transB && inPlace.includes(dtype))) oursWarm.push(medianOfCalls(warm, perRound));
          if (!(r % 2)) await timePeer();
        }
        for (const t of [a, b, out]) t.dispose();
        const oursG = flops / (median(ours) * 1e6);
        row[`${dtype} GFLOP/s`] = oursG;
        // '' where there is no warm figure, so every row has the column (the table takes its columns from the first row).
        row[`${dtype} warm`] = oursWarm.length ? flops / (median(oursWarm) * 1e6) : '';
        if (oursWarm.length) rec[`ours${dtype === 'bf16' ? 'Bf16' : 'F32'}WarmGflops`] = row[`${dtype} warm`];
        rec[`ours${dtype === 'bf16' ? 'Bf16' : 'F32'}Gflops`] = oursG;
        if (peer.length) {
          const peerG = flops / (median(peer) * 1e6);
          row[`oneDNN ${dtype}`] = peerG;
          row[`${dtype} / oneDNN`] = oursG / peerG;
          rec[`onednn${dtype === 'bf16' ? 'Bf16' : 'F32'}Gflops`] = peerG;
        }
        row[`${dtype} % peak`] = (100 * oursG) / (dtype === 'bf16' ? machine.peakBf16Gflops || machine.peakF32Gflops : machine.peakF32Gflops);
      }
      // ORT's peer is its plain f32 MatMul (Gemm with transB for x·Wᵀ, as ORT runs a Linear).
      const ort = await ortMatmulPeer(c.M, c.N, c.K, { transB: c.transB, minMs, iters: 3, warmup: 1 });
      row['ORT f32'] = ort.gflops;
      row['f32 / ORT'] = (rec.oursF32Gflops as number) / ort.gflops;
      rec.ortF32Gflops = ort.gflops;
      rows.push(row);
      matmul.push(rec);
    }
    if (!('missing' in dnnl)) dnnl.close();
    console.log(`x·Wᵀ reads W in place (nothing packed, no warm figure) in: ${inPlace.join(', ') || 'none'}`);
    console.log(`matmul GFLOP/s: ours (packing B every call; 'warm': B's packing cached) vs oneDNN ${'missing' in dnnl ? '(absent)' : dnnl.version} in the same dtype (interleaved, ${rounds} rounds, the peer first in every other one), and vs onnxruntime-node f32`);
    printTable(rows);
    report.matmul = matmul;
  }

  const attention: Record<string, unknown>[] = [];
  if (want('attention')) {
    // Attention FLOPs: "causal" counts only the unmasked scores, T(T+1)/2 per head (QKᵀ and PV,
    // 2 flops per multiply-add); the ORT peer, unfused, executes the full T×T, so both are shown.
    const arows: Record<string, string | number>[] = [];
    const [T, H, Hkv, D] = opts.quick ? [256, 8, 2, 64] : [1024, 32, 8, 128];
    const causalFlops = 4 * H * D * ((T * (T + 1)) / 2);
    const fullFlops = 4 * H * D * T * T;
    for (const dtype of ['bf16', 'f32'] as const) {
      withScope(() => {
        const q = random([1, T, H, D], dtype), k = random([1, T, Hkv, D], dtype), v = random([1, T, Hkv, D], dtype);
        const fwdMs = timeMs(() => withScope(() => void ops.attention(q, k, v)), minMs);
        const s = ops.attention(q, k, v);
        const dout = random([1, T, H, D], dtype);
        const bwdMs = timeMs(() => withScope(() => void ops.attentionBackward(q, k, v, s.out, dout, s.lse)), minMs);
        const peak = dtype === 'bf16' ? machine.peakBf16Gflops || machine.peakF32Gflops : machine.peakF32Gflops;
        const fwdG = causalFlops / (fwdMs * 1e6), bwdG = (2.5 * causalFlops) / (bwdMs * 1e6);
        arows.push({ dtype, 'T×H×D': `${T}×${H}(kv ${Hkv})×${D}`, 'fwd ms': fwdMs, 'fwd causal GFLOP/s': fwdG, 'fwd % peak': (100 * fwdG) / peak, 'bwd ms': bwdMs, 'bwd causal GFLOP/s': bwdG, 'bwd % peak': (100 * bwdG) / peak });
        attention.push({ dtype, T, H, Hkv, D, fwdMs, bwdMs, fwdGflops: fwdG, bwdGflops: bwdG, fwdPctPeak: (100 * fwdG) / peak });
      });
    }
    // ORT peer: the same causal attention forward as unfused plain ops, f32, kv heads expanded.
    const peer = await ortAttentionPeer(H, T, D, { minMs });
    const ourF32 = attention.find((a) => a.dtype === 'f32')!.fwdMs as number;
    arows.push({ dtype: 'ORT f32 (unfused)', 'T×H×D': `${T}×${H}×${D}`, 'fwd ms': peer.msPerIter, 'fwd causal GFLOP/s': causalFlops / (peer.msPerIter * 1e6), 'fwd % peak': (100 * fullFlops) / (peer.msPerIter * 1e6) / machine.peakF32Gflops, 'bwd ms': '', 'bwd causal GFLOP/s': '', 'bwd % peak': '' });
    console.log('\ncausal attention (fused, no T×T buffer); backward counted as 2.5× the forward; % of the measured peak of the dtype');
    printTable(arows);
    console.log(`ORT (unfused) executes the full T×T scores: ${(fullFlops / (peer.msPerIter * 1e6)).toFixed(1)} GFLOP/s executed, ${(causalFlops / (peer.msPerIter * 1e6)).toFixed(1)} useful (its % peak counts executed)`);
    console.log(`attention forward, ORT ms / ours (f32) = ${(peer.msPerIter / ourF32).toFixed(2)}`);
    report.ortAttentionForwardMs = peer.msPerIter;
    report.attention = attention;
  }

  // A partial run gets its own file, so it never replaces the whole suite's report.
  const path = writeReport(only?.length ? `ops-${[...new Set(only)].join('+')}` : 'ops', opts.out, report);
  console.log(`\nwrote ${path}`);
  return { matmul, attention };
};
