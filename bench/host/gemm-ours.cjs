// Our CPU GEMM at the 7B shapes on whatever CPU runs it (AMX tiles where it has them), straight on
// the built addon: for the device check's host, which has no npm and no oneDNN library; its peer
// there is torch.matmul (gemm_torch.py beside this file), run right after in the same call.
//   node bench/host/gemm-ours.cjs [path/to/polytune_native.node]
// Prints one JSON line: {"isa", "threads", "<shape>": GFLOP/s, ...}, medians of 5 cold calls.
const path = require('node:path');
const m = require(path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..', 'build', 'Release', 'polytune_native.node')));
const shapes = [
  ['q_proj x·Wᵀ', 512, 4096, 4096, false, true],
  ['q_proj dY·W', 512, 4096, 4096, false, false],
  ['up_proj x·Wᵀ', 512, 11008, 4096, false, true],
  ['down_proj x·Wᵀ', 512, 4096, 11008, false, true],
];
const bits = (n) => {
  const u = new Uint16Array(n);
  const f = new Float32Array(1), w = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) { f[0] = Math.random() * 2 - 1; u[i] = w[0] >>> 16; }
  return u;
};
const info = m.buildInfo();
const res = { isa: info.isa, threads: info.threads };
for (const [name, M, N, K, tA, tB] of shapes) {
  const make = (shape, fill) => { const t = new m.NativeTensor(shape, 'bf16'); if (fill) t.writeBytes(0, bits(shape[0] * shape[1])); return t; };
  const a = make([M, K], true), b = make(tB ? [N, K] : [K, N], true), out = make([M, N], false);
  const nothing = new Uint8Array(0);
  const ms = [];
  for (let i = 0; i < 6; i++) {
    b.writeBytes(0, nothing);  // marks B written: packed again, as a peer packs it every call
    const t = process.hrtime.bigint();
    m.matmul(a, b, out, tA, tB, false);
    if (i) ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((x, y) => x - y);
  res[name] = +(2 * M * N * K / (ms[2] * 1e6)).toFixed(1);
  for (const t of [a, b, out]) t.dispose();
}
console.log(JSON.stringify(res));
