// The oneDNN matmul peer: compiled from matmul_peer.cc with g++ against the system's libdnnl
// (Debian: libdnnl-dev) on first use, cached in the OS temp folder by the source's hash, and
// driven over a line protocol so a bench can interleave it with our kernel.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { okNumber, startLinePeer } from '../line-peer.js';

export interface OnednnPeer {
  version: string;
  /** Median ms of `iters` timed executions (after one warm-up) of C = op(A)·op(B). */
  matmul(dtype: 'bf16' | 'f32', M: number, N: number, K: number, transA: boolean, transB: boolean, iters: number): Promise<number>;
  /** The same, timed by the peer process's CPU time (meaningful when it runs on one thread). */
  matmulCpu(dtype: 'bf16' | 'f32', M: number, N: number, K: number, transA: boolean, transB: boolean, iters: number): Promise<number>;
  close(): void;
}

const source = join(import.meta.dirname, '..', '..', '..', 'bench', 'onednn', 'matmul_peer.cc');

/** The peer, or the reason there is none (no libdnnl headers, no g++, a failed build). */
export async function startOnednnPeer(): Promise<OnednnPeer | { missing: string }> {
  const header = ['/usr/include/dnnl.hpp', '/usr/local/include/dnnl.hpp'].find((h) => existsSync(h));
  if (!header) return { missing: 'oneDNN headers (dnnl.hpp) not found: apt-get install libdnnl-dev' };
  const src = existsSync(source) ? source : join(import.meta.dirname, 'matmul_peer.cc');
  if (!existsSync(src)) return { missing: `peer source ${source} not found` };
  const text = readFileSync(src);
  const dir = join(tmpdir(), `polytune-onednn-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`);
  const exe = join(dir, 'matmul-peer');
  if (!existsSync(exe)) {
    mkdirSync(dir, { recursive: true });
    const cxx = process.env.CXX ?? 'g++';
    const tmp = `${exe}.${process.pid}`;
    const cc = spawnSync(cxx, ['-O2', '-std=c++17', src, '-ldnnl', '-o', tmp], { encoding: 'utf8' });
    if (cc.error) return { missing: `${cxx} not runnable (${cc.error.message})` };
    if (cc.status !== 0) return { missing: `building the oneDNN peer failed: ${cc.stderr.slice(0, 400)}` };
    renameSync(tmp, exe);
  }
  const peer = await startLinePeer(exe, []);
  if ('missing' in peer) return peer;
  return {
    version: peer.version,
    async matmul(dtype, M, N, K, transA, transB, iters) {
      return okNumber('oneDNN peer', await peer.request(`${dtype} ${M} ${N} ${K} ${transA ? 1 : 0} ${transB ? 1 : 0} ${iters}`));
    },
    async matmulCpu(dtype, M, N, K, transA, transB, iters) {
      return okNumber('oneDNN peer', await peer.request(`${dtype} ${M} ${N} ${K} ${transA ? 1 : 0} ${transB ? 1 : 0} ${iters} cpu`));
    },
    close: () => peer.close(),
  };
}
