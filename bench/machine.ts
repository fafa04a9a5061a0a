// What every CPU bench prints first: the kernels' ISA path, the measured arithmetic peaks, the
// copy bandwidth and the load, so each figure can be read against the hardware it ran on.
import { loadavg } from 'node:os';
import { Tensor, native, ops } from '../src/tensor/index.js';
import { interleavedMs } from './timing.js';

export interface MachinePeaks {
  isa: string;
  amx: boolean;
  threads: number;
  peakF32Gflops: number;
  peakBf16Gflops: number;
  /** Bytes read + written per second by a parallel memcpy of 256 MiB. */
  copyGBs: number;
  loadavg: number[];
}

/** Copies 256 MiB once: seconds for `bytes` of traffic at the measured rate are bytes / copyGBs / 1e9. */
export function copyCase(): { bytes: number; fn: () => void; dispose: () => void } {
  const n = 64 << 20;
  const src = Tensor.full([n], 'f32', 1);
  const dst = Tensor.empty([n], 'f32');
  return { bytes: 2 * 4 * n, fn: () => void ops.cast(src, 'f32', dst), dispose: () => (src.dispose(), dst.dispose()) };
}

export function measureMachine(quick: boolean): MachinePeaks {
  const info = native().buildInfo();
  const ms = quick ? 100 : 400;
  const copy = copyCase();
  const copyMs = interleavedMs([{ name: 'copy', fn: copy.fn }], quick ? 3 : 9).copy;
  copy.dispose();
  return {
    isa: info.isa,
    amx: info.amx,
    threads: info.threads,
    peakF32Gflops: native().peakGflops('f32', ms),
    peakBf16Gflops: native().peakGflops('bf16', ms),
    copyGBs: copy.bytes / (copyMs * 1e6),
    loadavg: loadavg(),
  };
}

export function printMachine(m: MachinePeaks): void {
  console.log(
    `ISA path: ${m.isa}${m.amx ? '' : ' (AMX: no)'}; ${m.threads} threads; measured peak ${m.peakF32Gflops.toFixed(0)} GFLOP/s f32 FMA, ` +
      `${m.peakBf16Gflops ? m.peakBf16Gflops.toFixed(0) + ' GFLOP/s bf16 dot products' : 'no bf16 dot products'}; ` +
      `copy ${m.copyGBs.toFixed(1)} GB/s; load average ${m.loadavg.map((x) => x.toFixed(2)).join(' ')}\n`,
  );
}
