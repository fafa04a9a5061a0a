// `polytune env` as a launch script sees it: the rank each process would take, and what the build has.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { native } from '../../src/tensor/index.js';
import { cliEntry } from '../helpers/cli.js';

const bare = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(OMPI_|PMI_|PMIX_|SLURM_|RANK$|WORLD_SIZE$|LOCAL_RANK$|MASTER_)/.test(k)));
const envJson = (extra: Record<string, string>) => {
  const r = spawnSync(process.execPath, [cliEntry(), 'env', '--json'], { encoding: 'utf8', env: { ...bare, ...extra }, timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};

describe('polytune env', () => {
  it('reports one process, and whether this build has MPI (NCCL is not built)', () => {
    const r = envJson({});
    expect(r).toMatchObject({ rank: 0, worldSize: 1, launcher: 'none', timeoutSeconds: 300 });
    expect(r.build.nccl).toBe(false);
    expect(r.build.mpi === false || /MPI/.test(r.build.mpi)).toBe(true);
    expect(!!r.build.mpi).toBe(native().dist.built);
  });

  it('reports the rank srun gives, and the timeout from POLYTUNE_DIST_TIMEOUT', () => {
    expect(envJson({ SLURM_PROCID: '9', SLURM_NTASKS: '16', SLURM_LOCALID: '1', POLYTUNE_DIST_TIMEOUT: '60' }))
      .toMatchObject({ rank: 9, worldSize: 16, localRank: 1, launcher: 'slurm', from: ['SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'], timeoutSeconds: 60 });
  });

  it('names a bad variable', () => {
    const r = spawnSync(process.execPath, [cliEntry(), 'env'], { encoding: 'utf8', env: { ...bare, POLYTUNE_DIST_TIMEOUT: 'soon' }, timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('POLYTUNE_DIST_TIMEOUT="soon" is not a positive number of seconds');
  });

  it.skipIf(spawnSync('mpirun', ['--version']).status !== 0)('under mpirun -np 2, each process reports its own rank', () => {
    const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', process.execPath, cliEntry(), 'env', '--json'], { encoding: 'utf8', env: bare, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.rank).sort()).toEqual([0, 1]);
    for (const l of lines) expect(l).toMatchObject({ worldSize: 2, launcher: 'openmpi' });
  });
});
