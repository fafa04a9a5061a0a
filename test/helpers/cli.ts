// Runs the polytune CLI from the TypeScript sources in a child process (no `npm run build:ts`):
// the CLI's module tree is transpiled into a temporary package that links the native build and
// node_modules, so tests see exactly the sources they run beside.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { transpileTree } from '../checkpoint/transpile.js';

const root = resolve(import.meta.dirname, '../..');
let entry: string | undefined;

/** The path of a runnable CLI entry (built once per test file). */
export function cliEntry(): string {
  if (entry) return entry;
  const out = mkdtempSync(join(tmpdir(), 'polytune-cli-'));
  process.once('exit', () => rmSync(out, { recursive: true, force: true }));
  const index = transpileTree(join(root, 'src/cli/index.ts'), root, out);
  writeFileSync(join(out, 'package.json'), JSON.stringify({ name: 'polytune', type: 'module' }));
  symlinkSync(join(root, 'build'), join(out, 'build'));
  symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
  symlinkSync(join(root, 'models'), join(out, 'models'));
  entry = join(out, 'polytune.js');
  writeFileSync(entry, `import { main } from ${JSON.stringify(index)};\nmain(process.argv).catch((e) => { process.stderr.write('polytune: ' + (e instanceof Error ? e.message : String(e)) + '\\n'); process.exit(1); });\n`);
  return entry;
}

// Tiny test models gain nothing from threads, and on a shared machine spinning OpenMP workers
// only slow every process down.
const env = { ...process.env, OMP_NUM_THREADS: process.env.POLYTUNE_TEST_THREADS ?? '1' };

export function runCli(args: string[], opts: { input?: string; timeout?: number } = {}) {
  return spawnSync(process.execPath, [cliEntry(), ...args], { input: opts.input, encoding: 'utf8', timeout: opts.timeout ?? 60_000, env });
}

export function spawnCli(args: string[]): ChildProcess {
  return spawn(process.execPath, [cliEntry(), ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
}
