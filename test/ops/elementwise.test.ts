// The flat elementwise ops: add, cast (bf16 round-to-nearest-even), fill, scale, and sumSquares (the
// gradient norm's reduction).
import { describe, expect, it } from 'vitest';
import { Tensor, f32ToBf16, native, withScope, type DType, type Device } from '../../src/tensor/index.js';
import { randn, rng } from '../helpers/random.js';
import { digestsPerThreadCount } from '../helpers/threads.js';
import { backends, caseLabel, compare, host, out, put, q } from './harness.js';

interface Case {
  n: number;
  dtype: Exclude<DType, 'i32'>;
}
const cases: Case[] = [
  { n: 1, dtype: 'f32' },
  { n: 1001, dtype: 'f32' },
  { n: 70001, dtype: 'f32' },
  { n: 1001, dtype: 'bf16' },
  { n: 70001, dtype: 'bf16' },
];

function inputs(c: Case) {
  const r = rng(c.n + 5);
  const a = randn(c.n, r, 3);
  // Ties, where cast's rounding decides (down to even, up to even).
  if (c.n > 2) a.set([1 + 2 ** -8, 1 + 3 * 2 ** -8]);
  return { a: c.dtype === 'bf16' ? q(a) : a, b: c.dtype === 'bf16' ? q(randn(c.n, r)) : randn(c.n, r), raw: a };
}

/** Every op on one device: add, cast both ways, fill, scale, sumSquares. */
function run(c: Case, device: Device) {
  const { a, b, raw } = inputs(c);
  return withScope(() => {
    const [at, bt] = [put(a, [c.n], c.dtype, device), put(b, [c.n], c.dtype, device)];
    const sum = out([c.n], c.dtype, device);
    native().add(at.handle, bt.handle, sum.handle);
    const toBf = out([c.n], 'bf16', device), toF = out([c.n], 'f32', device);
    native().cast(put(raw, [c.n], 'f32', device).handle, toBf.handle);
    native().cast(toBf.handle, toF.handle);
    const filled = out([c.n], c.dtype, device);
    native().fill(filled.handle, -1.25);
    const scaled = put(a, [c.n], c.dtype, device);
    native().scale(scaled.handle, 0.375);
    const ss = native().sumSquares(at.handle);
    return { sum: host(sum), toBf: host(toBf), toF: host(toF), filled: host(filled), scaled: host(scaled), ss: [ss] };
  });
}

function reference(c: Case) {
  const { a, b, raw } = inputs(c);
  const round = c.dtype === 'bf16' ? (x: Float64Array) => q(Float32Array.from(x)) : (x: Float64Array) => x;
  const rawBf = q(raw);
  let ss = 0;
  for (const v of a) ss += v * v;
  return {
    sum: round(Float64Array.from(a, (v, i) => v + b[i])),
    toBf: rawBf,
    toF: rawBf,
    filled: new Float64Array(c.n).fill(-1.25),
    scaled: round(Float64Array.from(a, (v) => v * 0.375)),
    ss: [ss],
  };
}

const KEYS = ['sum', 'toBf', 'toF', 'filled', 'scaled', 'ss'] as const;

describe('elementwise', () => {
  describe('reference', () => {
    it.each(cases)('$dtype [$n] against double precision (rounded once where the dtype is bf16)', (c) => {
      const got = run(c, 'cpu'), want = reference(c);
      for (const k of KEYS) compare(`${caseLabel(k, c.dtype, [c.n], 'cpu')}`, got[k], want[k], k === 'ss' ? { nmse: 1e-12 } : { ulp: 0, nmse: 1e-12 });
    });

    it('cast rounds to nearest even and keeps NaN quiet, exactly as JS f32ToBf16', () => {
      const x = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -0, Infinity, -Infinity, NaN, 3.4e38, 1e-40]);
      const b = withScope(() => {
        const o = out([x.length], 'bf16', 'cpu');
        native().cast(Tensor.fromArray(x, [x.length]).handle, o.handle);
        return Array.from(o.toArray());
      });
      expect(b).toEqual(Array.from(f32ToBf16(x)));
      expect(b[6]).toBe(0x7f80); // 3.4e38 rounds up past the largest bf16: infinity
    });
  });

  // The gradient norm must not depend on the thread count (an exact resume on another machine), so
  // its order is fixed: blocks of 65536 elements in index order, element i of a block into running
  // sum i % 16, the 16 sums added in order. A square of a bf16 or f32 value is exact in double, so a
  // JS model of that order gives the very same bits.
  it('sumSquares: the same bits with 1, 2 and 3 threads, and as a JS model of its order', () => {
    const n = 200_003; // three full blocks, a partial one, a tail shorter than 16
    const child = `
      const m = require(process.argv[1]);
      let s = 11;
      const a = new Float32Array(${n});
      for (let i = 0; i < a.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; a[i] = (s / 2 ** 32 - 0.5) * 6; }
      const h = new Uint16Array(a.length);
      const u = new Uint32Array(a.buffer);
      for (let i = 0; i < a.length; i++) h[i] = u[i] >>> 16;
      const t = new m.NativeTensor([a.length], 'f32'); t.writeBytes(0, a);
      const b = new m.NativeTensor([a.length], 'bf16'); b.writeBytes(0, h);
      console.log(JSON.stringify([m.sumSquares(t), m.sumSquares(b)]));`;
    const runs = digestsPerThreadCount(child).map((line) => JSON.parse(line) as [number, number]);
    expect(new Set(runs.map((r) => JSON.stringify(r))).size).toBe(1);
    // The model, on the same inputs (bf16: the f32 values truncated to their top 16 bits, as above).
    let s = 11;
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      a[i] = (s / 2 ** 32 - 0.5) * 6;
    }
    const bf = new Float32Array(new Uint32Array(new Uint32Array(a.buffer).map((w) => w & 0xffff0000)).buffer);
    const model = (x: Float32Array) => {
      let total = 0;
      for (let b0 = 0; b0 < x.length; b0 += 65536) {
        const acc = new Float64Array(16);
        const end = Math.min(x.length, b0 + 65536);
        for (let i = b0; i < end; i++) acc[(i - b0) % 16] += x[i] * x[i];
        total += acc.reduce((p, v) => p + v, 0);
      }
      return total;
    };
    expect(runs[0]).toEqual([model(a), model(bf)]);
  }, 60_000);

  // No gradients block: add and cast pass gradients through unchanged (the model's backward is
  // checked end to end in test/core/model-grad.test.ts), and fill/scale/sumSquares have none.

  describe.each(backends())('backends: $name', ({ device, skip }) => {
    it.skipIf(!!skip).each(cases)('$dtype [$n] against the cpu', (c) => {
      const got = run(c, device), want = run(c, 'cpu');
      for (const k of KEYS) compare(caseLabel(k, c.dtype, [c.n], device), got[k], want[k], k === 'ss' ? { nmse: 1e-14 } : { ulp: 0 });
    });
  });
});
