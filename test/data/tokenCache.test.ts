import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheKey, loadOrBuild, TokenizedSetBuilder, type TokenizedSet } from '../../src/data/index.js';
import { tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

function makeSet(vocab: number, n: number): TokenizedSet {
  const b = new TokenizedSetBuilder(vocab);
  for (let i = 0; i < n; i++) {
    const len = 1 + ((i * 37) % 50);
    const toks = Array.from({ length: len }, (_, t) => (i * 7919 + t * 104729) % vocab);
    const mask = Array.from({ length: len }, (_, t) => ((t * 3 + i) % 5 < 2 ? 1 : 0));
    b.add(`id-${i}`, i % 2 ? 'DE' : 'EN', toks, mask);
  }
  return b.finish();
}

describe('token cache', () => {
  it.each([[300], [250680]])('round-trips exactly (vocab %i), then is a hit without building', async (vocab) => {
    const set = makeSet(vocab, 200);
    expect(set.tokens.BYTES_PER_ELEMENT).toBe(vocab <= 65536 ? 2 : 4);
    const key = cacheKey({ dataHashes: ['a'], tokenizerHash: 't', template: `x${vocab}`, options: {} });
    let builds = 0;
    const build = async () => (builds++, { set, meta: { note: 'm' } });
    const first = await loadOrBuild(tmp.dir, key, build);
    expect(first.cache).toEqual({ status: 'built' });
    const again = await loadOrBuild(tmp.dir, key, build);
    expect(again.cache).toEqual({ status: 'hit' });
    expect(builds).toBe(1);
    expect(again.set).toEqual(set);
    expect(again.meta).toEqual({ note: 'm' });
    expect(readdirSync(tmp.dir).some((f) => f.endsWith('.tmp'))).toBe(false);
  });

  it('rebuilds a corrupt file, a file for other inputs and a truncated file, saying why', async () => {
    const set = makeSet(300, 50);
    const key = cacheKey({ dataHashes: ['b'], tokenizerHash: 't', template: 'y', options: {} });
    const r = await loadOrBuild(tmp.dir, key, async () => ({ set, meta: {} }));
    const bytes = readFileSync(r.path);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(bytes.length / 2)] ^= 0x10;
    writeFileSync(r.path, flipped);
    const c1 = await loadOrBuild(tmp.dir, key, async () => ({ set, meta: {} }));
    expect(c1.cache).toEqual({ status: 'rebuilt', reason: 'checksum mismatch (corrupt file)' });
    expect(readFileSync(r.path).equals(bytes)).toBe(true);

    writeFileSync(r.path, bytes.subarray(0, bytes.length - 100));
    expect((await loadOrBuild(tmp.dir, key, async () => ({ set, meta: {} }))).cache.status).toBe('rebuilt');

    const other = cacheKey({ dataHashes: ['c'], tokenizerHash: 't', template: 'y', options: {} });
    writeFileSync(join(tmp.dir, `${other}.ptc`), bytes);
    const c3 = await loadOrBuild(tmp.dir, other, async () => ({ set, meta: {} }));
    expect(c3.cache).toEqual({ status: 'rebuilt', reason: 'the file was made for other inputs (stale)' });
  });

  it('keys change with every input', () => {
    const base = { dataHashes: ['a'], tokenizerHash: 't', template: 'x', options: { lang: 'EN' } };
    const k = cacheKey(base);
    expect(cacheKey({ ...base, dataHashes: ['b'] })).not.toBe(k);
    expect(cacheKey({ ...base, tokenizerHash: 'u' })).not.toBe(k);
    expect(cacheKey({ ...base, template: 'y' })).not.toBe(k);
    expect(cacheKey({ ...base, options: { lang: 'DE' } })).not.toBe(k);
    expect(cacheKey({ ...base })).toBe(k);
  });
});
