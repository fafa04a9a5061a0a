import { createHash } from 'node:crypto';

/** A small seeded generator (mulberry32 over a hashed seed), so runs are reproducible on every platform. */
export function seededRandom(seed: number | string): () => number {
  let a = createHash('sha256').update(String(seed)).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates on a copy. */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A 52-bit rank of `key` under `seed`: the same key gets the same rank whatever else is in the set. */
export function keyRank(seed: number | string, key: string): number {
  const d = createHash('sha256').update(`${seed}\u0000${key}`).digest();
  return d.readUInt32LE(0) * 2 ** 20 + (d.readUInt32LE(4) >>> 12);
}
