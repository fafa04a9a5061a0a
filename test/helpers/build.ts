import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = resolve(fileURLToPath(import.meta.url), '../../..');

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return t;
}

/**
 * Compiles src/ into dist/ when a source file is newer than the build, for tests that run the CLI
 * or the package as a user would. Returns tsc's complaints (other areas may not compile yet; the
 * files that did compile are still written).
 */
export function ensureBuilt(): string {
  const marker = join(projectRoot, 'dist/src/index.js');
  if (existsSync(marker) && statSync(marker).mtimeMs >= newestMtime(join(projectRoot, 'src'))) return '';
  const r = spawnSync(process.execPath, [join(projectRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: projectRoot, encoding: 'utf8' });
  return r.status === 0 ? '' : r.stdout + r.stderr;
}
