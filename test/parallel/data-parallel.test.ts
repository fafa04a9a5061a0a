// Data parallel over MPI, run as a user runs it: `mpirun -np N polytune train run.yaml`. The runs
// are compared with a single-process run of the same config (f32 weights, so the only difference
// is the order of fp32 gradient sums: rank-local partial sums, then the sum over ranks).
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliEntry } from '../helpers/cli.js';
import { smallRunConfigFile, tempDirs } from '../train/helpers.js';
import { TRAIN, expectSameRun, missingMpi as missing, mpiArgs, mpiEnv as env, train } from './helpers.js';

if (missing) console.warn(`skipping the data-parallel tests: ${missing}`);

const temp = tempDirs();

describe.skipIf(!!missing)('data parallel over MPI (mpirun)', () => {
  let base: string;
  let single: string;
  beforeAll(async () => {
    base = temp('polytune-dp-');
    await smallRunConfigFile(base, TRAIN);
    single = temp('polytune-dp1-');
    cpSync(base, single, { recursive: true });
    train(single, 0, ['--set', 'train.maxSteps=20']);
  }, 180_000);

  const copy = (prefix: string) => {
    const d = temp(prefix);
    cpSync(base, d, { recursive: true });
    return d;
  };

  it.each([2, 4])('mpirun -np %i: the losses and the weights after 20 steps equal the single-process run', (np) => {
    const d = copy(`polytune-dp${np}-`);
    const r = train(d, np, ['--set', 'train.maxSteps=20']);
    expect(r.stdout).toContain(`data parallel: ${np} ranks (openmpi)`);
    // Rank 0 alone writes the run folder: one metrics line per step, not one per rank.
    expectSameRun(d, single);
    expect(readdirSync(join(d, 'run/checkpoints')).filter((f) => f.startsWith('checkpoint-')).sort()).toEqual(readdirSync(join(single, 'run/checkpoints')).filter((f) => f.startsWith('checkpoint-')).sort());
  }, 180_000);

  it('resumes a 2-rank run at 2 ranks and at 1, and both end where the single-process run ends', () => {
    const d = copy('polytune-dpr-');
    train(d, 2, ['--set', 'train.maxSteps=10']);
    const one = temp('polytune-dpr1-');
    cpSync(d, one, { recursive: true });
    train(d, 2, ['--resume', '--set', 'train.maxSteps=20']);
    expectSameRun(d, single);
    train(one, 0, ['--resume', '--set', 'train.maxSteps=20']);
    expectSameRun(one, single);
  }, 180_000);

  /** The training process of `rank` in the job whose run folder is `dir` (Linux /proc; from the sources the CLI trains in-process). */
  function rankPid(dir: string, rank: number): number | undefined {
    for (const p of readdirSync('/proc').filter((f) => /^\d+$/.test(f))) {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        if (!cmd.includes(dir)) continue;
        if (readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`OMPI_COMM_WORLD_RANK=${rank}`)) return Number(p);
      } catch {
        // the process ended while we looked
      }
    }
    return undefined;
  }

  /**
   * Starts a long 2-rank run, waits for a few steps, does `act` to rank 1's process, and returns
   * how the job ended: its exit status, its output, and the seconds from `act` to the end.
   */
  async function disturb(act: (pid: number) => void, timeoutS: number): Promise<{ code: number | null; out: string; seconds: number; pid: number }> {
    const d = copy('polytune-dpf-');
    const child = spawn('mpirun', [...mpiArgs(2), process.execPath, cliEntry(), 'train', join(d, 'run.yaml'), '--set', 'train.epochs=500'], {
      cwd: d, env: { ...env, POLYTUNE_DIST_TIMEOUT: String(timeoutS) }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    // The exit code, then what is left in the pipes (bounded: a stopped rank may still hold them open).
    const closed = new Promise<void>((r) => child.on('close', () => r()));
    let exitedAt = 0;
    const ended = new Promise<number | null>((r) => child.on('exit', (c) => ((exitedAt = performance.now()), r(c))))
      .then(async (c) => (await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]), c));
    const metrics = join(d, 'run/metrics.jsonl');
    let pid: number | undefined;
    for (let i = 0; i < 600 && !(pid && existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 8); i++) {
      await new Promise((r) => setTimeout(r, 100));
      pid ??= rankPid(d, 1);
    }
    if (!pid) {
      child.kill('SIGKILL');
      throw new Error(`rank 1 of the job in ${d} was not found or made no steps:\n${out}`);
    }
    const t0 = performance.now();
    act(pid);
    const guard = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 60) * 1000);
    const code = await ended;
    clearTimeout(guard);
    const seconds = (exitedAt - t0) / 1000;
    try {
      process.kill(pid, 'SIGKILL'); // a stopped process is not left behind
    } catch {
      // already gone
    }
    return { code, out, seconds, pid };
  }

  it('a rank killed mid-run ends the whole job with a non-zero status that names it', async () => {
    const r = await disturb((pid) => process.kill(pid, 'SIGKILL'), 10);
    expect(r.code).not.toBe(0);
    // mpirun names the failed rank: the process it started died of the signal, or (the compiled CLI's
    // supervisor) exited with 137 ("[[job,1],1]" is rank 1).
    expect(r.out).toMatch(/process rank 1 with PID \d+ on node \S+ exited on signal 9|Process name: \[\[\d+,\d+\],1\]\s+Exit code:\s+137/);
    // Every rank is gone (mpirun returns only then), well within the collective timeout plus teardown.
    expect(r.seconds).toBeLessThan(10 + 30);
  }, 120_000);

  it('a hung rank makes rank 0 time out, name it, and end the job', async () => {
    const r = await disturb((pid) => process.kill(pid, 'SIGSTOP'), 5);
    expect(r.code).not.toBe(0);
    // Almost always rank 1 is stopped outside a collective: rank 0's arrival handshake names it. If
    // the stop lands inside the all-reduce itself, rank 0's watch ends it without a name.
    expect(r.out).toMatch(new RegExp(`rank 0 of 2 \\(pid \\d+ on [^)]+\\): .* did not start within 5 s: rank 1 \\(pid ${r.pid} on [^)]+\\) (never arrived|is at collective #\\d+) \\(dead or hung\\); aborting the job` +
      '|every rank arrived but it did not complete within 5 s'));
    expect(r.seconds).toBeGreaterThan(4);
    expect(r.seconds).toBeLessThan(5 + 30);
  }, 120_000);
});
