import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processAlive } from '../../src/util/process.js';

describe('processAlive', () => {
  it('is true for this process, false for a pid that cannot exist', () => {
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(0)).toBe(false);
    expect(processAlive(-1)).toBe(false);
    expect(processAlive(2 ** 22 + 12345)).toBe(false); // above Linux's pid_max
  });

  it.skipIf(!existsSync('/proc/self/stat'))('counts a zombie as gone (an exited process nobody reaped)', async () => {
    // `sleep 0` exits at once; its parent became `sleep 5` by exec, which never reaps it.
    const sh = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((resolve) => sh.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))));
      const state = () => /^\d+ \(.*\) (\S)/s.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
      for (let i = 0; i < 200 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(state()).toBe('Z');
      expect(() => process.kill(pid, 0)).not.toThrow(); // what a plain kill(0) check would call alive
      expect(processAlive(pid)).toBe(false);
      expect(processAlive(sh.pid!)).toBe(true);
    } finally {
      sh.kill('SIGKILL');
    }
  });
});
