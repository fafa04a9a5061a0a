// Incremental decoding with a preallocated KV cache. Every buffer (cache, activations, logits) is
// allocated once in the constructor; a forward pass only makes views of them, so no tensor memory
// is allocated per token. Sequences live in "slots" of the cache and may have different lengths.
import type { LlamaModel } from '../model/llama.js';
import { headDim } from '../model/config.js';
import { ropeTables } from '../model/rope-tables.js';
import { Tensor, bf16ToF32, keep, native, ops, withScope } from '../tensor/index.js';

export interface DecoderOptions {
  /** Sequences held at once (the batch). */
  slots: number;
  /** Tokens per sequence (prompt + generated); at most max_position_embeddings. */
  maxLen: number;
  /** Tokens processed per pass at most (longer prompts are prefilled in several passes); default max(slots, 256). */
  chunk?: number;
}

/** New tokens for one slot; they follow the slot's cached tokens. */
export interface DecodeItem {
  slot: number;
  ids: ArrayLike<number>;
}

export class KvDecoder {
  /** Use the plain attention op through cache views even where kvAttention exists (tests compare the two). */
  static viewsOnly = false;
  readonly slots: number;
  readonly maxLen: number;
  readonly chunk: number;
  /** Cached tokens per slot. */
  readonly lengths: Int32Array;
  private readonly kCache: Tensor[] = [];
  private readonly vCache: Tensor[] = [];
  /** [layer][slot] -> [maxLen, Hkv, D] views of the cache. */
  private readonly kSlot: Tensor[][] = [];
  private readonly vSlot: Tensor[][] = [];
  private readonly buf: Record<string, Tensor> = {};
  private readonly owned: Tensor[] = [];
  private readonly D: number;
  private readonly V: number;
  private disposed = false;

