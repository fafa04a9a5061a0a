import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { dtypeSize } from './dtypes.js';
import { numelOf } from './header.js';
import { readHeader, readTensors, writeSafetensors, type ReadOptions, type SafetensorsFile, type TensorInfo, type TensorSink, type TensorSource, type WriteOptions, type WriteResult } from './file.js';
import { writeFileDurable } from '../../util/durable.js';

/** Hugging Face's default max_shard_size, "5GB" (decimal, as huggingface_hub parses it). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export interface ShardedWriteOptions extends WriteOptions {
  maxShardBytes?: number;
}

/**
 * Writes `<prefix>.safetensors`, or when the tensors exceed maxShardBytes, numbered shards
 * `<prefix>-00001-of-0000N.safetensors` plus `<prefix>.safetensors.index.json`, split the way
 * Hugging Face splits (in the given order; a tensor larger than the limit gets a shard alone).
 * Returns each written file name (relative to dir) with its checksums.
 */
export function writeSharded(dir: string, prefix: string, sources: readonly TensorSource[], opts: ShardedWriteOptions = {}): Record<string, WriteResult> {
  const max = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(max > 0)) throw new Error(`maxShardBytes must be positive, got ${max}`);
  const storedBytes = (s: TensorSource) => numelOf(s.shape) * dtypeSize(opts.storeAs?.(s) ?? s.dtype);
  const shards: TensorSource[][] = [[]];
  let size = 0;
  for (const s of sources) {
    const n = storedBytes(s);
    if (size + n > max && shards.at(-1)!.length > 0) {
      shards.push([]);
      size = 0;
    }
    shards.at(-1)!.push(s);
    size += n;
  }
  const results: Record<string, WriteResult> = {};
  if (shards.length === 1) {
    const name = `${prefix}.safetensors`;
    results[name] = writeSafetensors(join(dir, name), sources, opts);
    return results;
  }
  const weightMap: Record<string, string> = {};
  const pad = (i: number) => String(i).padStart(5, '0');
  shards.forEach((group, i) => {
    const name = `${prefix}-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    results[name] = writeSafetensors(join(dir, name), group, opts);
    for (const s of group) weightMap[s.name] = name;
  });
  const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
  const total = sources.reduce((a, s) => a + storedBytes(s), 0);
  writeFileDurable(join(dir, `${prefix}.safetensors.index.json`), JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2) + '\n');
  return results;
}

export interface ShardedCheckpoint {
  /** Each file's header, in shard order. */
  files: SafetensorsFile[];
  tensors: Map<string, TensorInfo>;
}

/**
 * Reads the headers of `<prefix>.safetensors` or of every shard named by the index, and checks
 * that the index and the shards agree tensor for tensor. Reads no tensor data.
 */
export function openSharded(dir: string, prefix: string): ShardedCheckpoint {
  const single = join(dir, `${prefix}.safetensors`);
  const indexPath = join(dir, `${prefix}.safetensors.index.json`);
  const hasSingle = existsSync(single);
  const hasIndex = existsSync(indexPath);
  if (hasSingle && hasIndex) throw new Error(`${dir}: both ${basename(single)} and ${basename(indexPath)} exist; remove the stale one`);
  if (!hasSingle && !hasIndex) throw new Error(`${dir}: neither ${basename(single)} nor ${basename(indexPath)} exists`);
  const files = hasSingle ? [single] : shardFilesOf(indexPath);
  const opened = files.map((f) => readHeader(f));
  const tensors = new Map<string, TensorInfo>();
  for (const st of opened) {
    for (const t of st.header.tensors) {
      const prev = tensors.get(t.name);
      if (prev) throw new Error(`${st.file}: tensor '${t.name}' is also in ${prev.file}`);
      tensors.set(t.name, { ...t, file: st.file });
    }
  }
  if (hasIndex) checkWeightMap(indexPath, dir, tensors);
  return { files: opened, tensors };
}

/** Streams every tensor of every shard into the sink. expectCrc32 is keyed by file path. */
export function readSharded(ck: ShardedCheckpoint, sink: TensorSink, opts: ReadOptions & { expectCrc32ByFile?: Record<string, Record<string, number>> } = {}): void {
  for (const st of ck.files) readTensors(st, sink, { chunkBytes: opts.chunkBytes, expectCrc32: opts.expectCrc32ByFile?.[st.file] });
}

function readIndex(indexPath: string): Record<string, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`${indexPath}: cannot read the shard index: ${(e as Error).message}`);
  }
  const map = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${indexPath}: missing the 'weight_map' object`);
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file !== basename(file) || file === '..' || file === '.') {
      throw new Error(`${indexPath}: weight_map['${name}'] must be a file name in the same folder, got ${JSON.stringify(file)}`);
    }
  }
  return map as Record<string, string>;
}

function shardFilesOf(indexPath: string): string[] {
  const dir = join(indexPath, '..');
  return [...new Set(Object.values(readIndex(indexPath)))].sort().map((f) => join(dir, f));
}

function checkWeightMap(indexPath: string, dir: string, tensors: Map<string, TensorInfo>): void {
  const map = readIndex(indexPath);
  for (const [name, file] of Object.entries(map)) {
    const t = tensors.get(name);
    if (!t || t.file !== join(dir, file)) throw new Error(`${indexPath}: tensor '${name}' is listed in ${file} but that shard does not hold it`);
  }
  for (const [name, t] of tensors) {
    if (!(name in map)) throw new Error(`${t.file}: tensor '${name}' is not listed in ${basename(indexPath)}`);
  }
}
