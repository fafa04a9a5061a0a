import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostTensor, tensorSource } from '../../src/checkpoint/byte-tensor.js';
import { openSharded, readSharded, writeSharded } from '../../src/checkpoint/safetensors/sharded.js';
import { rng } from '../helpers/random.js';
import { hostTensor, tempDir } from './fixtures.js';

const tmp = tempDir('sharded');
afterAll(tmp.cleanup);

const r = rng(5);
// 400 + 800 + 2000 + 80 + 400 bytes (bf16 and f32 mixed).
const tensors: [string, HostTensor][] = [
  ['emb', hostTensor('bf16', [10, 20], r)],
  ['w1', hostTensor('f32', [10, 20], r)],
  ['big', hostTensor('bf16', [1000], r)],
  ['norm', hostTensor('f32', [20], r)],
  ['w2', hostTensor('bf16', [200], r)],
];

function loadAll(dir: string, prefix: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  readSharded(openSharded(dir, prefix), (t) => {
    const h = new HostTensor(t.dtype === 'BF16' ? 'bf16' : 'f32', t.shape);
    out.set(t.name, h);
    return { dtype: t.dtype, write: (o, b) => h.writeBytes(o, b) };
  });
  return out;
}

function shardedDir(name: string, maxShardBytes: number): string {
  const dir = join(tmp.dir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  writeSharded(dir, 'model', tensors.map(([n, t]) => tensorSource(n, t)), { maxShardBytes });
  return dir;
}

describe('sharded safetensors', () => {
  it('splits greedily in order like Hugging Face and writes the index', () => {
    const dir = shardedDir('split', 1200);
    // [emb 400 + w1 800] = 1200; big 2000 alone (over the limit); [norm 80 + w2 400].
    expect(readdirSync(dir).sort()).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(index).toEqual({
      metadata: { total_size: 3680 },
      weight_map: {
        big: 'model-00002-of-00003.safetensors',
        emb: 'model-00001-of-00003.safetensors',
        norm: 'model-00003-of-00003.safetensors',
        w1: 'model-00001-of-00003.safetensors',
        w2: 'model-00003-of-00003.safetensors',
      },
    });
    expect(Object.keys(index.weight_map)).toEqual(['big', 'emb', 'norm', 'w1', 'w2']);
  });

  it('round-trips every tensor bit for bit across shards', () => {
    const back = loadAll(shardedDir('rt', 1200), 'model');
    expect([...back.keys()].sort()).toEqual(tensors.map(([n]) => n).sort());
    for (const [n, t] of tensors) {
      expect(back.get(n)!.dtype, n).toBe(t.dtype);
      expect(back.get(n)!.bytes, n).toEqual(t.bytes);
    }
  });

  it('writes one model.safetensors and no index when everything fits', () => {
    const dir = shardedDir('single', 1e9);
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
    const back = loadAll(dir, 'model');
    for (const [n, t] of tensors) expect(back.get(n)!.bytes, n).toEqual(t.bytes);
  });

  it('rejects an index that disagrees with its shards', () => {
    const dir = shardedDir('bad', 1200);
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));

    index.weight_map.emb = 'model-00003-of-00003.safetensors';
    writeFileSync(indexPath, JSON.stringify(index));
    expect(() => openSharded(dir, 'model')).toThrow(/tensor 'emb' is listed in model-00003-of-00003.safetensors but that shard does not hold it/);

    delete index.weight_map.emb;
    writeFileSync(indexPath, JSON.stringify(index));
    expect(() => openSharded(dir, 'model')).toThrow(/model-00001-of-00003.safetensors: tensor 'emb' is not listed in model.safetensors.index.json/);

    index.weight_map.emb = '../x.safetensors';
    writeFileSync(indexPath, JSON.stringify(index));
    expect(() => openSharded(dir, 'model')).toThrow(/weight_map\['emb'\] must be a file name in the same folder/);

    index.weight_map.emb = 'model-00001-of-00003.safetensors';
    index.weight_map.ghost = 'model-00004-of-00003.safetensors';
    writeFileSync(indexPath, JSON.stringify(index));
    expect(() => openSharded(dir, 'model')).toThrow(/model-00004-of-00003.safetensors: cannot open/);

    writeFileSync(indexPath, '{"metadata":{}}');
    expect(() => openSharded(dir, 'model')).toThrow(/missing the 'weight_map' object/);
  });

  it('rejects a folder with both a single file and an index, or neither', () => {
    const dir = shardedDir('both', 1200);
    writeFileSync(join(dir, 'model.safetensors'), '');
    expect(() => openSharded(dir, 'model')).toThrow(/both model.safetensors and model.safetensors.index.json exist/);
    expect(() => openSharded(dir, 'optimizer')).toThrow(/neither optimizer.safetensors nor optimizer.safetensors.index.json exists/);
  });
});
