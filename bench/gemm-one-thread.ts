// GEMM on one thread against oneDNN on one thread, timed by each process's own CPU time and
// interleaved round by round (ours cold, ours warm, the peer), so the ratio survives a machine
// whose other jobs take the cores away: wall time would charge us for their time slices.
//   npm run build:ts && node dist/bench/gemm-one-thread.js [--quick] [--rounds N] [--calls N]
//       [--case text] [--dtype bf16|f32] [--base path/to/other/polytune_native.node]
// Prints per shape and dtype the median CPU ms per call and ours / oneDNN as a throughput ratio
// (> 1: we are faster). "cold" marks B written before each call (packed every time, as oneDNN
// packs it); "warm" reuses B's cached packing (weights across micro-batches; dYᵀ·X's B is an
// activation, and x·Wᵀ may read W in place, so those have no warm figure). --base loads a second
// build of the addon (a copy of build/Release/polytune_native.node from before a change) into the
// same process and times it in the same rounds, for a before/after that shares every round's
// machine state.
import { createRequire } from 'node:module';
import { availableParallelism, loadavg } from 'node:os';
import { resolve } from 'node:path';

// Before the addon (and its OpenMP runtime) loads: both sides on one thread. The peer inherits it.
process.env.OMP_NUM_THREADS = '1';

const { f32ToBf16, native } = await import('../src/tensor/index.js');
type Addon = ReturnType<typeof native>;
type Handle = InstanceType<Addon['NativeTensor']>;
const { startOnednnPeer } = await import('./onednn/peer.js');
const { matmulCases } = await import('./ops.js');
const { printTable } = await import('./report.js');
const { median } = await import('./timing.js');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const quick = process.argv.includes('--quick');
const rounds = Number(arg('--rounds') ?? (quick ? 2 : 5));
const calls = Number(arg('--calls') ?? 3);
const only = arg('--case');
const dtypes = (arg('--dtype') ? [arg('--dtype')] : ['bf16', 'f32']) as ('bf16' | 'f32')[];
const basePath = arg('--base');

function cpuMs(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1e3;
}
function randomBytes(n: number, dtype: 'bf16' | 'f32'): ArrayBufferView {
  const a = Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  return dtype === 'bf16' ? f32ToBf16(a) : a;
}

const dnnl = await startOnednnPeer();
if ('missing' in dnnl) {
  console.error(`no oneDNN peer: ${dnnl.missing}`);
  process.exit(2);
}
const sides: [string, Addon][] = [['ours', native()]];
if (basePath) sides.push(['base', createRequire(import.meta.url)(resolve(basePath)) as Addon]);
const info = native().buildInfo();
// x·Wᵀ reading W in place packs and caches nothing: its warm call is its cold call.
const inPlace = info.gemmXwtInPlace;
console.log(`ours: ${info.isa} (${info.simd}), ${info.threads} thread(s); oneDNN ${dnnl.version}; ${availableParallelism()} CPUs, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`${rounds} interleaved rounds of ${calls} calls each; medians of per-call process CPU time${basePath ? `; base = ${basePath}` : ''}\n`);
const rows: Record<string, string | number>[] = [];
for (const c of matmulCases(quick).filter((x) => x.name !== 'small' && (!only || x.name.includes(only)))) {
  for (const dtype of dtypes) {
    const aShape = c.transA ? [c.K, c.M] : [c.M, c.K], bShape = c.transB ? [c.N, c.K] : [c.K, c.N];
    const aBytes = randomBytes(c.M * c.K, dtype), bBytes = randomBytes(c.K * c.N, dtype);
    const nothing = new Uint8Array(0);
    const runs = sides.map(([name, n]) => {
      const make = (shape: number[], bytes?: ArrayBufferView) => {
        const t = new n.NativeTensor(shape, dtype);
        if (bytes) t.writeBytes(0, bytes);
        return t;
      };
      const a = make(aShape, aBytes), b = make(bShape, bBytes), out = make([c.M, c.N]);
      const warm = () => n.matmul(a, b, out, c.transA, c.transB, false);
      // A zero-byte write marks B changed, so its cached packing is not reused.
      const cold = () => (b.writeBytes(0, nothing), warm());
      cold();
      return { name, cold, warm, tensors: [a, b, out] as Handle[], coldMs: [] as number[], warmMs: [] as number[] };
    });
    const peer: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // Every other round reverses the order, the peer included, so drift within a round is shared.
      if (r % 2) peer.push(await dnnl.matmulCpu(dtype, c.M, c.N, c.K, c.transA, c.transB, calls));
      for (const s of r % 2 ? [...runs].reverse() : runs) {
        for (let i = 0; i < calls; i++) s.coldMs.push(cpuMs(s.cold));
        if (c.transA || (c.transB && inPlace.includes(dtype))) continue;
        s.warm();
        for (let i = 0; i < calls; i++) s.warmMs.push(cpuMs(s.warm));
      }
      if (!(r % 2)) peer.push(await dnnl.matmulCpu(dtype, c.M, c.N, c.K, c.transA, c.transB, calls));
    }
    const p = median(peer);
    const row: Record<string, string | number> = { case: c.name, dtype, 'M×N×K': `${c.M}×${c.N}×${c.K}`, 'oneDNN ms': p };
    for (const s of runs) {
      s.tensors.forEach((t) => t.dispose());
      const cold = median(s.coldMs), warm = s.warmMs.length ? median(s.warmMs) : NaN;
      row[`${s.name} cold ms`] = cold;
      row[`${s.name} cold/oneDNN`] = p / cold;
      row[`${s.name} warm/oneDNN`] = Number.isNaN(warm) ? '' : p / warm;
    }
    if (runs.length > 1) {
      row['cold base/ours'] = median(runs[0].coldMs) > 0 ? median(runs[1].coldMs) / median(runs[0].coldMs) : '';
      row['warm base/ours'] = runs[0].warmMs.length && runs[1].warmMs.length ? median(runs[1].warmMs) / median(runs[0].warmMs) : '';
    }
    rows.push(row);
  }
}
dnnl.close();
printTable(rows);
console.log(`\nload at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
