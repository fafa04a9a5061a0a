// The package as another project sees it: every `exports` entry resolves to built code with types,
// and npm itself runs quietly in the project (no config it warns about on every `npx polytune`).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, projectRoot } from '../helpers/build.js';

const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8'));

describe('package.json', () => {
  beforeAll(() => {
    const complaints = ensureBuilt();
    if (complaints) console.warn(`tsc reported errors while building dist/:\n${complaints}`);
  });

  it.each(Object.entries(pkg.exports as Record<string, string | { types: string; default: string }>).filter(([k]) => k !== './package.json'))(
    'exports %s: built JavaScript with declarations, loadable by plain Node',
    async (subpath, target) => {
      const t = target as { types: string; default: string };
      expect(existsSync(join(projectRoot, t.default))).toBe(true);
      expect(existsSync(join(projectRoot, t.types))).toBe(true);
      // Resolved by name from the package itself (self-reference), as a dependent project would.
      const spec = `polytune${subpath.slice(1)}`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(spec)}); console.log(Object.keys(m).length)`], { cwd: projectRoot, encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(Number(r.stdout)).toBeGreaterThan(3);
    },
  );

  it('onnxruntime-node may not run its CUDA download at install; the packages with install scripts are all reviewed', () => {
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    const lock = JSON.parse(readFileSync(join(projectRoot, 'package-lock.json'), 'utf8'));
    const withScripts = Object.entries(lock.packages as Record<string, { hasInstallScript?: boolean }>)
      .filter(([path, p]) => path !== '' && p.hasInstallScript)
      .map(([path]) => path.replace(/^.*node_modules\//, ''));
    expect(withScripts.sort()).toEqual(Object.keys(pkg.allowScripts).sort());
  });

  it('npm warns about nothing in this project (an unknown .npmrc key warned on every npx call)', () => {
    const r = spawnSync('npm', ['config', 'list'], { cwd: projectRoot, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/warn/i);
  });
});
