/**
 * Darts-clone double arrays: the trie format SentencePiece stores inside precompiled
 * charsmaps, and the compact trie the encoders walk. Each 32-bit unit packs a label, an XOR
 * offset to its children and a has-leaf flag; a key's value sits in a leaf unit at the
 * children's label-0 slot. One trie step is one array read, and a 250k vocabulary fits in
 * a few megabytes, so the Viterbi search mostly stays in cache.
 */
import { PieceTrie } from './piece-trie.js';

export const IS_LEAF = 0x80000000;
export const HAS_LEAF = 1 << 8;

/** Result of longestPrefix: bytes matched (0: none) and the stored value. */
export interface PrefixMatch {
  length: number;
  value: number;
}

export function offsetOf(u: number): number {
  return (u >>> 10) << ((u & (1 << 9)) >>> 6);
}

/**
 * Longest key of the trie that is a prefix of key[pos, end), as Darts' commonPrefixSearch
 * followed by "keep the longest", which is how SentencePiece's normalizer uses it.
 */
export function longestPrefix(units: Uint32Array, key: Uint8Array, pos: number, end: number, out: PrefixMatch): void {
  out.length = 0;
  const n = units.length;
  let node = offsetOf(units[0]);
  for (let i = pos; i < end; i++) {
    const c = key[i];
    node ^= c;
    if (node >= n) return;
    const u = units[node];
    if ((u & 0x800000ff) !== c) return;
    node ^= offsetOf(u);
    if ((u & HAS_LEAF) !== 0) {
      out.length = i + 1 - pos;
      out.value = units[node] & 0x7fffffff;
    }
  }
}

/** Value of the key equal to key[s, e), or -1 (Darts' exactMatchSearch). */
export function exactMatch(units: Uint32Array, key: Uint8Array, s: number, e: number): number {
  if (s >= e) return -1;
  let node = offsetOf(units[0]);
  for (let i = s; i < e; i++) {
    const c = key[i];
    node ^= c;
    const u = units[node];
    if (u === undefined || (u & 0x800000ff) !== c) return -1;
    node ^= offsetOf(u);
    if (i === e - 1) return (u & HAS_LEAF) !== 0 ? units[node] & 0x7fffffff : -1;
  }
  return -1;
}

/**
 * Builds a double array that Darts (and so SentencePiece) reads. Keys must be non-empty,
 * must not contain byte 0 and must be unique; values must fit in 31 bits.
 */
export function buildDoubleArray(keys: Uint8Array[], values: number[]): Uint32Array {
  const trie = new PieceTrie(keys.length * 4);
  keys.forEach((key, k) => {
    if (key.length === 0) throw new Error('double array: empty key');
    if (key.includes(0)) throw new Error('double array: keys must not contain byte 0');
    const v = values[k];
    if (!(Number.isInteger(v) && v >= 0 && v < 2 ** 31)) throw new Error(`double array: value ${v} out of range`);
    if (trie.insert(key, 0, key.length, v) >= 0) throw new Error('double array: duplicate key');
  });
  return trieToDoubleArray(trie);
}

/** How many blocks back the placement search still looks for free units. */
const OPEN_BLOCKS = 16;

/** Lays out a hash trie as a double array. */
export function trieToDoubleArray(trie: PieceTrie): Uint32Array {
  return layOut(trie, true).units;
}

/**
 * A double array whose values live beside it instead of in leaf units: values[p] is the
 * value of the key ending at unit p (when p has HAS_LEAF), -1 elsewhere. Without a leaf unit
 * per key it is about 45% smaller for a vocabulary, which matters to the Viterbi search
 * whose speed is set by cache misses. A node without children keeps offset 0: walks stop
 * there (a node with children never gets offset 0). Not Darts' format: read it with
 * exactMatchValue or UnigramEncoder, not exactMatch/longestPrefix.
 */
export interface ValueArray {
  units: Uint32Array;
  values: Int32Array;
}

export function trieToValueArray(trie: PieceTrie): ValueArray {
  return layOut(trie, false) as ValueArray;
}

/** Value of the key equal to key[s, e) in a ValueArray, or -1. */
export function exactMatchValue(da: ValueArray, key: Uint8Array, s: number, e: number): number {
  if (s >= e) return -1;
  const units = da.units;
  let node = offsetOf(units[0]);
  for (let i = s; i < e; i++) {
    const c = key[i];
    const p = node ^ c;
    const u = units[p];
    if (u === undefined || (u & 0x800000ff) !== c) return -1;
    if (i === e - 1) return (u & HAS_LEAF) !== 0 ? da.values[p] : -1;
    node = p ^ offsetOf(u);
    if (node === p) return -1;
  }
  return -1;
}

