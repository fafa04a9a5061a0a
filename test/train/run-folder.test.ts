// One process per run folder, a writability check before anything slow, and a demo that clears
// only its own run.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runTrainJob } from '../../src/cli/train-job.js';
import { LOCK_FILE, acquireRunLock, loadRunConfig, runTraining } from '../../src/train/index.js';
import { ensureBuilt, projectRoot } from '../helpers/build.js';
import { canMountTmpfs, quiet, smallRun, smallRunConfigFile, tempDirs } from './helpers.js';

const tempDir = tempDirs();

const mountable = canMountTmpfs(tempDir);

describe('the run lock', () => {
  it('refuses a second holder in this process and in another one, naming the pid; takes over a dead pid', async () => {
    const out = tempDir('pt-lock-');
    const lock = acquireRunLock(out);
    expect(JSON.parse(readFileSync(join(out, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    expect(() => acquireRunLock(out)).toThrow(`${out} is in use by process ${process.pid}`);
    lock.release();
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);

    // Another live process holds it (a lock file as acquireRunLock writes it, with that process's pid).
    const child = spawn('sleep', ['60']);
    writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: child.pid, host: hostname(), started: new Date().toISOString() }) + '\n');
    try {
      expect(() => acquireRunLock(out)).toThrow(new RegExp(`in use by process ${child.pid} .*two runs must not write one folder`));
      // And a whole run is refused before it loads anything.
      const cfg = await smallRun(tempDir('pt-lock-run-'));
      await expect(runTraining({ ...cfg, out }, { log: quiet })).rejects.toThrow(`in use by process ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
    }
    // The holder died without releasing: its lock is stale and taken over.
    expect(JSON.parse(readFileSync(join(out, LOCK_FILE), 'utf8')).pid).toBe(child.pid);
    acquireRunLock(out).release();
  });

  it('never takes over a lock from another pid namespace (a container sharing the hostname): its pid means nothing here', () => {
    const out = tempDir('pt-lock-ns-');
    const mine = acquireRunLock(out);
    const own = JSON.parse(readFileSync(join(out, LOCK_FILE), 'utf8'));
    mine.release();
    expect(own.pidns).toMatch(/^pid:\[\d+\]$/);
    // A pid that is dead here, written by a process of another namespace on this host.
    const dead = spawnSync('true').pid!;
    writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: dead, host: hostname(), started: 'then', pidns: 'pid:[1]' }) + '\n');
    expect(() => acquireRunLock(out)).toThrow(`in use by process ${dead} in another container on ${hostname()} (pid namespace pid:[1]) (since then)`);
    expect(() => acquireRunLock(out)).toThrow(`if it is gone, remove ${join(out, LOCK_FILE)}`);
    // The same dead pid in this namespace is stale, as before.
    writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: dead, host: hostname(), started: 'then', pidns: own.pidns }) + '\n');
    acquireRunLock(out).release();
  });
});

describe('an unwritable run folder', () => {
  it('is reported before the data and the model are loaded', async () => {
    const dir = tempDir('pt-unwritable-');
    writeFileSync(join(dir, 'file'), 'not a folder');
    const cfg = await smallRun(join(dir, 'run'));
    // The data files do not exist either: the folder's error must come first.
    const broken = { ...cfg, out: join(dir, 'file', 'run'), data: { ...cfg.data, files: { EN: [join(dir, 'missing.json')] } } };
    await expect(runTraining(broken, { log: quiet })).rejects.toThrow(`cannot create the run folder ${join(dir, 'file', 'run')}: a path component is a file, not a folder (ENOTDIR)`);
  });

  it.skipIf(!mountable)('a read-only file system is reported before loading (skipped where mount -t tmpfs is not allowed)', async () => {
    const dir = tempDir('pt-rofs-');
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', ro]);
    try {
      const cfg = await smallRun(join(dir, 'inputs'));
      await expect(runTraining({ ...cfg, out: ro }, { log: quiet })).rejects.toThrow(`cannot write to the run folder ${ro} (checked before loading the data and the model): read-only file system (EROFS)`);
    } finally {
      execFileSync('umount', [ro]);
    }
  });
});

describe('the demo and other runs', () => {
  it("a config without out never lands in the demo's folder, and the demo never clears a run it did not write", async () => {
    const cwd = tempDir('pt-wipe-');
    // A user's run whose config says nothing of "out": its folder is named after the config.
    const file = await smallRunConfigFile(join(cwd, 'exp'), { maxSteps: 2 });
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^out: run\n/m, ''));
    expect(loadRunConfig(file).out).toBe(join(cwd, 'exp', 'runs', 'run'));
    // Even a user run written into runs/default (out given explicitly) survives the demo.
    const userRun = join(cwd, 'runs', 'default');
    expect(await runTrainJob({ config: file, overrides: [`out=${userRun}`], cwd }, { inProcess: false })).toBe(0);
    const before = readdirSync(join(userRun, 'checkpoints')).sort();
    expect(before).toContain('checkpoint-2');
    const errors: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => (errors.push(String(s)), true)) as typeof process.stderr.write;
    let code: number;
    try {
      code = await runTrainJob({ overrides: ['train.maxSteps=1'], cwd }, { inProcess: false });
    } finally {
      process.stderr.write = write;
    }
    expect(code).toBe(1);
    expect(errors.join('')).toContain(`${userRun} holds a run of ${file}, not of embedded default: it is left alone`);
    expect(readdirSync(join(userRun, 'checkpoints')).sort()).toEqual(before);
    expect(JSON.parse(readFileSync(join(userRun, 'run.json'), 'utf8')).source).toBe(file);
  });

  it('the demo starts over in its own folder, clearing only what it wrote', async () => {
    const cwd = tempDir('pt-demo-');
    const job = { overrides: ['train.maxSteps=1', 'train.epochs=1'], cwd };
    expect(await runTrainJob(job, { inProcess: false })).toBe(0);
    const demo = join(cwd, 'runs', 'default');
    expect(readdirSync(join(demo, 'checkpoints'))).toContain('checkpoint-1');
    writeFileSync(join(demo, 'notes.txt'), 'mine');
    writeFileSync(join(demo, 'metrics.jsonl'), '{"step": 99, "loss": 1}\n', { flag: 'a' });
    expect(await runTrainJob({ ...job, overrides: ['train.maxSteps=2', 'train.epochs=1'] }, { inProcess: false })).toBe(0);
    expect(readFileSync(join(demo, 'notes.txt'), 'utf8')).toBe('mine');
    expect(readFileSync(join(demo, 'metrics.jsonl'), 'utf8')).not.toContain('"step":99');
    expect(readdirSync(join(demo, 'checkpoints')).filter((f) => f.startsWith('checkpoint-'))).toEqual(['checkpoint-2']);
  });

  it('a second demo started beside a running one rewrites none of its inputs, then meets the lock', async () => {
    const cwd = tempDir('pt-demo2-');
    const demo = join(cwd, 'runs', 'default');
    const job = { overrides: ['train.maxSteps=1', 'train.epochs=1'], cwd };
    expect(await runTrainJob(job, { inProcess: false })).toBe(0);
    const inputs = ['data/EN.json', 'data/ES.json', 'tokenizer.model', 'model/config.json'].map((f) => join(demo, f));
    const identity = () => inputs.map((f) => { const st = statSync(f); return `${st.ino}:${st.mtimeMs}`; });
    const before = identity();
    // The running one, as a live process holding the lock.
    const child = spawn('sleep', ['60']);
    writeFileSync(join(demo, LOCK_FILE), JSON.stringify({ pid: child.pid, host: hostname(), started: new Date().toISOString() }) + '\n');
    try {
      const err: string[] = [];
      const spy = (s: string | Uint8Array) => (err.push(String(s)), true);
      const write = process.stderr.write;
      process.stderr.write = spy as typeof process.stderr.write;
      let code: number;
      try {
        code = await runTrainJob(job, { inProcess: false });
      } finally {
        process.stderr.write = write;
      }
      expect(code).toBe(1);
      expect(err.join('')).toContain(`is in use by process ${child.pid}`);
      expect(identity()).toEqual(before);
    } finally {
      child.kill();
    }
    // A damaged input is replaced whole (a new file, never rewritten in place under a reader).
    writeFileSync(inputs[0], '[]');
    const ino = statSync(inputs[0]).ino;
    rmSync(join(demo, LOCK_FILE));
    expect(await runTrainJob({ ...job, resume: true }, { inProcess: false })).toBe(0);
    expect(statSync(inputs[0]).ino).not.toBe(ino);
    expect(JSON.parse(readFileSync(inputs[0], 'utf8')).length).toBeGreaterThan(0);
  });
});

describe('resuming into another run', () => {
  it("refuses a checkpoint from elsewhere when out already holds a run, and leaves that run's checkpoints alone", async () => {
    const a = await smallRun(tempDir('pt-resume-a-'), ['train.maxSteps=2']);
    const b = await smallRun(tempDir('pt-resume-b-'), ['train.maxSteps=3']);
    await runTraining(a, { log: quiet });
    await runTraining(b, { log: quiet });
    const bCheckpoints = () => readdirSync(join(b.out, 'checkpoints')).filter((f) => f.startsWith('checkpoint-')).sort();
    const before = bCheckpoints();
    expect(before.length).toBeGreaterThan(0);
    // A's config with B's folder as out (a copy-paste slip), resuming A's checkpoints.
    await expect(runTraining({ ...a, out: b.out }, { log: quiet, resume: join(a.out, 'checkpoints') }))
      .rejects.toThrow(`${join(b.out, 'checkpoints')} already holds checkpoints of another run`);
    expect(bCheckpoints()).toEqual(before);
    // Resuming a run into its own folder still works.
    await runTraining({ ...a, train: { ...a.train, maxSteps: 3 } }, { log: quiet, resume: join(a.out, 'checkpoints') });
  });
});

describe('taking over a stale lock', () => {
  // The window between reading a stale lock and replacing it is narrow, so this catches a takeover
  // that lets two processes win outright, not every interleaving (the move-aside-and-compare in
  // acquireRunLock is what closes the window).
  it('lets exactly one of several processes racing for it win', async () => {
    expect(ensureBuilt()).toBe('');
    const out = tempDir('pt-lock-race-');
    // The lock of a process that is gone (a pid above Linux's pid_max can belong to none).
    writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 4321, host: hostname(), started: '2026-01-01T00:00:00Z' }) + '\n');
    const script = `
      const { acquireRunLock } = await import(${JSON.stringify(pathToFileURL(join(projectRoot, 'dist/src/train/run-folder.js')).href)});
      try { acquireRunLock(${JSON.stringify(out)}); console.log('won'); await new Promise((r) => setTimeout(r, 1500)); }
      catch (e) { console.log('lost: ' + e.message); }`;
    const runs = Array.from({ length: 6 }, () => new Promise<string>((resolveRun) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let o = '';
      c.stdout.on('data', (d) => (o += d));
      c.on('close', () => resolveRun(o.trim()));
    }));
    const results = await Promise.all(runs);
    expect(results.filter((r) => r === 'won')).toHaveLength(1);
    expect(results.filter((r) => r.startsWith('lost: ') && r.includes('is in use by process'))).toHaveLength(5);
    expect(readdirSync(out).filter((f) => f.includes('.stale-'))).toEqual([]);
  }, 60_000);
});
