import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fsyncPath, replaceFileAtomic, writeFileDurable } from '../util/durable.js';

export interface StoreOptions {
  /** How many of the newest checkpoints to keep (the best by validation loss is kept besides). */
  keepLast: number;
}

/** Points in a save, reported to onPhase (for progress logs; the kill test uses them too). */
export type SavePhase = 'writing' | 'written' | 'renamed' | 'latest' | 'best' | 'rotated';

export interface SaveHooks {
  /** Validation loss of this checkpoint; the lowest one seen is kept as the best. */
  valLoss?: number;
  onPhase?: (phase: SavePhase) => void;
}

export interface CheckpointRef {
  step: number;
  path: string;
}

const NAME = /^checkpoint-(\d+)$/;
const LATEST = 'latest';
const BEST = 'best.json';
/** Written into each checkpoint saved with a validation loss. */
export const VAL_LOSS = 'val_loss.json';

/**
 * A folder of checkpoints `checkpoint-<step>/`, each written whole into a hidden temporary folder,
 * fsynced and renamed into place, so a crash at any moment leaves every earlier checkpoint intact.
 * `latest` names the newest complete one; `best.json` the one with the lowest validation loss,
 * which rotation never removes.
 * One process writes to a store at a time.
 */
export class CheckpointStore {
  constructor(
    readonly root: string,
    private readonly opts: StoreOptions,
  ) {
    if (!Number.isInteger(opts.keepLast) || opts.keepLast < 1) throw new Error(`keepLast must be a positive integer, got ${opts.keepLast}`);
  }

  /** Runs `write(tmpDir)` to fill a fresh folder, then publishes it as checkpoint-<step>. */
  save(step: number, write: (tmpDir: string) => void, hooks: SaveHooks = {}): string {
    if (!Number.isSafeInteger(step) || step < 0) throw new Error(`checkpoint step must be a non-negative integer, got ${step}`);
    if (hooks.valLoss !== undefined && !Number.isFinite(hooks.valLoss)) throw new Error(`validation loss must be finite, got ${hooks.valLoss}`);
    const name = `checkpoint-${step}`;
    const tmp = join(this.root, `.tmp-${name}-${process.pid}`);
    try {
      mkdirSync(this.root, { recursive: true });
      this.removeLeftovers();
      mkdirSync(tmp);
      hooks.onPhase?.('writing');
      write(tmp);
      // The loss travels inside the checkpoint, so the best is known even if a crash follows the rename.
      if (hooks.valLoss !== undefined) writeFileDurable(join(tmp, VAL_LOSS), JSON.stringify({ step, val_loss: hooks.valLoss }) + '\n');
      fsyncPath(tmp);
    } catch (e) {
      throw this.writeFailed(name, tmp, e);
    }
    hooks.onPhase?.('written');
    const final = join(this.root, name);
    if (existsSync(final)) renameSync(final, join(this.root, `.trash-${name}-${process.pid}`));
    renameSync(tmp, final);
    fsyncPath(this.root);
    hooks.onPhase?.('renamed');
    replaceFileAtomic(join(this.root, LATEST), name + '\n');
    hooks.onPhase?.('latest');
    const best = this.best();
    if (best) {
      replaceFileAtomic(join(this.root, BEST), JSON.stringify({ checkpoint: basename(best.path), step: best.step, val_loss: best.valLoss }) + '\n');
      hooks.onPhase?.('best');
    }
    this.rotate(step, best?.step);
    hooks.onPhase?.('rotated');
    return final;
  }

