/**
 * A byte trie over vocabulary pieces with its edges in one open-addressing hash table.
 * Each slot holds [key = node * 256 + byte + 1, child node, piece id ending at the child],
 * so one trie step costs one multiply and usually one cache line; a 250k vocabulary is
 * built in a single pass. (0 in the key column marks an empty slot.)
 */
export class PieceTrie {
  table: Int32Array;
  shift: number;
  private nodes = 1;

  get nodeCount(): number {
    return this.nodes;
  }
  private edges = 0;

  constructor(expectedEdges: number) {
    let bits = 4;
    while (1 << bits < expectedEdges * 1.6 + 16) bits++;
    this.table = new Int32Array(3 << bits);
    this.shift = 32 - bits;
  }

  private grow(): void {
    const old = this.table;
    const bits = 32 - this.shift + 1;
    this.table = new Int32Array(3 << bits);
    this.shift = 32 - bits;
    const t = this.table;
    const len = t.length;
    for (let i = 0; i < old.length; i += 3) {
      const key = old[i];
      if (key === 0) continue;
      let h = (Math.imul(key, 0x9e3779b1) >>> this.shift) * 3;
      while (t[h] !== 0) h = h + 3 === len ? 0 : h + 3;
      t[h] = key;
      t[h + 1] = old[i + 1];
      t[h + 2] = old[i + 2];
    }
  }

  /** Adds bytes[s, e) (non-empty) with the given id; returns the id already there, or -1. */
  insert(bytes: Uint8Array, s: number, e: number, id: number): number {
    let node = 0;
    let slot = -1;
    for (let i = s; i < e; i++) {
      const key = node * 256 + bytes[i] + 1;
      if (this.edges * 10 >= (this.table.length / 3) * 6) this.grow();
      const t = this.table;
      const len = t.length;
      let h = (Math.imul(key, 0x9e3779b1) >>> this.shift) * 3;
      for (;;) {
        const k = t[h];
        if (k === key) break;
        if (k === 0) {
          t[h] = key;
          t[h + 1] = this.nodes++;
          t[h + 2] = -1;
          this.edges++;
          break;
        }
        h = h + 3 === len ? 0 : h + 3;
      }
      node = t[h + 1];
      slot = h;
    }
    if (node >= 1 << 23) throw new Error('piece trie: vocabulary too large');
    const t = this.table;
    if (t[slot + 2] >= 0) return t[slot + 2];
    t[slot + 2] = id;
    return -1;
  }

  /** Id of the piece equal to bytes[s, e), or -1. */
  exact(bytes: Uint8Array, s: number, e: number): number {
    if (s >= e) return -1;
    const t = this.table;
    const len = t.length;
    const shift = this.shift;
    let node = 0;
    let id = -1;
    for (let i = s; i < e; i++) {
      const key = node * 256 + bytes[i] + 1;
      let h = (Math.imul(key, 0x9e3779b1) >>> shift) * 3;
      let k = t[h];
      while (k !== key) {
        if (k === 0) return -1;
        h = h + 3 === len ? 0 : h + 3;
        k = t[h];
      }
      node = t[h + 1];
      id = t[h + 2];
    }
    return id;
  }
}
