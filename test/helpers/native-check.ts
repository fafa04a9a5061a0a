// Standalone C++ checks (test/native/*.cc) compiled here with the flags of one ISA path and run:
// the addon is built for this machine's CPU, so these are how the paths another CPU would take
// (AVX2, portable, AVX-512 without bf16, AMX) get run at all. Each prints one JSON line last.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { expect } from 'vitest';

export const root = join(import.meta.dirname, '..', '..');
export const gxx = process.env.CXX ?? 'g++';
/** The checks compile x86-64 ISA paths (-march=x86-64-v3, -mavx512f, ...): other CPUs skip them. */
const onX86 = process.arch === 'x64';
export const canCompileChecks = onX86 && spawnSync(gxx, ['--version']).status === 0;
/** The test title's note where the checks cannot run, so the skip says why. */
export const checksNote = canCompileChecks ? '' : onX86 ? ` (skipped: no ${gxx})` : ` (skipped: not an x86-64 CPU, ${process.arch})`;

/**
 * Compiles `check` (a file in test/native/) with `sources` (paths under native/cpu/) and `flags`,
 * runs it with `args` and `env`, and returns its JSON summary; null where this CPU cannot run the
 * compiled path (SIGILL), which the caller reports as a skip. A compile error or a non-zero exit fails.
 */
export function runNativeCheck<T>(check: string, sources: string[], flags: string[], opts: { args?: string[]; env?: NodeJS.ProcessEnv; openmp?: boolean } = {}): T | null {
  const dir = mkdtempSync(join(tmpdir(), `polytune-${basename(check, '.cc')}-`));
  try {
    const exe = join(dir, 'check');
    const srcs = [join(root, 'test', 'native', check), ...sources.map((f) => join(root, 'native', 'cpu', f))];
    const cc = spawnSync(gxx, ['-O2', '-std=c++17', ...(opts.openmp === false ? [] : ['-fopenmp']), ...flags, `-I${join(root, 'native')}`, ...srcs, '-o', exe], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    const run = spawnSync(exe, opts.args ?? [], { encoding: 'utf8', env: opts.env ?? process.env });
    if (run.signal === 'SIGILL') return null;
    expect(run.status, run.stderr).toBe(0);
    return JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
