// Which process of which job this is, from the variables the launchers set: Open MPI's mpirun,
// Slurm's srun (and PMI launchers such as MPICH's Hydra), and torchrun-style RANK/WORLD_SIZE.

export type Launcher = 'openmpi' | 'slurm' | 'pmi' | 'torchrun' | 'none';

export interface World {
  rank: number;
  size: number;
  /** The rank among this machine's processes: the GPU a process takes (one process per GPU). */
  localRank: number;
  launcher: Launcher;
  /** torchrun-style rendezvous address, where given. */
  masterAddr?: string;
  /** The variables the answer came from, for `polytune env`. */
  source: string[];
}

function int(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v.trim())) throw new Error(`environment variable ${name}=${JSON.stringify(v)} is not a non-negative integer`);
  return Number(v);
}

/**
 * The first launcher whose rank and size are both set wins, in the order Open MPI, Slurm, PMI,
 * torchrun: under `srun --mpi=pmix` of an Open MPI program, OMPI_* and SLURM_* agree, and Open MPI's
 * are the ones MPI itself uses. A rank outside [0, size) is an error naming the variables.
 */
export function detectWorld(env: NodeJS.ProcessEnv = process.env): World {
  const candidates: [Launcher, string, string, string | undefined][] = [
    ['openmpi', 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK'],
    ['slurm', 'SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'],
    ['pmi', 'PMI_RANK', 'PMI_SIZE', 'MPI_LOCALRANKID'],
    ['torchrun', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'],
  ];
  for (const [launcher, r, s, l] of candidates) {
    const rank = int(env, r);
    const size = int(env, s);
    if (rank === undefined || size === undefined) continue;
    if (size < 1 || rank >= size) throw new Error(`${r}=${rank} is not a rank of ${s}=${size}`);
    const local = l ? int(env, l) : undefined;
    const source = [r, s, ...(local === undefined ? [] : [l!])];
    const w: World = { rank, size, localRank: local ?? 0, launcher, source };
    if (launcher === 'torchrun' && env.MASTER_ADDR) {
      w.masterAddr = `${env.MASTER_ADDR}${env.MASTER_PORT ? `:${env.MASTER_PORT}` : ''}`;
      w.source.push('MASTER_ADDR');
    }
    return w;
  }
  return { rank: 0, size: 1, localRank: 0, launcher: 'none', source: [] };
}
