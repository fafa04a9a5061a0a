// The addon's MPI collectives on their own, in 4 ranks: sums in f32, bf16 summed in fp32 and
// rounded once, the f64 side values, broadcast from a non-zero root, and a barrier.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native } from '../../src/tensor/index.js';
import { tempDirs } from '../train/helpers.js';

const ready = spawnSync('mpirun', ['--version']).status === 0 && native().dist.built;
const temp = tempDirs();
const addon = resolve(import.meta.dirname, '../../build/Release/polytune_native.node');

// Each rank prints one JSON line of what it holds after the collectives.
const script = `
import { createRequire } from 'node:module';
const a = createRequire(import.meta.url)(${JSON.stringify(addon)});
const me = a.dist.init(30);
const f32 = new a.NativeTensor([3], 'f32');
f32.writeBytes(0, new Float32Array([me.rank, 1, 2 ** me.rank]));
// bf16 1 + 3·2^-10 (ranks 1-3) and 1.0 (rank 0): summed in fp32, 1 + 9·2^-10, which rounds once to
// 1 + 2^-7; summed in bf16 one rank at a time, every partial sum would round back to 1.
const bf = new a.NativeTensor([2], 'bf16');
const bfBits = (x) => new Uint32Array(new Float32Array([x]).buffer)[0] >>> 16;
bf.writeBytes(0, new Uint16Array([bfBits(me.rank === 0 ? 1 : 3 * 2 ** -10), bfBits(-me.rank)]));
const extra = new Float64Array([me.rank + 0.5, 1e-300]);
a.dist.allreduceSum([f32, bf], extra, 'test sums');
const b = new a.NativeTensor([2], 'i32');
b.writeBytes(0, new Int32Array([me.rank * 10, 7]));
a.dist.broadcast([b], 2, 'test broadcast');
a.dist.barrier('test barrier');
// Refused before any message is sent (so on every rank alike, without a hang).
const errors = [];
try { a.dist.allreduceSum([f32], new Float32Array(4), 'bad extra'); } catch (e) { errors.push(e.message); }
try { a.dist.allreduceSum([b], null, 'bad dtype'); } catch (e) { errors.push(e.message); }
const host = (t, T) => new T(Uint8Array.from(t.readBytes()).buffer);
const bfOut = [...host(bf, Uint16Array)].map((h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]);
console.log(JSON.stringify({ rank: me.rank, size: me.size, f32: [...host(f32, Float32Array)], bf16: bfOut, extra: [...extra], bcast: [...host(b, Int32Array)], errors }));
a.dist.finalize();
`;

// ZeRO-1's moves over a flat tensor split [3, 3, 4, 0] (uneven, one rank empty): the sum scattered
// (f32, and bf16 summed in fp32 and rounded once), rank-tagged ranges all-gathered, shards gathered
// on rank 0 only.
const zeroScript = `
import { createRequire } from 'node:module';
const a = createRequire(import.meta.url)(${JSON.stringify(addon)});
const me = a.dist.init(30);
const n = 10, counts = [3, 3, 4, 0];
const mine = counts.slice(0, me.rank).reduce((x, y) => x + y, 0);
const host = (t, T) => [...new T(Uint8Array.from(t.readBytes()).buffer)];
const bfBits = (x) => new Uint32Array(new Float32Array([x]).buffer)[0] >>> 16;
const bfVal = (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];
const f = new a.NativeTensor([n], 'f32');
f.writeBytes(0, new Float32Array(Array.from({ length: n }, (_, i) => i + 100 * me.rank)));
a.dist.reduceScatterSum(f, counts, 'rs f32');
// Element 0 (rank 0's range): 1 + 3·2^-10 from ranks 1-3 sums in fp32 to 1 + 9·2^-10, rounded once to 1 + 2^-7.
const b = new a.NativeTensor([n], 'bf16');
b.writeBytes(0, new Uint16Array(Array.from({ length: n }, (_, i) => bfBits(i === 0 ? (me.rank === 0 ? 1 : 3 * 2 ** -10) : me.rank + i))));
a.dist.reduceScatterSum(b, counts, 'rs bf16');
const g = new a.NativeTensor([n], 'bf16');
g.writeBytes(0, new Uint16Array(Array.from({ length: n }, (_, i) => (i >= mine && i < mine + counts[me.rank] ? bfBits(me.rank + 1) : 0))));
a.dist.allgather(g, counts, 'ag');
const sh = new a.NativeTensor([counts[me.rank]], 'f32');
sh.writeBytes(0, new Float32Array(Array.from({ length: counts[me.rank] }, (_, i) => 10 * me.rank + i)));
const full = me.rank === 0 ? new a.NativeTensor([n], 'f32') : null;
a.dist.gather(sh, full, counts, 0, 'gather');
const errors = [];
try { a.dist.allgather(g, [3, 3, 4], 'bad counts'); } catch (e) { errors.push(e.message); }
try { a.dist.reduceScatterSum(f, [3, 3, 4, 1], 'bad sum'); } catch (e) { errors.push(e.message); }
const mineOf = (arr) => arr.slice(mine, mine + counts[me.rank]);
console.log(JSON.stringify({ rank: me.rank, f32: mineOf(host(f, Float32Array)), bf16: mineOf(host(b, Uint16Array).map(bfVal)), ag: host(g, Uint16Array).map(bfVal), gathered: full && host(full, Float32Array), errors }));
a.dist.finalize();
`;

