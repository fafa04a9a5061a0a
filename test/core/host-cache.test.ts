// Freed host buffers of 8 MiB and more are kept for the next request of their size (native/tensor.cc):
// they are handed out again, never with their old contents showing through an op that promises
// values, never beyond POLYTUNE_HOST_CACHE_MB, and not at all with 0.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tensor, memoryStats, ops } from '../../src/tensor/index.js';

const MiB = 1 << 20;
const addon = join(import.meta.dirname, '..', '..', 'build', 'Release', 'polytune_native.node');

describe('kept host buffers', () => {
  it('a freed 16 MiB tensor serves the next 16 MiB request, and zeros() is still zeros', () => {
    const s0 = memoryStats();
    const a = Tensor.empty([4 * MiB], 'f32');
    ops.fill(a, 7);
    a.dispose();
    const s1 = memoryStats();
    expect(s1.liveBytes).toBe(s0.liveBytes);
    expect(s1.keptBytes).toBeGreaterThanOrEqual(s0.keptBytes + 16 * MiB);
    const b = Tensor.zeros([4 * MiB], 'f32');
    expect(memoryStats().keptReuses).toBe(s1.keptReuses + 1);
    expect((b.toArray() as Float32Array).every((x) => x === 0)).toBe(true);
    // 18 MiB is another size: not served by a kept 16 MiB buffer.
    b.dispose();
    const c = Tensor.empty([18 * MiB], 'bf16');
    expect(memoryStats().keptReuses).toBe(s1.keptReuses + 1);
    c.dispose();
    // Below 8 MiB, buffers go back to malloc at once.
    const kept = memoryStats().keptBytes;
    Tensor.empty([MiB], 'f32').dispose();
    expect(memoryStats().keptBytes).toBe(kept);
  });

  const child = (limitMb: string) => {
    const script = `
      const n = require(process.argv[1]);
      const ts = [0, 1, 2].map(() => new n.NativeTensor([4 * ${MiB}], 'f32'));
      ts.forEach((t) => t.dispose());
      const again = new n.NativeTensor([4 * ${MiB}], 'f32');
      console.log(JSON.stringify(n.memoryStats()));`;
    const r = spawnSync(process.execPath, ['-e', script, addon], { encoding: 'utf8', env: { ...process.env, POLYTUNE_HOST_CACHE_MB: limitMb } });
    expect(r.status, r.stderr).toBe(0);
    return { ...(JSON.parse(r.stdout) as ReturnType<typeof memoryStats>), stderr: r.stderr };
  };
  it('keeps no more than POLYTUNE_HOST_CACHE_MB, oldest out first', () => {
    const s = child('40');
    expect(s.keptLimitBytes).toBe(40 * MiB);
    // Three 16 MiB buffers freed under a 40 MiB bound: two kept, one of them reused.
    expect(s.keptReuses).toBe(1);
    expect(s.keptBuffers).toBe(1);
    expect(s.keptBytes).toBe(16 * MiB);
  });
  it('a value that is not a number keeps the default and says so (it used to read as 0: the cache off)', () => {
    const s = child('1G');
    expect(s.stderr).toContain('POLYTUNE_HOST_CACHE_MB="1G" is not a non-negative number; using the default, 1024');
    expect(s.keptLimitBytes).toBe(1024 * MiB);
    expect(s.keptReuses).toBe(1);
    expect(child('-5').keptLimitBytes).toBe(1024 * MiB);
    expect(child('').keptLimitBytes).toBe(1024 * MiB);
  });
  it('keeps none with POLYTUNE_HOST_CACHE_MB=0', () => {
    const s = child('0');
    expect(s.keptReuses).toBe(0);
    expect(s.keptBuffers).toBe(0);
    expect(s.keptBytes).toBe(0);
  });
});
