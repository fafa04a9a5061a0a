// Ctrl-C through the real CLI: `node train.js` gets real signals, as from a terminal or `kill`.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { smallRunConfigFile, tempDirs } from './helpers.js';

const root = join(import.meta.dirname, '..', '..');
const tempDir = tempDirs();

interface Child {
  pid: number;
  out: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when a line matching `re` has been printed. */
  waitFor: (re: RegExp) => Promise<string>;
}

function trainJs(args: string[], cwd: string): Child {
  const p = spawn(process.execPath, [join(root, 'train.js'), ...args], { cwd });
  let out = '';
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const feed = (d: Buffer) => {
    out += d;
    for (const w of [...waiters]) {
      const m = out.split('\n').find((l) => w.re.test(l));
      if (m !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  p.stdout.on('data', feed);
  p.stderr.on('data', feed);
  return {
    pid: p.pid!,
    out: () => out,
    done: new Promise((resolve) => p.on('close', (code, signal) => resolve({ code, signal }))),
    waitFor: (re) => new Promise((resolve) => waiters.push({ re, resolve })),
  };
}

/** Alive and not a zombie (a container's init may not reap at once). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const checkpoints = (out: string) => (existsSync(join(out, 'checkpoints')) ? readdirSync(join(out, 'checkpoints')).filter((f) => f.startsWith('checkpoint-')) : []);

describe('Ctrl-C', () => {
  beforeAll(() => {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'ignore' });
  });

  it('says at once which step it finishes, saves it, exits 130; --resume ends where an uninterrupted run does', async () => {
    const base = tempDir('pt-sig-');
    const file = await smallRunConfigFile(base, { logEvery: 1 });
    const run = join(base, 'run');
    const p = trainJs([file], base);
    await p.waitFor(/step 3\/12 /);
    // Into the next step's compute, which the supervisor's message must name.
    await new Promise((r) => setTimeout(r, 30));
    process.kill(p.pid, 'SIGINT');
    const msg = await p.waitFor(/^SIGINT: /);
    const m = /^SIGINT: finishing step (\d+)\/12, then saving \(Ctrl-C again quits at once without saving\)$/.exec(msg);
    expect(m, p.out()).not.toBeNull();
    const r = await p.done;
    expect(r.code, p.out()).toBe(130);
    expect(p.out()).toContain(`stopped at step ${m![1]}; continue with --resume`);
    expect(checkpoints(run)).toEqual([`checkpoint-${m![1]}`]);
    expect(JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'))).toMatchObject({ status: 'interrupted', steps: Number(m![1]) });

    const resumed = trainJs([file, '--resume'], base);
    const rr = await resumed.done;
    expect(rr.code, resumed.out()).toBe(0);
    expect(resumed.out()).toContain(`resumed from ${join(run, 'checkpoints', `checkpoint-${m![1]}`)}: step ${m![1]}`);
    const straight = trainJs([file, '--set', `out=${join(base, 'straight')}`], base);
    expect((await straight.done).code, straight.out()).toBe(0);
    const weights = (dir: string) => readFileSync(join(dir, 'checkpoints', 'checkpoint-12', 'model.safetensors'));
    expect(weights(run).equals(weights(join(base, 'straight')))).toBe(true);
  });

  it('a second Ctrl-C quits at once without saving; the dead run\'s lock is then taken over', async () => {
    const base = tempDir('pt-sig2-');
    const file = await smallRunConfigFile(base, { logEvery: 1 });
    const run = join(base, 'run');
    const p = trainJs([file], base);
    await p.waitFor(/step 2\/12 /);
    const worker = JSON.parse(readFileSync(join(run, 'polytune.lock'), 'utf8')).pid as number;
    expect(worker).not.toBe(p.pid);
    process.kill(p.pid, 'SIGINT');
    await p.waitFor(/^SIGINT: finishing step/);
    process.kill(p.pid, 'SIGINT');
    const r = await p.done;
    expect(r.code, p.out()).toBe(130);
    expect(p.out()).toContain('SIGINT again: quitting now, without saving');
    expect(p.out()).not.toContain('continue with --resume');
    expect(running(worker)).toBe(false);
    // The lock names a process that is gone: a new run in the folder takes it over.
    expect(existsSync(join(run, 'polytune.lock'))).toBe(true);
    const again = trainJs([file, '--resume', '--set', 'train.maxSteps=1'], base);
    expect((await again.done).code, again.out()).toBe(0);
  });

  it('a stop while the data load says so and exits 130 with nothing saved; SIGTERM exits 143', async () => {
    const base = tempDir('pt-sig3-');
    // Enough data that loading takes a while on a cold cache.
    const file = await smallRunConfigFile(base, { logEvery: 1 }, 300);
    const p = trainJs([file], base);
    await p.waitFor(/^loading the tokenizer and the data/);
    process.kill(p.pid, 'SIGINT');
    const r = await p.done;
    expect(r.code, p.out()).toBe(130);
    expect(p.out()).toMatch(/^SIGINT: stop requested while loading the data and model; stopping before step 1, nothing to save/m);
    expect(p.out()).toContain('stopped during data loading: no step was taken and nothing was saved');
    expect(p.out()).not.toMatch(/maxSteps/);
    expect(checkpoints(join(base, 'run'))).toEqual([]);

    const t = trainJs([file], base);
    await t.waitFor(/step 1\/\d+ /);
    process.kill(t.pid, 'SIGTERM');
    expect((await t.done).code, t.out()).toBe(143);
    expect(t.out()).toMatch(/^SIGTERM: finishing step \d+\/\d+, then saving/m);
  });
});
