import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostTensor } from '../../src/checkpoint/byte-tensor.js';
import { readCheckpoint, verifyCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { CheckpointStore, type SavePhase } from '../../src/checkpoint/store.js';
import { projectRoot, tempDir } from './fixtures.js';
import { contentFor, lossFor } from './kill-fixture.js';
import { transpileTree } from './transpile.js';

const tmp = tempDir('kill');
afterAll(tmp.cleanup);
let child = '';
beforeAll(() => {
  child = transpileTree(join(projectRoot, 'test/checkpoint/kill-child.ts'), projectRoot, join(tmp.dir, 'js'));
});

/**
 * Starts a saver, waits until it has completed a save and then reaches `phase` of a later one,
 * waits delayMs more and SIGKILLs it. Resolves with the phase lines it printed.
 */
function runAndKill(root: string, start: number, phase: SavePhase, delayMs: number): Promise<string[]> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [child, root, String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let armed = false;
    let fired = false;
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (armed && !fired && line.endsWith(` ${phase}`)) {
          fired = true;
          setTimeout(() => p.kill('SIGKILL'), delayMs);
        }
        if (line.endsWith(' rotated')) armed = true;
      }
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // 'close', not 'exit': lines the child wrote just before the kill may still be in the pipe at 'exit'.
    p.on('close', (code, signal) => {
      if (signal === 'SIGKILL') resolvePromise(lines);
      else reject(new Error(`saver exited on its own (code ${code}): ${stderr}`));
    });
  });
}

/** A checkpoint must verify against its manifest and hold exactly what was saved at its step. */
function checkLoads(path: string, step: number): void {
  verifyCheckpoint(path);
  const got = readCheckpoint(path, { alloc: HostTensor.alloc });
  const want = contentFor(step);
  expect(got.state).toEqual(want.state);
  for (const [name, t] of want.params) expect(Buffer.compare(got.params.get(name)!.bytes, t.bytes), name).toBe(0);
  for (const [name, t] of want.optimizer) expect(Buffer.compare(got.optimizer!.get(name)!.bytes, t.bytes), name).toBe(0);
}

describe('a save killed with SIGKILL', () => {
  // Phases are where the kill is aimed; the delay lets it land anywhere after that point.
  const plans: [SavePhase, number][] = [
    ['writing', 0],
    ['writing', 15],
    ['writing', 40],
    ['writing', 80],
    ['written', 0],
    ['renamed', 0],
    ['latest', 0],
    ['best', 0],
    ['rotated', 0],
  ];

  it('leaves the previous checkpoint loadable, at every point of the save', async () => {
    const root = join(tmp.dir, 'store');
    const store = new CheckpointStore(root, { keepLast: 2 });
    let start = 1;
    let torn = 0;
    const published = new Set<number>();
    for (const [phase, delay] of plans) {
      const lines = await runAndKill(root, start, phase, delay);
      if (readdirSync(root).some((f) => f.startsWith('.tmp-checkpoint'))) torn++;
      const latest = store.latest();
      expect(latest, `after a kill at ${phase}+${delay}ms`).toBeDefined();
      const lastDone = Math.max(...lines.filter((l) => l.endsWith(' renamed')).map((l) => Number(l.split(' ')[0])));
      // The newest published checkpoint is the one `latest` names, or the one renamed just before the kill.
      expect(latest!.step === lastDone || (lines.at(-1) === `${lastDone} renamed` && latest!.step === lastDone - 1)).toBe(true);
      checkLoads(latest!.path, latest!.step);
      for (const c of store.list()) if (c.step !== latest!.step) checkLoads(c.path, c.step);
      // The best of every checkpoint ever published survives, whatever was rotated out. A checkpoint
      // is published by its rename, which the kill can follow before the child prints `renamed`:
      // every complete checkpoint in the store counts (each was just checked to load).
      for (const l of lines) if (l.endsWith(' renamed')) published.add(Number(l.split(' ')[0]));
      for (const c of store.list()) published.add(c.step);
      const best = store.best()!;
      expect(best.valLoss).toBe(Math.min(...[...published].map(lossFor)));
      checkLoads(best.path, best.step);
      start = latest!.step + 1;
    }
    // Most kills must really have landed mid-write, or the test proves nothing.
    expect(torn).toBeGreaterThanOrEqual(3);
  });
});
