// The run folder's guards: one process per folder (a lock file with the pid), a writability check
// before anything slow, and run.json, which says whose run a folder holds so that a start-over
// (the demo) never clears another run.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { replaceFileAtomic } from '../util/durable.js';
import { processAlive } from '../util/process.js';

export const LOCK_FILE = 'polytune.lock';
export const RUN_INFO = 'run.json';
/** What a run writes at the top of its folder (besides data a caller put there); a start-over removes exactly these. */
export const RUN_OUTPUTS = ['checkpoints', 'metrics.jsonl', 'summary.json', 'loss.svg', 'tensorboard', RUN_INFO];

/** An OS error as a sentence that says what was being done: `writing X: no space left on device (ENOSPC)`. */
export function osError(doing: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  const reason: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOTDIR: 'a path component is a file, not a folder',
    EEXIST: 'already exists',
    ENOENT: 'no such file or folder',
  };
  const why = err?.code && reason[err.code] ? `${reason[err.code]} (${err.code})` : (err?.message ?? String(e));
  const out = new Error(`${doing}: ${why}`);
  (out as NodeJS.ErrnoException).code = err?.code;
  return out;
}


interface LockInfo {
  pid: number;
  host: string;
  started: string;
  /** The pid namespace (`pid:[4026531836]`): containers can share a hostname but not their pids. */
  pidns?: string;
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined; // no /proc (macOS): the hostname is all there is
  }
}

/** Folders this process holds, so a second run in the same process is refused like another process. */
const held = new Set<string>();

export interface RunLock {
  release(): void;
}

/**
 * Creates the run folder if needed and takes its lock: `polytune.lock` with the pid, made with
 * O_EXCL. A lock whose process is gone (same host) is stale and taken over. Creating the lock is
 * also the check that the folder is writable, done before the data and model are loaded.
 */
export function acquireRunLock(out: string): RunLock {
  try {
    mkdirSync(out, { recursive: true });
  } catch (e) {
    throw osError(`cannot create the run folder ${out}`, e);
  }
  const file = join(out, LOCK_FILE);
  const info: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString(), pidns: pidNamespace() };
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw osError(`cannot write to the run folder ${out} (checked before loading the data and the model)`, e);
      let other: Partial<LockInfo> = {};
      let raw = '';
      try {
        raw = readFileSync(file, 'utf8');
        other = JSON.parse(raw);
      } catch {
        // A lock being written right now, or garbage: treated as held by an unknown process below.
      }
      // Only a pid of this host and pid namespace can be looked up here; any other lock is live.
      const sameHost = (other.host === undefined || other.host === info.host) && (other.pidns === undefined || info.pidns === undefined || other.pidns === info.pidns);
      const where = other.host !== undefined && other.host !== info.host ? ` on ${other.host}` : sameHost ? '' : ` in another container on ${other.host} (pid namespace ${other.pidns})`;
      const stale = typeof other.pid === 'number' && sameHost && ((other.pid !== process.pid && !processAlive(other.pid)) || (other.pid === process.pid && !held.has(out)));
      if (stale && attempt < 5) {
        // Two processes taking over one stale lock must not both win: the lock is moved aside
        // (atomic), and only if what moved is the lock judged stale is it dropped. Otherwise another
        // process took it over in between: it goes back, unless a third one holds the name by now.
        const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
        try {
          renameSync(file, aside);
        } catch {
          continue; // gone already: try to create it
        }
        let moved = '';
        try { moved = readFileSync(aside, 'utf8'); } catch { /* read below as not the same */ }
        if (moved !== raw) {
          try { linkSync(aside, file); } catch { /* a third process holds the name now */ }
        }
        rmSync(aside, { force: true });
        continue;
      }
      const who = typeof other.pid === 'number' ? `process ${other.pid}${where}${other.started ? ` (since ${other.started})` : ''}` : 'another process';
      throw new Error(`${out} is in use by ${who}: two runs must not write one folder. Wait for it or stop it` +
        `${sameHost ? '' : `; if it is gone, remove ${file}`}`);
    }
    try {
      writeSync(fd, JSON.stringify(info) + '\n');
    } catch (e) {
      closeSync(fd);
      rmSync(file, { force: true });
      throw osError(`cannot write to the run folder ${out} (checked before loading the data and the model)`, e);
    }
    closeSync(fd);
    break;
  }
  held.add(out);
  const onExit = () => release();
  process.on('exit', onExit);
  let released = false;
  function release(): void {
    if (released) return;
    released = true;
    held.delete(out);
    process.off('exit', onExit);
    try {
      const cur = JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
      if (cur.pid === process.pid) unlinkSync(file);
    } catch {
      // Already gone (the folder was removed): nothing to release.
    }
  }
  return { release };
}

export interface RunInfo {
  /** The config file, or "embedded default". */
  source: string;
  started: string;
}

export function readRunInfo(out: string): RunInfo | undefined {
  const file = join(out, RUN_INFO);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunInfo;
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

export function writeRunInfo(out: string, info: RunInfo & Record<string, unknown>): void {
  try {
    replaceFileAtomic(join(out, RUN_INFO), JSON.stringify(info, null, 2) + '\n');
  } catch (e) {
    throw osError(`writing ${join(out, RUN_INFO)}`, e);
  }
}

/**
 * Throws unless `out` is empty of runs or holds a run from `source`: what a start-over may clear.
 * A folder with checkpoints but no run.json was written by something else, and is kept.
 */
export function checkStartOver(out: string, source: string): void {
  const info = readRunInfo(out);
  if (info && info.source !== source) {
    throw new Error(`${out} holds a run of ${info.source}, not of ${source}: it is left alone. Move it, or give this run another folder`);
  }
  if (!info && existsSync(join(out, 'checkpoints')) && readdirNonEmpty(join(out, 'checkpoints'))) {
    throw new Error(`${out}/checkpoints holds checkpoints that ${source} did not write (no ${RUN_INFO}): they are left alone. Move them, or give this run another folder`);
  }
}

function readdirNonEmpty(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/** Removes what an earlier run of the same source wrote (RUN_OUTPUTS), after checkStartOver. */
export function clearRunOutputs(out: string): void {
  for (const f of RUN_OUTPUTS) {
    try {
      rmSync(join(out, f), { recursive: true, force: true });
    } catch (e) {
      throw osError(`clearing ${join(out, f)} to start over`, e);
    }
  }
}