  constructor(readonly model: LlamaModel, opts: DecoderOptions) {
    const c = model.config;
    if (!Number.isInteger(opts.slots) || opts.slots < 1) throw new Error(`decoder: slots must be a positive integer, got ${opts.slots}`);
    if (!Number.isInteger(opts.maxLen) || opts.maxLen < 1 || opts.maxLen > c.max_position_embeddings) {
      throw new Error(`decoder: maxLen must be 1..${c.max_position_embeddings} (max_position_embeddings), got ${opts.maxLen}`);
    }
    this.slots = opts.slots;
    this.maxLen = opts.maxLen;
    this.chunk = Math.max(1, opts.chunk ?? Math.max(opts.slots, 256));
    this.lengths = new Int32Array(this.slots);
    this.D = headDim(c);
    this.V = c.vocab_size;
    const dt = model.dtype;
    // Everything on the model's device: a pass then moves only its token ids, positions and
    // segments in, and the logits it samples from out.
    const dev = model.device;
    const Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, D = this.D, H = c.hidden_size, I = c.intermediate_size;
    const own = (t: Tensor) => {
      keep(t);
      this.owned.push(t);
      return t;
    };
    try {
      for (let l = 0; l < c.num_hidden_layers; l++) {
        const k = own(Tensor.empty([this.slots, this.maxLen, Hkv, D], dt, dev));
        const v = own(Tensor.empty([this.slots, this.maxLen, Hkv, D], dt, dev));
        this.kCache.push(k);
        this.vCache.push(v);
        const slotView = (t: Tensor, s: number) => own(t.rows(s, 1).reshape([this.maxLen, Hkv, D]));
        this.kSlot.push(Array.from({ length: this.slots }, (_, s) => slotView(k, s)));
        this.vSlot.push(Array.from({ length: this.slots }, (_, s) => slotView(v, s)));
      }
      const n = this.chunk;
      const b = this.buf;
      b.x = own(Tensor.empty([n, H], dt, dev));
      b.h = own(Tensor.empty([n, H], dt, dev));
      b.tmp = own(Tensor.empty([n, H], dt, dev));
      b.rstd = own(Tensor.empty([n], 'f32', dev));
      b.q = own(Tensor.empty([n, Hq * D], dt, dev));
      b.k = own(Tensor.empty([n, Hkv * D], dt, dev));
      b.v = own(Tensor.empty([n, Hkv * D], dt, dev));
      b.att = own(Tensor.empty([n, Hq * D], dt, dev));
      b.lse = own(Tensor.empty([Hq * n], 'f32', dev));
      b.g = own(Tensor.empty([n, I], dt, dev));
      b.u = own(Tensor.empty([n, I], dt, dev));
      b.ids = own(Tensor.empty([n], 'i32', dev));
      b.pos = own(Tensor.empty([n], 'i32', dev));
      b.segs = own(Tensor.empty([this.slots, 4], 'i32', dev));
      // Logits are computed for at most `slots` rows at once, which bounds the [rows, vocab] buffer.
      b.last = own(Tensor.empty([this.slots, H], dt, dev));
      b.lastNorm = own(Tensor.empty([this.slots, H], dt, dev));
      b.lastRstd = own(Tensor.empty([this.slots], 'f32', dev));
      b.logits = own(Tensor.empty([this.slots, this.V], dt, dev));
      const { cos, sin } = ropeTables(this.maxLen, D, c.rope_theta, dev);
      b.cos = own(cos);
      b.sin = own(sin);
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Bytes of the KV cache. */
  get cacheBytes(): number {
    return this.kCache.reduce((s, t) => s + 2 * t.nbytes, 0);
  }

  /** Forgets a slot's tokens (its cache rows are simply overwritten later). */
  reset(slot: number): void {
    this.checkSlot(slot);
    this.lengths[slot] = 0;
  }

  /** Keeps only the first `length` cached tokens of a slot (to re-feed or fork a prefix). */
  truncate(slot: number, length: number): void {
    this.checkSlot(slot);
    if (!(length >= 0 && length <= this.lengths[slot])) throw new Error(`decoder: cannot truncate slot ${slot} of ${this.lengths[slot]} tokens to ${length}`);
    this.lengths[slot] = length;
  }

  /**
   * Appends each item's tokens to its slot and runs them through the model (as many passes as the
   * chunk size needs). Returns, per item, the f32 logits of its last token ([V]), or with allLogits
   * those of every new token ([n·V], row-major). Items must name distinct slots and hold ≥ 1 token.
   */
  forward(items: readonly DecodeItem[], opts: { allLogits?: boolean } = {}): Float32Array[] {
    if (this.disposed) throw new Error('decoder: disposed');
    const seen = new Set<number>();
    for (const it of items) {
      this.checkSlot(it.slot);
      if (seen.has(it.slot)) throw new Error(`decoder: slot ${it.slot} appears twice in one forward`);
      seen.add(it.slot);
      if (it.ids.length < 1) throw new Error(`decoder: slot ${it.slot}: no tokens to feed`);
      if (this.lengths[it.slot] + it.ids.length > this.maxLen) {
        throw new Error(`decoder: slot ${it.slot} would hold ${this.lengths[it.slot] + it.ids.length} tokens, more than the cache's ${this.maxLen}`);
      }
      for (let i = 0; i < it.ids.length; i++) {
        const id = it.ids[i];
        if (!Number.isInteger(id) || id < 0 || id >= this.V) throw new Error(`decoder: token id ${id} is outside the vocabulary (0..${this.V - 1})`);
      }
    }
    const V = this.V;
    const out = items.map((it) => new Float32Array(opts.allLogits ? it.ids.length * V : V));
    const done = new Array<number>(items.length).fill(0);
    for (;;) {
      // One pass: as many of the remaining tokens as fit, taken item by item.
      const segs: { item: number; from: number; n: number }[] = [];
      let room = this.chunk;
      items.forEach((it, i) => {
        const left = it.ids.length - done[i];
        if (left > 0 && room > 0) {
          const n = Math.min(left, room);
          segs.push({ item: i, from: done[i], n });
          room -= n;
        }
      });
      if (segs.length === 0) break;
      withScope(() => this.pass(items, segs, out, opts.allLogits ?? false));
      for (const s of segs) done[s.item] += s.n;
    }
    return out;
  }

  private pass(items: readonly DecodeItem[], segs: { item: number; from: number; n: number }[], out: Float32Array[], allLogits: boolean): void {
    const c = this.model.config;
    const n = native();
    const b = this.buf;
    const Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, D = this.D;
    const N = segs.reduce((s, g) => s + g.n, 0);
    const ids = new Int32Array(N);
    const pos = new Int32Array(N);
    let off = 0;
    const starts: number[] = [];
    for (const s of segs) {
      const it = items[s.item];
      const base = this.lengths[it.slot];
      starts.push(off);
      for (let i = 0; i < s.n; i++) {
        ids[off + i] = it.ids[s.from + i];
        pos[off + i] = base + i;
      }
      off += s.n;
    }
    const idsT = b.ids.rows(0, N), posT = b.pos.rows(0, N);
    idsT.writeBytes(0, ids);
    posT.writeBytes(0, pos);
    const x = b.x.rows(0, N), h = b.h.rows(0, N), tmp = b.tmp.rows(0, N), rstd = b.rstd.rows(0, N);
    const q = b.q.rows(0, N), k = b.k.rows(0, N), v = b.v.rows(0, N), att = b.att.rows(0, N);
    const g = b.g.rows(0, N), u = b.u.rows(0, N);
    const q3 = q.reshape([N, Hq, D]), k3 = k.reshape([N, Hkv, D]), v3 = v.reshape([N, Hkv, D]), att3 = att.reshape([N, Hq, D]);
    const p = (name: string) => this.model.params.get(name)!;
    const scale = 1 / Math.sqrt(D);
    let segT: Tensor | null = null;
    if (typeof n.kvAttention === 'function' && !KvDecoder.viewsOnly) {
      const sd = new Int32Array(segs.length * 4);
      segs.forEach((s, j) => sd.set([items[s.item].slot, this.lengths[items[s.item].slot], s.n, starts[j]], 4 * j));
      segT = b.segs.rows(0, segs.length);
      segT.writeBytes(0, sd);
    }
    n.embedding(idsT.handle, p('model.embed_tokens.weight').handle, x.handle);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      withScope(() => {
        const pre = `model.layers.${l}.`;
        n.rmsnorm(x.handle, p(pre + 'input_layernorm.weight').handle, c.rms_norm_eps, h.handle, rstd.handle);
        ops.matmul(h, p(pre + 'self_attn.q_proj.weight'), { transB: true, out: q });
        ops.matmul(h, p(pre + 'self_attn.k_proj.weight'), { transB: true, out: k });
        ops.matmul(h, p(pre + 'self_attn.v_proj.weight'), { transB: true, out: v });
        ops.rope(q3, posT, b.cos, b.sin);
        ops.rope(k3, posT, b.cos, b.sin);
        if (segT) {
          n.kvAttention(q3.handle, k3.handle, v3.handle, this.kCache[l].handle, this.vCache[l].handle, segT.handle, att3.handle, scale);
        } else segs.forEach((s, j) => {
          // An addon built before kvAttention: the same through views and the plain attention op.
          const slot = items[s.item].slot;
          const at = this.lengths[slot];
          const o = starts[j];
          const ks = this.kSlot[l][slot], vs = this.vSlot[l][slot];
          n.cast(k3.rows(o, s.n).handle, ks.rows(at, s.n).handle);
          n.cast(v3.rows(o, s.n).handle, vs.rows(at, s.n).handle);
          const L = at + s.n;
          n.attention(
            q3.rows(o, s.n).reshape([1, s.n, Hq, D]).handle,
            ks.rows(0, L).reshape([1, L, Hkv, D]).handle,
            vs.rows(0, L).reshape([1, L, Hkv, D]).handle,
            null,
            att3.rows(o, s.n).reshape([1, s.n, Hq, D]).handle,
            b.lse.rows(0, Hq * s.n).reshape([1, Hq, s.n]).handle,
            scale,
            0,
          );
        });
        ops.matmul(att, p(pre + 'self_attn.o_proj.weight'), { transB: true, out: tmp });
        ops.add(x, tmp, x);
        n.rmsnorm(x.handle, p(pre + 'post_attention_layernorm.weight').handle, c.rms_norm_eps, h.handle, rstd.handle);
        ops.matmul(h, p(pre + 'mlp.gate_proj.weight'), { transB: true, out: g });
        ops.matmul(h, p(pre + 'mlp.up_proj.weight'), { transB: true, out: u });
        n.swiglu(g.handle, u.handle, g.handle);
        ops.matmul(g, p(pre + 'mlp.down_proj.weight'), { transB: true, out: tmp });
        ops.add(x, tmp, x);
      });
    }
    segs.forEach((s) => (this.lengths[items[s.item].slot] += s.n));

    // Rows whose logits are wanted: every row with allLogits, else each item's last token if it is in this pass.
    const want: { row: number; item: number; at: number }[] = [];
    segs.forEach((s, j) => {
      const it = items[s.item];
      if (allLogits) for (let i = 0; i < s.n; i++) want.push({ row: starts[j] + i, item: s.item, at: s.from + i });
      else if (s.from + s.n === it.ids.length) want.push({ row: starts[j] + s.n - 1, item: s.item, at: 0 });
    });
    const V = this.V;
    for (let w0 = 0; w0 < want.length; w0 += this.slots) {
      withScope(() => {
        const group = want.slice(w0, w0 + this.slots);
        const m = group.length;
        const last = b.last.rows(0, m), lastNorm = b.lastNorm.rows(0, m), logits = b.logits.rows(0, m);
        group.forEach((w, i) => n.cast(x.rows(w.row, 1).handle, last.rows(i, 1).handle));
        n.rmsnorm(last.handle, p('model.norm.weight').handle, c.rms_norm_eps, lastNorm.handle, b.lastRstd.rows(0, m).handle);
        ops.matmul(lastNorm, p(c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'), { transB: true, out: logits });
        const host = logits.toArray();
        const f = host instanceof Uint16Array ? bf16ToF32(host) : (host as Float32Array);
        group.forEach((w, i) => out[w.item].set(f.subarray(i * V, (i + 1) * V), w.at * V));
      });
    }
  }

  private checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw new Error(`decoder: slot ${slot} is outside 0..${this.slots - 1}`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.owned.reverse()) t.dispose();
  }
}