  /**
   * A failed write as a sentence: which checkpoint, why (a full disk, permissions), and that the
   * earlier checkpoints are intact; the partial folder is removed so it holds no space.
   */
  private writeFailed(name: string, tmp: string, e: unknown): Error {
    const err = e as NodeJS.ErrnoException;
    let removed = true;
    try {
      rmSync(tmp, { recursive: true, force: true });
    } catch {
      removed = false;
    }
    const why: Record<string, string> = { ENOSPC: 'no space left on device', EDQUOT: 'disk quota exceeded', EACCES: 'permission denied', EROFS: 'read-only file system', EIO: 'input/output error' };
    const reason = err?.code && why[err.code] ? `${why[err.code]} (${err.code})` : (err?.message ?? String(e));
    const prev = this.latest();
    const out = new Error(`could not write checkpoint ${join(this.root, name)}: ${reason}. ` +
      (prev ? `The previous checkpoint ${prev.path} is intact` : 'No earlier checkpoint exists') +
      (removed ? `; the partial ${tmp} was removed.` : `; remove the partial ${tmp} by hand.`) +
      (err?.code === 'ENOSPC' || err?.code === 'EDQUOT' ? ` A store keeping keepLast ${this.opts.keepLast} needs room for ${this.opts.keepLast + 1} checkpoints while it writes the next.` : ''));
    (out as NodeJS.ErrnoException).code = err?.code;
    return out;
  }

  /** Complete checkpoints, oldest step first. */
  list(): CheckpointRef[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .map((f) => NAME.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ step: Number(m[1]), path: join(this.root, m[0]) }))
      .sort((a, b) => a.step - b.step);
  }

  /** The newest complete checkpoint: the one `latest` names, else the highest step present. */
  latest(): CheckpointRef | undefined {
    const pointer = join(this.root, LATEST);
    if (existsSync(pointer)) {
      const m = NAME.exec(readFileSync(pointer, 'utf8').trim());
      if (m && existsSync(join(this.root, m[0]))) return { step: Number(m[1]), path: join(this.root, m[0]) };
    }
    return this.list().at(-1);
  }

  /**
   * The checkpoint with the lowest validation loss (the earliest on a tie), from the loss each
   * checkpoint carries; best.json is a copy of the answer for people and other tools.
   */
  best(): (CheckpointRef & { valLoss: number }) | undefined {
    let best: (CheckpointRef & { valLoss: number }) | undefined;
    for (const c of this.list()) {
      const file = join(c.path, VAL_LOSS);
      if (!existsSync(file)) continue;
      let v: { val_loss?: unknown };
      try {
        v = JSON.parse(readFileSync(file, 'utf8'));
      } catch (e) {
        throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
      }
      if (typeof v.val_loss !== 'number') throw new Error(`${file}: expected {"val_loss": <number>}`);
      if (!best || v.val_loss < best.valLoss) best = { ...c, valLoss: v.val_loss };
    }
    return best;
  }

  /** Keeps the checkpoint just saved, the newest keepLast - 1 others, and the best. */
  private rotate(justSaved: number, best: number | undefined): void {
    const others = this.list().filter((c) => c.step !== justSaved);
    const keep = new Set([justSaved, ...others.slice(Math.max(0, others.length - (this.opts.keepLast - 1))).map((c) => c.step)]);
    if (best !== undefined) keep.add(best);
    const doomed = this.list().filter((c) => !keep.has(c.step));
    // Renamed away first, so a crash mid-delete never leaves a half-deleted checkpoint-<step>.
    for (const c of doomed) renameSync(c.path, join(this.root, `.trash-checkpoint-${c.step}-${process.pid}`));
    if (doomed.length) fsyncPath(this.root);
    this.removeLeftovers();
  }

  private removeLeftovers(): void {
    for (const f of readdirSync(this.root)) {
      if (f.startsWith('.tmp-') || f.startsWith('.trash-')) rmSync(join(this.root, f), { recursive: true, force: true });
    }
  }
}

/**
 * What `--resume <path>` names: a checkpoint folder itself, or a store whose latest checkpoint
 * is meant.
 */
export function resolveCheckpointDir(path: string): string {
  if (existsSync(join(path, 'config.json'))) return path;
  const latest = new CheckpointStore(path, { keepLast: 1 }).latest();
  if (!latest) throw new Error(`${path}: neither a checkpoint (no config.json) nor a folder of checkpoints`);
  return latest.path;
}
