import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';

const addon = join(import.meta.dirname, '..', '..', 'build', 'Release', 'polytune_native.node');

/**
 * Runs `script` (node -e, the addon's path as its argument, printing a digest) once per OpenMP
 * thread count and returns the digests: a fresh process each time, since OpenMP reads
 * OMP_NUM_THREADS once at start-up. `env` adds variables to each run's environment.
 */
export function digestsPerThreadCount(script: string, threads: number[] = [1, 2, 3], env: Record<string, string> = {}): string[] {
  return threads.map((n) => {
    const r = spawnSync(process.execPath, ['-e', script, addon], { encoding: 'utf8', env: { ...process.env, ...env, OMP_NUM_THREADS: String(n) } });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim();
  });
}
