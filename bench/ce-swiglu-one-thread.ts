// Cross-entropy and SwiGLU on one thread, timed by the process's own CPU time and interleaved
// round by round with a copy of the same bytes (and, with --base, a second build of the addon), so
// a before/after survives a machine whose other jobs take the cores away.
//   npm run build:ts && node dist/bench/ce-swiglu-one-thread.js [--rows N] [--rounds N]
//       [--calls N] [--dtype bf16|f32] [--case text] [--stale] [--base path/to/other/polytune_native.node]
// Prints per case the median CPU ms per call, the one-thread copy of the bytes the kernel must move
// (its bound on one core), ms / that bound and, with --base, base ms / ours.
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';

// Before the addon (and its OpenMP runtime) loads.
process.env.OMP_NUM_THREADS = '1';

const { f32ToBf16, native } = await import('../src/tensor/index.js');
type Addon = ReturnType<typeof native>;
type Handle = InstanceType<Addon['NativeTensor']>;
const { printTable } = await import('./report.js');
const { median } = await import('./timing.js');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const rowsN = Number(arg('--rows') ?? 512);
const rounds = Number(arg('--rounds') ?? 5);
const calls = Number(arg('--calls') ?? 3);
const only = arg('--case');
const dtypes = (arg('--dtype') ? [arg('--dtype')] : ['bf16', 'f32']) as ('bf16' | 'f32')[];
const basePath = arg('--base');
const stale = process.argv.includes('--stale');
const [V, F] = [32000, 11008];

function cpuMs(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1e3;
}
function filled(n: number, dtype: 'bf16' | 'f32', scale: number, seed: number): ArrayBufferView {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return dtype === 'bf16' ? f32ToBf16(a) : a;
}

const sides: [string, Addon][] = [['ours', native()]];
if (basePath) sides.push(['base', createRequire(import.meta.url)(resolve(basePath)) as Addon]);
const info = native().buildInfo();
console.log(`ours: ${info.isa} (${info.simd}), ${info.threads} thread(s); load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`${rounds} interleaved rounds of ${calls} calls each; medians of per-call process CPU time${basePath ? `; base = ${basePath}` : ''}\n`);

const table: Record<string, string | number>[] = [];
for (const dtype of dtypes) {
  const sz = dtype === 'bf16' ? 2 : 4;
  const m = rowsN * F;
  const data = { logits: filled(rowsN * V, dtype, 8, 1), g: filled(m, dtype, 6, 2), u: filled(m, dtype, 2, 3), d: filled(m, dtype, 1, 4) };
  const targets = Int32Array.from({ length: rowsN }, (_, i) => (i * 7919) % V);
  // The logits are rewritten before every in-place call (untimed), so each call sees fresh logits,
  // as a training step does; the rewrite also leaves them where the GEMM would (partly in L3).
  // --stale skips it, as `bench ops` does: the gradient of the previous call is the next input and
  // the copy before it has evicted it from the caches.
  const perSide = sides.map(([name, n]) => {
    const make = (shape: number[], dt: 'bf16' | 'f32' | 'i32', bytes?: ArrayBufferView) => {
      const t = new n.NativeTensor(shape, dt);
      if (bytes) t.writeBytes(0, bytes);
      return t;
    };
    const logits = make([rowsN, V], dtype, data.logits), tg = make([rowsN], 'i32', targets), losses = make([rowsN], 'f32');
    const g = make([m], dtype, data.g), u = make([m], dtype, data.u), d = make([m], dtype, data.d);
    const out = make([m], dtype), dg = make([m], dtype), du = make([m], dtype);
    const cases = [
      { name: 'cross-entropy loss', bytes: rowsN * V * sz, fn: () => void n.crossEntropy(logits, tg, -100, losses, null, 1) },
      { name: 'cross-entropy + grad (in place)', bytes: 2 * rowsN * V * sz, prep: stale ? undefined : () => logits.writeBytes(0, data.logits), fn: () => void n.crossEntropy(logits, tg, -100, losses, logits, 1 / rowsN) },
      { name: 'swiglu forward', bytes: 3 * m * sz, fn: () => n.swiglu(g, u, out) },
      { name: 'swiglu backward', bytes: 5 * m * sz, fn: () => n.swigluBackward(g, u, d, dg, du) },
    ].filter((c) => !only || c.name.includes(only));
    // A copy of the same bytes (half read, half written), on the same thread: the one-core bound.
    const copies = cases.map((c) => [make([c.bytes / 8], 'f32'), make([c.bytes / 8], 'f32')]);
    return { name, n, cases, copies, tensors: [logits, tg, losses, g, u, d, out, dg, du, ...copies.flat()] as Handle[] };
  });
  const cases = perSide[0].cases;
  const ms: Record<string, number[]> = {};
  const put = (k: string, v: number) => (ms[k] ??= []).push(v);
  for (let r = 0; r < rounds; r++) {
    for (const [ci, c] of cases.entries()) {
      const s0 = perSide[0];
      const [src, dst] = s0.copies[ci];
      for (let i = 0; i < calls; i++) put(`${c.name}|copy`, cpuMs(() => s0.n.cast(src, dst)));
      for (const s of r % 2 ? [...perSide].reverse() : perSide) {
        const sc = s.cases[ci] as { fn: () => void; prep?: () => void };
        for (let i = 0; i < calls; i++) {
          sc.prep?.();
          put(`${c.name}|${s.name}`, cpuMs(sc.fn));
        }
      }
    }
  }
  for (const c of cases) {
    const copy = median(ms[`${c.name}|copy`]);
    const row: Record<string, string | number> = { case: c.name, dtype, MB: c.bytes / 1e6, 'copy ms (bound)': copy };
    for (const s of perSide) {
      row[`${s.name} ms`] = median(ms[`${c.name}|${s.name}`]);
      row[`${s.name} / bound`] = median(ms[`${c.name}|${s.name}`]) / copy;
    }
    if (perSide.length > 1) row['base / ours'] = median(ms[`${c.name}|base`]) / median(ms[`${c.name}|ours`]);
    table.push(row);
  }
  for (const s of perSide) s.tensors.forEach((t) => t.dispose());
}
printTable(table);
console.log(`\nload at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
