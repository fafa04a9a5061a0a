// The README's examples, run as a user would: TypeScript snippets type-checked against the built
// package and run with plain Node from a project that depends on polytune; shell snippets run and
// their output compared with the `# ...` lines under each command.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedDefault } from '../../src/train/embedded.js';
import { ensureBuilt, projectRoot } from '../helpers/build.js';

interface Snippet {
  lang: 'ts' | 'sh';
  code: string;
  /** README line of the opening fence. */
  line: number;
}

/** Fenced blocks whose info string is "ts runnable" or "sh runnable". */
export function runnableSnippets(markdown: string): Snippet[] {
  const out: Snippet[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^```(ts|sh) runnable\s*$/.exec(lines[i]);
    if (!m) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    out.push({ lang: m[1] as 'ts' | 'sh', code: body.join('\n') + '\n', line: start + 1 });
  }
  return out;
}

const snippets = runnableSnippets(readFileSync(join(projectRoot, 'README.md'), 'utf8'));
const scratch = mkdtempSync(join(tmpdir(), 'polytune-readme-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('README snippets', () => {
  beforeAll(async () => {
    const complaints = ensureBuilt();
    if (complaints) console.warn(`tsc reported errors while building dist/:\n${complaints}`);
    // A project that depends on polytune, as `npm install polytune` would leave it.
    writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'uses-polytune', private: true, type: 'module' }));
    mkdirSync(join(scratch, 'node_modules/.bin'), { recursive: true });
    symlinkSync(projectRoot, join(scratch, 'node_modules/polytune'), 'dir');
    symlinkSync(join(projectRoot, 'node_modules/@types'), join(scratch, 'node_modules/@types'), 'dir');
    symlinkSync(join(projectRoot, 'bin/polytune.js'), join(scratch, 'node_modules/.bin/polytune'));
    // What the snippets assume beside them: the demo's generated inputs and a tokenizer.model.
    const demo = await embeddedDefault(join(scratch, 'runs/default'));
    copyFileSync(demo.tokenizer!, join(scratch, 'tokenizer.model'));
    writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
      include: ['*.ts'],
    }));
    for (const s of snippets.filter((x) => x.lang === 'ts')) writeFileSync(join(scratch, `readme-line-${s.line}.ts`), s.code);
  });

  it('there are runnable snippets of both kinds, including `import ... from "polytune"`', () => {
    expect(snippets.filter((s) => s.lang === 'ts').length).toBeGreaterThanOrEqual(5);
    expect(snippets.some((s) => s.lang === 'sh')).toBe(true);
    expect(snippets.some((s) => /from 'polytune'/.test(s.code))).toBe(true);
    for (const s of snippets) expect(s.code, `README line ${s.line}`).not.toMatch(/from '\.\.?\//);
  });

  it('the TypeScript snippets type-check against the package\'s declarations (exports → types)', () => {
    const r = spawnSync(process.execPath, [join(projectRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: scratch, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.each(snippets.filter((s) => s.lang === 'ts').map((s) => [s.line, s] as const))('the snippet at README line %i runs with plain Node', (_, s) => {
    const js = ts.transpileModule(s.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const file = join(scratch, `readme-line-${s.line}.mjs`);
    writeFileSync(file, js);
    const r = spawnSync(process.execPath, [file], { cwd: scratch, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // A snippet that shows what it prints says so in a trailing `// ...` comment of its console.log line.
    const shown = s.code.split('\n').filter((l) => /^console\.log\(.*\/\/ (.+)$/.test(l)).map((l) => /\/\/ (.+)$/.exec(l)![1]);
    const printed = r.stdout.trim().split('\n');
    shown.forEach((want, i) => expect(printed[i]).toBe(want));
  });

  it.each(snippets.filter((s) => s.lang === 'sh').map((s) => [s.line, s] as const))('the shell snippet at README line %i prints what it shows', (_, s) => {
    const lines = s.code.trimEnd().split('\n');
    const env = { ...process.env, PATH: `${join(scratch, 'node_modules/.bin')}:${process.env.PATH}`, npm_config_update_notifier: 'false' };
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].startsWith('#') || !lines[i].trim()) continue;
      const cmd = lines[i];
      const want: string[] = [];
      while (lines[i + 1]?.startsWith('# ')) want.push(lines[++i].slice(2));
      const r = spawnSync('bash', ['-c', cmd], { cwd: scratch, encoding: 'utf8', env });
      expect(r.stderr, cmd).toBe('');
      expect(r.status, cmd).toBe(0);
      if (want.length) expect(r.stdout.trimEnd(), cmd).toBe(want.join('\n'));
    }
  });
});
