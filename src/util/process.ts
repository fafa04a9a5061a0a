import { readFileSync } from 'node:fs';

/**
 * Whether a process holding a lock still runs. A zombie counts as gone: it has exited, and in a
 * container whose init does not reap children it can linger for the container's lifetime, which
 * would block a lock it once held forever. EPERM means it exists but belongs to someone else.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (macOS): kill(0) is all there is
  }
}
