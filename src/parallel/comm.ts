// The communicator the training loop uses: one process (no-ops), or MPI across the processes of
// a job started by mpirun or srun. Collectives wait with a deadline (POLYTUNE_DIST_TIMEOUT seconds,
// default 300): a rank that died or hangs ends every rank with an error naming it.
import { native } from '../tensor/native.js';
import { ops, type Tensor } from '../tensor/index.js';
import { detectWorld, type World } from './world.js';

export interface Communicator {
  readonly rank: number;
  readonly size: number;
  readonly world: World;
  /**
   * Sums tensors (bf16 ones in fp32, rounded once) and `extra` (f64) over all ranks, in place.
   * `opts.waitForRank0`: the others wait while rank 0 alone validates or writes a checkpoint, which
   * can take longer than any deadline suited to a collective; no deadline then (a rank 0 that dies
   * still ends the job: the launcher kills the rest).
   */
  allreduceSum(tensors: Tensor[], extra: Float64Array | null, label: string, opts?: WaitOptions): void;
  broadcast(tensors: Tensor[], root: number, label: string): void;
  /**
   * ZeRO-1's three moves over a flat tensor split by `counts` (elements per rank, in rank order,
   * contiguous): the sum scattered (this rank's range holds the sum over ranks; bf16 in fp32,
   * rounded once), the ranges gathered on every rank, or gathered on rank 0 only (a checkpoint).
   */
  reduceScatterSum(full: Tensor, counts: number[], label: string): void;
  allgather(full: Tensor, counts: number[], label: string): void;
  gather(shard: Tensor, full: Tensor | null, counts: number[], label: string): void;
  barrier(label: string, opts?: WaitOptions): void;
  /** Ends every rank of the job at once with an error line (MPI_Abort); one process just exits. */
  abort(why: string): never;
  finalize(): void;
}

export interface WaitOptions {
  waitForRank0?: boolean;
}

export const DEFAULT_TIMEOUT_S = 300;

export function distTimeout(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.POLYTUNE_DIST_TIMEOUT;
  if (v === undefined || v === '') return DEFAULT_TIMEOUT_S;
  const n = Number(v);
  if (!(n > 0)) throw new Error(`POLYTUNE_DIST_TIMEOUT=${JSON.stringify(v)} is not a positive number of seconds`);
  return n;
}

class SingleProcess implements Communicator {
  readonly rank = 0;
  readonly size = 1;
  constructor(readonly world: World) {}
  allreduceSum(): void {}
  broadcast(): void {}
  reduceScatterSum(): void {}
  allgather(): void {}
  gather(shard: Tensor, full: Tensor | null): void {
    if (full) ops.cast(shard, full.dtype as 'bf16' | 'f32', full);
  }
  barrier(): void {}
  abort(why: string): never {
    process.stderr.write(`polytune: ${why}\n`);
    process.exit(1);
  }
  finalize(): void {}
}

class MpiComm implements Communicator {
  constructor(readonly world: World, readonly rank: number, readonly size: number) {}
  allreduceSum(tensors: Tensor[], extra: Float64Array | null, label: string, opts: WaitOptions = {}): void {
    native().dist.allreduceSum(tensors.map((t) => t.handle), extra, label, opts.waitForRank0 ? Infinity : 0);
  }
  broadcast(tensors: Tensor[], root: number, label: string): void {
    native().dist.broadcast(tensors.map((t) => t.handle), root, label);
  }
  reduceScatterSum(full: Tensor, counts: number[], label: string): void {
    native().dist.reduceScatterSum(full.handle, counts, label);
  }
  allgather(full: Tensor, counts: number[], label: string): void {
    native().dist.allgather(full.handle, counts, label);
  }
  gather(shard: Tensor, full: Tensor | null, counts: number[], label: string): void {
    native().dist.gather(shard.handle, full?.handle ?? null, counts, 0, label);
  }
  barrier(label: string, opts: WaitOptions = {}): void {
    native().dist.barrier(label, opts.waitForRank0 ? Infinity : 0);
  }
  abort(why: string): never {
    return native().dist.abort(1, why);
  }
  finalize(): void {
    native().dist.finalize();
  }
}

let current: Communicator | undefined;

/**
 * This process's communicator, made once: one process unless a launcher started several. Several
 * processes need the addon built with MPI and an MPI launcher (torchrun-style variables alone give
 * no transport: polytune bootstraps through MPI, not a TCP store).
 */
export function communicator(env: NodeJS.ProcessEnv = process.env): Communicator {
  if (current) return current;
  const world = detectWorld(env);
  if (world.size === 1) return (current = new SingleProcess(world));
  const d = native().dist;
  if (!d.built) {
    throw new Error(`${world.source.join('/')} say this is rank ${world.rank} of ${world.size}, but this build of polytune has no MPI: ` +
      'install Open MPI (apt-get install libopenmpi-dev openmpi-bin) and rebuild the addon (npm run build:native)');
  }
  if (world.launcher === 'torchrun') {
    throw new Error(`RANK/WORLD_SIZE say this is rank ${world.rank} of ${world.size}, but polytune's collectives run over MPI: ` +
      'launch with mpirun or srun (torchrun\'s TCP rendezvous is not supported)');
  }
  const me = d.init(distTimeout(env));
  if (me.rank !== world.rank || me.size !== world.size) {
    throw new Error(`MPI says rank ${me.rank} of ${me.size} but ${world.source.join('/')} say rank ${world.rank} of ${world.size}: the launcher and the MPI library disagree`);
  }
  // MPI_Finalize on a normal exit: without it Open MPI reports the job as failed.
  process.once('exit', () => d.finalize());
  return (current = new MpiComm(world, me.rank, me.size));
}
