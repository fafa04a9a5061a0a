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

describe.skipIf(!ready)('MPI collectives (mpirun -np 4)', () => {
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
