import { describe, expect, it } from 'vitest';
import { detectWorld } from '../../src/parallel/world.js';
import { shareOf } from '../../src/parallel/shard.js';

describe('detectWorld', () => {
  it('is one process without launcher variables', () => {
    expect(detectWorld({})).toEqual({ rank: 0, size: 1, localRank: 0, launcher: 'none', source: [] });
  });

  it('reads Open MPI, Slurm, PMI and torchrun variables', () => {
    expect(detectWorld({ OMPI_COMM_WORLD_RANK: '5', OMPI_COMM_WORLD_SIZE: '16', OMPI_COMM_WORLD_LOCAL_RANK: '5' })).toMatchObject({ rank: 5, size: 16, localRank: 5, launcher: 'openmpi' });
    expect(detectWorld({ SLURM_PROCID: '9', SLURM_NTASKS: '16', SLURM_LOCALID: '1' })).toMatchObject({ rank: 9, size: 16, localRank: 1, launcher: 'slurm' });
    expect(detectWorld({ PMI_RANK: '2', PMI_SIZE: '4' })).toMatchObject({ rank: 2, size: 4, localRank: 0, launcher: 'pmi' });
    expect(detectWorld({ RANK: '3', WORLD_SIZE: '8', LOCAL_RANK: '3', MASTER_ADDR: 'node0', MASTER_PORT: '29500' }))
      .toMatchObject({ rank: 3, size: 8, localRank: 3, launcher: 'torchrun', masterAddr: 'node0:29500' });
  });

  it('prefers Open MPI over Slurm when srun starts an Open MPI program (both set)', () => {
    const w = detectWorld({ OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2', SLURM_PROCID: '1', SLURM_NTASKS: '2' });
    expect(w.launcher).toBe('openmpi');
  });

  it('ignores a launcher whose size is missing (a Slurm allocation without srun sets SLURM_PROCID only)', () => {
    expect(detectWorld({ SLURM_PROCID: '0' }).launcher).toBe('none');
  });

  it('names the variable that is not a rank', () => {
    expect(() => detectWorld({ RANK: 'two', WORLD_SIZE: '4' })).toThrow(/RANK="two" is not a non-negative integer/);
    expect(() => detectWorld({ SLURM_PROCID: '4', SLURM_NTASKS: '4' })).toThrow(/SLURM_PROCID=4 is not a rank of SLURM_NTASKS=4/);
  });
});

describe('shareOf', () => {
  it('deals micro-batches round-robin: every one to exactly one rank, in order, for any rank count', () => {
    const micro = [0, 1, 2, 3, 4, 5, 6];
    for (const n of [1, 2, 3, 4, 8]) {
      const shares = Array.from({ length: n }, (_, r) => shareOf(micro, r, n));
      expect(shares.flat().sort()).toEqual(micro);
      shares.forEach((s, r) => s.forEach((m) => expect(m % n).toBe(r)));
    }
  });
});
