import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { TokenizedSet } from './tokenizedSet.js';

/**
 * File layout (little endian), version 1:
 *   "PTTOKCAC" | u32 version | u32 header bytes | header JSON | pad to 8
 *   | f64 offsets[count+1] | u16/u32 tokens[nTokens] | mask bits[ceil(nTokens/8)] | ids JSON
 *   | sha256 of everything before it (32 bytes)
 * The header repeats the full key, so a file under the right name but for other inputs
 * (or from an older layout) is rebuilt rather than trusted.
 */
const MAGIC = Buffer.from('PTTOKCAC');
export const CACHE_VERSION = 1;
/**
 * Bump whenever the ids produced for the same inputs change (encoder, normalizer, templates,
 * readers, encodeConversation): caches made by older code then miss instead of serving stale ids.
 */
// 3: readers decode strictly (a file that once became U+FFFD must now be refused, not served from cache).
export const TOKENIZATION_VERSION = 3;

export const DEFAULT_CACHE_DIR = '.cache/polytune/tokens';

/** The inputs a cached set depends on; the cache key is a hash of all of them. */
export interface CacheKeyParts {
  /** sha256 of each data file's bytes. */
  dataHashes: string[];
  tokenizerHash: string;
  template: string;
  /** Anything else that changes the result: format, language, reader options. */
  options: Record<string, unknown>;
}

export function cacheKey(parts: CacheKeyParts): string {
  return createHash('sha256').update(JSON.stringify({ v: CACHE_VERSION, tokenization: TOKENIZATION_VERSION, ...parts })).digest('hex');
}

export async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
  return h.digest('hex');
}

export type CacheStatus = { status: 'hit' } | { status: 'built' } | { status: 'rebuilt'; reason: string };

export function encodeCacheFile(key: string, set: TokenizedSet, meta: Record<string, unknown>): Buffer {
  const n = set.ids.length;
  const nTokens = set.tokens.length;
  const wide = set.tokens instanceof Uint32Array;
  const header = Buffer.from(JSON.stringify({ key, count: n, nTokens, tokenBytes: wide ? 4 : 2, meta }));
  const ids = Buffer.from(JSON.stringify({ ids: set.ids, langs: set.langs }));
  const headLen = 16 + header.length;
  const pad = (8 - (headLen % 8)) % 8;
  const bits = new Uint8Array(Math.ceil(nTokens / 8));
  const m = set.mask;
  for (let i = 0; i < nTokens; i++) if (m[i]) bits[i >> 3] |= 1 << (i & 7);
  const prefix = Buffer.alloc(headLen + pad);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(CACHE_VERSION, 8);
  prefix.writeUInt32LE(header.length, 12);
  header.copy(prefix, 16);
  const parts = [
    prefix,
    Buffer.from(set.offsets.buffer, set.offsets.byteOffset, set.offsets.byteLength),
    Buffer.from(set.tokens.buffer, set.tokens.byteOffset, set.tokens.byteLength),
    Buffer.from(bits.buffer),
    ids,
  ];
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** Parses and verifies a cache file; throws with the reason when it cannot be trusted. */
export function decodeCacheFile(buf: Buffer, expectedKey: string): { set: TokenizedSet; meta: Record<string, unknown> } {
  if (buf.length < 16 + 32 || !buf.subarray(0, 8).equals(MAGIC)) throw new Error('not a token cache file');
  const version = buf.readUInt32LE(8);
  if (version !== CACHE_VERSION) throw new Error(`cache layout version ${version}, expected ${CACHE_VERSION}`);
  const body = buf.subarray(0, buf.length - 32);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - 32))) throw new Error('checksum mismatch (corrupt file)');
  const hLen = buf.readUInt32LE(12);
  const header = JSON.parse(buf.toString('utf8', 16, 16 + hLen));
  if (header.key !== expectedKey) throw new Error('the file was made for other inputs (stale)');
  const { count, nTokens, tokenBytes } = header as { count: number; nTokens: number; tokenBytes: number };
  let pos = 16 + hLen;
  pos += (8 - (pos % 8)) % 8;
  const take = (bytes: number) => {
    if (pos + bytes > body.length) throw new Error('truncated file');
    // Copy into a fresh, aligned buffer: the read buffer's offset need not suit typed arrays.
    const out = new Uint8Array(bytes);
    out.set(body.subarray(pos, pos + bytes));
    pos += bytes;
    return out.buffer;
  };
  const offsets = new Float64Array(take((count + 1) * 8));
  const tokens = tokenBytes === 4 ? new Uint32Array(take(nTokens * 4)) : new Uint16Array(take(nTokens * 2));
  const bits = new Uint8Array(take(Math.ceil(nTokens / 8)));
  const { ids, langs } = JSON.parse(body.toString('utf8', pos));
  if (ids.length !== count || langs.length !== count || offsets[count] !== nTokens) throw new Error('inconsistent sizes');
  const mask = new Uint8Array(nTokens);
  for (let i = 0; i < nTokens; i++) mask[i] = (bits[i >> 3] >> (i & 7)) & 1;
  return { set: { tokens, mask, offsets, ids, langs }, meta: header.meta };
}

/**
 * Returns the cached set for `key`, or builds, stores and returns it. A corrupt, stale or
 * unreadable file is rebuilt, and the status says why. Writes go to a temporary file that
 * is renamed into place, so a killed run never leaves a half-written cache behind.
 */
export async function loadOrBuild(
  cacheDir: string,
  key: string,
  build: () => Promise<{ set: TokenizedSet; meta: Record<string, unknown> }>,
): Promise<{ set: TokenizedSet; meta: Record<string, unknown>; cache: CacheStatus; path: string }> {
  const dir = resolve(cacheDir);
  const path = join(dir, `${key}.ptc`);
  let reason: string | undefined;
  let buf: Buffer | undefined;
  try {
    buf = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') reason = `unreadable: ${(e as Error).message}`;
  }
  if (buf) {
    try {
      return { ...decodeCacheFile(buf, key), cache: { status: 'hit' }, path };
    } catch (e) {
      reason = (e as Error).message;
    }
  }
  const built = await build();
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, encodeCacheFile(key, built.set, built.meta));
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new Error(`token cache: cannot write ${path}: ${(e as Error).message}`);
  }
  return { ...built, cache: reason ? { status: 'rebuilt', reason } : { status: 'built' }, path };
}
