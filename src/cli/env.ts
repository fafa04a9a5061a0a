// `polytune env`: what this process would run as — its rank in a launched job, the device it takes,
// and what the build can do (MPI, NCCL, CUDA) — so a launch script can be checked before a long job.
import { Command } from 'commander';
import { distTimeout } from '../parallel/comm.js';
import { detectWorld } from '../parallel/world.js';
import { native } from '../tensor/native.js';

export interface EnvReport {
  rank: number;
  worldSize: number;
  localRank: number;
  launcher: string;
  from: string[];
  masterAddr?: string;
  build: { mpi: string | false; nccl: boolean; cuda: boolean; simd: string; threads: number };
  timeoutSeconds: number;
}

export function envReport(env: NodeJS.ProcessEnv = process.env): EnvReport {
  const w = detectWorld(env);
  const a = native();
  const b = a.buildInfo();
  return {
    rank: w.rank,
    worldSize: w.size,
    localRank: w.localRank,
    launcher: w.launcher,
    from: w.source,
    ...(w.masterAddr ? { masterAddr: w.masterAddr } : {}),
    build: { mpi: a.dist.built ? (a.dist.library ?? 'yes') : false, nccl: a.dist.nccl, cuda: b.cuda, simd: b.simd, threads: b.threads },
    timeoutSeconds: distTimeout(env),
  };
}

export function registerEnv(program: Command): void {
  program
    .command('env')
    .description('print the rank and world size detected from mpirun/srun/torchrun variables, and what this build supports (MPI, NCCL, CUDA)')
    .option('--json', 'one JSON object')
    .action((o: { json?: boolean }) => {
      const r = envReport();
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      const launched = r.launcher === 'none' ? 'not launched by mpirun, srun or torchrun: one process' : `${r.launcher} (${r.from.join(', ')})`;
      console.log([
        `rank        ${r.rank} of ${r.worldSize} (local rank ${r.localRank})`,
        `launcher    ${launched}${r.masterAddr ? `, MASTER_ADDR ${r.masterAddr}` : ''}`,
        `MPI         ${r.build.mpi === false ? 'no (this build runs one process; install libopenmpi-dev and rebuild)' : r.build.mpi}`,
        `NCCL        ${r.build.nccl ? 'yes' : 'no (not built: collectives between processes run over MPI, on the CPU)'}`,
        `CUDA        ${r.build.cuda ? 'yes' : 'no'}`,
        `CPU         ${r.build.threads} threads, ${r.build.simd}`,
        `timeout     ${r.timeoutSeconds} s per collective (POLYTUNE_DIST_TIMEOUT)`,
      ].join('\n'));
    });
}