function layOut(trie: PieceTrie, leafUnits: boolean): { units: Uint32Array; values: Int32Array | null } {
  // Children of each node in CSR form: first[node] .. first[node + 1] index labels/child.
  const nodes = trie.nodeCount;
  const t = trie.table;
  const first = new Int32Array(nodes + 1);
  const value = new Int32Array(nodes).fill(-1);
  for (let i = 0; i < t.length; i += 3) {
    if (t[i] === 0) continue;
    first[Math.floor((t[i] - 1) / 256) + 1]++;
    value[t[i + 1]] = t[i + 2];
  }
  for (let i = 0; i < nodes; i++) first[i + 1] += first[i];
  const fill = first.slice(0, nodes);
  const labels = new Uint8Array(first[nodes]);
  const child = new Int32Array(first[nodes]);
  for (let i = 0; i < t.length; i += 3) {
    if (t[i] === 0) continue;
    const parent = Math.floor((t[i] - 1) / 256);
    const j = fill[parent]++;
    labels[j] = (t[i] - 1) & 0xff;
    child[j] = t[i + 1];
  }

  let cap = 1024;
  let units = new Uint32Array(cap);
  let used = new Uint8Array(cap);
  let baseUsed = new Uint8Array(cap);
  // Free units form a doubly linked list so the search skips filled space.
  let nextFree = new Int32Array(cap);
  let prevFree = new Int32Array(cap);
  let size = 0;
  let freeHead = -1;
  let freeTail = -1;
  const unlink = (p: number) => {
    const a = prevFree[p];
    const b = nextFree[p];
    if (a >= 0) nextFree[a] = b;
    else freeHead = b;
    if (b >= 0) prevFree[b] = a;
    else freeTail = a;
  };
  const addBlock = () => {
    if (size + 256 > cap) {
      cap *= 2;
      const grow = <T extends Uint32Array | Uint8Array | Int32Array>(a: T, make: (n: number) => T): T => {
        const b = make(cap);
        b.set(a);
        return b;
      };
      units = grow(units, (n) => new Uint32Array(n));
      used = grow(used, (n) => new Uint8Array(n));
      baseUsed = grow(baseUsed, (n) => new Uint8Array(n));
      nextFree = grow(nextFree, (n) => new Int32Array(n));
      prevFree = grow(prevFree, (n) => new Int32Array(n));
    }
    for (let p = size; p < size + 256; p++) {
      prevFree[p] = p === size ? freeTail : p - 1;
      nextFree[p] = p === size + 255 ? -1 : p + 1;
    }
    if (freeTail >= 0) nextFree[freeTail] = size;
    else freeHead = size;
    freeTail = size + 255;
    size += 256;
  };
  const use = (p: number) => {
    used[p] = 1;
    unlink(p);
  };
  addBlock();
  use(0);
  // A base of 0 would let byte 0 reach the root's slot and match its label 0.
  baseUsed[0] = 1;
  const basesInBlock: number[] = [1];

  const fits = (b: number, labs: number[]): boolean => {
    if (baseUsed[b] || basesInBlock[b >> 8] >= 255) return false;
    for (const c of labs) if (used[b ^ c]) return false;
    return true;
  };
  const offsetOk = (pos: number, b: number) => {
    const off = pos ^ b;
    // Offset 0 is left to childless nodes of a ValueArray.
    return off === 0 ? false : off < 1 << 21 || ((off & 0xff) === 0 && off < 1 << 29);
  };

  const pos = new Int32Array(nodes);
  // Depth-first order, as Darts-clone builds: a node's subtree is laid out close together,
  // so a walk down one key touches few cache lines once past the shallow, hot levels.
  // (Breadth-first put every level in a different region: one cache miss per byte.)
  const stack = new Int32Array(nodes);
  let top = 1;
  while (top > 0) {
    const node = stack[--top];
    const at = pos[node];
    const labs: number[] = [];
    if (value[node] >= 0) {
      if (leafUnits) labs.push(0);
      else units[at] |= HAS_LEAF;
    }
    for (let j = first[node]; j < first[node + 1]; j++) labs.push(labels[j]);
    if (labs.length === 0) continue;
    let base = -1;
    // Blocks far behind the end are closed: their leftover units stay unused.
    const minPos = size - OPEN_BLOCKS * 256;
    for (let p = freeHead; p >= 0; ) {
      const nextP = nextFree[p];
      if (p < minPos) {
        unlink(p);
        p = nextP;
        continue;
      }
      const b = p ^ labs[0];
      if (fits(b, labs) && offsetOk(at, b)) {
        base = b;
        break;
      }
      p = nextP;
    }
    if (base < 0) {
      addBlock();
      base = (size - 256) | (at & 0xff);
      if ((at ^ base) >= 1 << 29) throw new Error('double array: too large');
    }
    baseUsed[base] = 1;
    basesInBlock[base >> 8] = (basesInBlock[base >> 8] ?? 0) + 1;
    const off = at ^ base;
    let unit = units[at] & (IS_LEAF | HAS_LEAF | 0xff);
    unit |= off < 1 << 21 ? off << 10 : (off << 2) | (1 << 9);
    if (value[node] >= 0) unit |= HAS_LEAF;
    units[at] = unit >>> 0;
    for (const c of labs) use(base ^ c);
    if (value[node] >= 0 && leafUnits) units[base] = (value[node] | IS_LEAF) >>> 0;
    for (let j = first[node]; j < first[node + 1]; j++) {
      const c = labels[j];
      units[base ^ c] = c;
      pos[child[j]] = base ^ c;
    }
    // Pushed in reverse so the children are visited in the order listed.
    for (let j = first[node + 1] - 1; j >= first[node]; j--) stack[top++] = child[j];
  }

  // Unused units get labels that no traversal can match: label = pos ^ (a base nobody in
  // the block uses), the same trick Darts-clone's builder plays.
  for (let block = 0; block < size; block += 256) {
    let spare = block;
    while (baseUsed[spare]) spare++;
    for (let p = block; p < block + 256; p++) if (!used[p]) units[p] = (p ^ spare) & 0xff;
  }
  if (leafUnits) return { units: units.slice(0, size), values: null };
  const values = new Int32Array(size).fill(-1);
  for (let node = 0; node < nodes; node++) if (value[node] >= 0) values[pos[node]] = value[node];
  return { units: units.slice(0, size), values };
}