describe.skipIf(!ready)('MPI collectives (mpirun -np 4)', () => {
  // Window 4 cuts the 10 elements at 4 and 8, through ranks 1's and 2's ranges: each window's
  // per-rank counts and offsets differ from the whole tensor's.
  it.each([['one window', ''], ['windows of 4 elements', '4']])('ZeRO-1: reduce-scatter (f32; bf16 in fp32, rounded once), all-gather and gather over uneven ranges, %s', (_what, window) => {
    const file = join(temp('polytune-coll-'), 'zero.mjs');
    writeFileSync(file, zeroScript);
    const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '4', '-x', `POLYTUNE_DIST_WINDOW=${window}`, process.execPath, file], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).sort((x, y) => x.rank - y.rank);
    const ranges = [[0, 3], [3, 6], [6, 10], [10, 10]];
    for (const x of rows) {
      const [lo, hi] = ranges[x.rank];
      const idx = Array.from({ length: hi - lo }, (_, k) => lo + k);
      // Sum over ranks of i + 100·rank: 4i + 600.
      expect(x.f32).toEqual(idx.map((i) => 4 * i + 600));
      // Sum over ranks of rank + i: 6 + 4i (exact in bf16 up to 42).
      expect(x.bf16).toEqual(idx.map((i) => (i === 0 ? 1 + 2 ** -7 : 6 + 4 * i)));
      expect(x.ag).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3, 3]);
      expect(x.gathered).toEqual(x.rank === 0 ? [0, 1, 2, 10, 11, 12, 20, 21, 22, 23] : null);
      expect(x.errors).toEqual(['dist.allgather: 3 counts for 4 ranks', 'dist.reduceScatterSum: the counts sum to 11, the tensor has 10 elements']);
    }
  }, 60_000);

  it('sum f32 and bf16 (in fp32, rounded once) and f64 side values, broadcast from rank 2, and pass a barrier', () => {
    const file = join(temp('polytune-coll-'), 'coll.mjs');
    writeFileSync(file, script);
    const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '4', process.execPath, file], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).sort((x, y) => x.rank - y.rank);
    expect(rows.map((x) => x.rank)).toEqual([0, 1, 2, 3]);
    for (const x of rows) {
      expect(x.f32).toEqual([0 + 1 + 2 + 3, 4, 1 + 2 + 4 + 8]);
      expect(x.bf16).toEqual([1 + 2 ** -7, -6]);
      expect(x.extra).toEqual([0.5 + 1.5 + 2.5 + 3.5, 4e-300]);
      expect(x.bcast).toEqual([20, 7]);
      expect(x.errors).toEqual([
        "dist.allreduceSum: argument 'extra' must be a Float64Array",
        'dist.allreduceSum: tensors[0] is i32; it sums f32 and bf16 tensors',
      ]);
    }
  }, 60_000);

  it('a wait for rank 0 (validating, saving) has no deadline, where a collective has the job\'s', () => {
    const file = join(temp('polytune-coll-'), 'slow.mjs');
    writeFileSync(file, `
import { createRequire } from 'node:module';
const a = createRequire(import.meta.url)(${JSON.stringify(addon)});
const me = a.dist.init(1);
if (me.rank === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
a.dist.barrier('rank 0 busy', Infinity);
const extra = new Float64Array([1]);
if (me.rank === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
a.dist.allreduceSum([], extra, 'rank 0 busy again', Infinity);
console.log(JSON.stringify({ rank: me.rank, sum: extra[0] }));
if (me.rank === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
a.dist.barrier('rank 0 late for a plain barrier');
console.log('unreachable');
`);
    const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', process.execPath, file], { encoding: 'utf8', timeout: 60_000 });
    const rows = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).sort((x, y) => x.rank - y.rank);
    expect(rows).toEqual([{ rank: 0, sum: 2 }, { rank: 1, sum: 2 }]);
    expect(r.stdout).not.toContain('unreachable');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('rank 0 late for a plain barrier');
  }, 60_000);
});
