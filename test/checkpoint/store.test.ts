import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointStore, resolveCheckpointDir } from '../../src/checkpoint/store.js';
import { tempDir } from './fixtures.js';

const tmp = tempDir('store');
afterAll(tmp.cleanup);
let n = 0;
const root = () => join(tmp.dir, `s${n++}`);
const writeStep = (step: number) => (dir: string) => writeFileSync(join(dir, 'config.json'), JSON.stringify({ step }));
const stepIn = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).step;

describe('checkpoint store', () => {
  it('keeps the last K and, separately, the best by validation loss', () => {
    const store = new CheckpointStore(root(), { keepLast: 2 });
    const losses = [3, 1, 2, 4, 5];
    losses.forEach((loss, i) => store.save(i + 1, writeStep(i + 1), { valLoss: loss }));
    expect(store.list().map((c) => c.step)).toEqual([2, 4, 5]);
    expect(store.latest()!.step).toBe(5);
    expect(store.best()).toMatchObject({ step: 2, valLoss: 1 });
    expect(stepIn(store.best()!.path)).toBe(2);
    expect(JSON.parse(readFileSync(join(store.root, 'best.json'), 'utf8'))).toEqual({ checkpoint: 'checkpoint-2', step: 2, val_loss: 1 });
    expect(readdirSync(store.root).sort()).toEqual(['best.json', 'checkpoint-2', 'checkpoint-4', 'checkpoint-5', 'latest']);
    // A better loss moves the best, and the old best then rotates out.
    store.save(6, writeStep(6), { valLoss: 0.5 });
    expect(store.list().map((c) => c.step)).toEqual([5, 6]);
    expect(store.best()).toMatchObject({ step: 6, valLoss: 0.5 });
  });

  it('never rotates out the checkpoint just saved, even when older than others', () => {
    const store = new CheckpointStore(root(), { keepLast: 1 });
    store.save(10, writeStep(10));
    store.save(5, writeStep(5));
    expect(store.list().map((c) => c.step)).toEqual([5]);
    expect(store.latest()!.step).toBe(5);
  });

  it('replaces a checkpoint saved again at the same step', () => {
    const store = new CheckpointStore(root(), { keepLast: 3 });
    store.save(7, (d) => writeFileSync(join(d, 'config.json'), '{"step":7,"v":1}'));
    store.save(7, (d) => writeFileSync(join(d, 'config.json'), '{"step":7,"v":2}'));
    expect(JSON.parse(readFileSync(join(store.latest()!.path, 'config.json'), 'utf8')).v).toBe(2);
    expect(readdirSync(store.root).sort()).toEqual(['checkpoint-7', 'latest']);
  });

  it('leaves the previous checkpoint as latest when a save fails, removes the partial folder, and clears a crashed one next time', () => {
    const store = new CheckpointStore(root(), { keepLast: 3 });
    store.save(1, writeStep(1));
    expect(() => store.save(2, () => { throw new Error('disk full'); })).toThrow(/checkpoint-2.*disk full|disk full/s);
    expect(store.latest()!.step).toBe(1);
    expect(readdirSync(store.root).some((f) => f.startsWith('.tmp-'))).toBe(false);
    // A process killed mid-save leaves its temporary folder behind; the next save clears it.
    mkdirSync(join(store.root, '.tmp-checkpoint-2-999999'));
    store.save(3, writeStep(3));
    expect(readdirSync(store.root).sort()).toEqual(['checkpoint-1', 'checkpoint-3', 'latest']);
  });

  it('falls back to the newest checkpoint when the latest pointer is stale', () => {
    const store = new CheckpointStore(root(), { keepLast: 3 });
    store.save(1, writeStep(1));
    store.save(2, writeStep(2));
    writeFileSync(join(store.root, 'latest'), 'checkpoint-9\n');
    expect(store.latest()!.step).toBe(2);
    expect(resolveCheckpointDir(store.root)).toBe(join(store.root, 'checkpoint-2'));
    expect(resolveCheckpointDir(join(store.root, 'checkpoint-1'))).toBe(join(store.root, 'checkpoint-1'));
    const empty = root();
    mkdirSync(empty);
    expect(() => resolveCheckpointDir(empty)).toThrow(/neither a checkpoint \(no config.json\) nor a folder of checkpoints/);
  });

  it('rejects bad arguments by name', () => {
    expect(() => new CheckpointStore(root(), { keepLast: 0 })).toThrow(/keepLast must be a positive integer/);
    const store = new CheckpointStore(root(), { keepLast: 1 });
    expect(() => store.save(-1, writeStep(1))).toThrow(/step must be a non-negative integer/);
    expect(() => store.save(1, writeStep(1), { valLoss: NaN })).toThrow(/validation loss must be finite/);
    expect(existsSync(join(store.root, 'checkpoint-1'))).toBe(false);
    store.save(2, writeStep(2), { valLoss: 1 });
    writeFileSync(join(store.root, 'checkpoint-2', 'val_loss.json'), '{"loss":1}');
    expect(() => store.best()).toThrow(/checkpoint-2\/val_loss.json: expected/);
  });
});
