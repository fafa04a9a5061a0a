// Batched generation: requests wait for a free cache slot, new prompts are prefilled in the same
// pass as the other slots' next tokens (continuous batching), and each request stops on its own.
import type { LlamaModel } from '../model/llama.js';
import { KvDecoder } from './kv-decoder.js';
import { Sampler, type SamplingParams } from './sampling.js';
import { IncrementalText, StopMatcher, type Detokenizer } from './text-stream.js';

export interface GenerationRequest {
  /** Prompt ids, fed as given (BOS included if wanted). */
  prompt: readonly number[];
  maxNewTokens: number;
  sampling?: SamplingParams;
  /** Stop strings: generation ends when the text contains one, and the text is cut before it. */
  stop?: readonly string[];
  /** Token ids that end generation (default: the generator's EOS ids). The id is kept in `ids`. */
  eos?: readonly number[];
  /** Streams text as it becomes final (never a stop string, nor text after one). */
  onText?: (delta: string) => void;
  /** Streams every generated id. */
  onToken?: (id: number) => void;
  signal?: AbortSignal;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerationResult {
  /** Generated ids, the terminating EOS included (as Hugging Face's generate returns them). */
  ids: number[];
  /** Decoded generated text (without EOS), cut before the first stop string. */
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
}

export interface GeneratorOptions {
  /** Concurrent sequences (the batch). Default 1. */
  slots?: number;
  /** Cache length per sequence; default max_position_embeddings. */
  maxLen?: number;
  /** Tokens per forward pass at most (prefill chunk). */
  chunk?: number;
  /** Default stop ids (EOS from generation_config.json / config.json). */
  eos?: readonly number[];
}

interface Live {
  req: GenerationRequest;
  resolve: (r: GenerationResult) => void;
  reject: (e: Error) => void;
}

interface Active extends Live {
  slot: number;
  pending: number[];
  seen: number[];
  out: number[];
  sampler: Sampler;
  eos: Set<number>;
  text: IncrementalText | null;
  stops: StopMatcher | null;
  shown: number;
}

export class Generator {
  readonly decoder: KvDecoder;
  readonly eos: readonly number[];
  private readonly queue: Live[] = [];
  private readonly active = new Map<number, Active>();
  private running = false;
  /** Tokens generated and prompt tokens prefilled since construction. */
  readonly stats = { generated: 0, prefilled: 0, passes: 0 };

  constructor(readonly model: LlamaModel, readonly tokenizer: Detokenizer | null, opts: GeneratorOptions = {}) {
    this.decoder = new KvDecoder(model, {
      slots: opts.slots ?? 1,
      maxLen: opts.maxLen ?? model.config.max_position_embeddings,
      chunk: opts.chunk,
    });
    this.eos = opts.eos ?? (model.config.eos_token_id !== undefined ? [model.config.eos_token_id] : []);
  }

  /** Queues a request; resolves when it finishes. */
  generate(req: GenerationRequest): Promise<GenerationResult> {
    return new Promise((resolve, reject) => {
      try {
        this.check(req);
      } catch (e) {
        reject(e as Error);
        return;
      }
      this.queue.push({ req, resolve, reject });
      if (!this.running) void this.loop();
    });
  }

  private check(req: GenerationRequest): void {
    const V = this.model.config.vocab_size;
    if (!Array.isArray(req.prompt) || req.prompt.length === 0) throw new Error('generate: the prompt has no tokens');
    for (const id of req.prompt) if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`generate: prompt token ${id} is outside the vocabulary (0..${V - 1})`);
    if (req.prompt.length >= this.decoder.maxLen) {
      throw new Error(`generate: the prompt has ${req.prompt.length} tokens, which leaves no room in the ${this.decoder.maxLen}-token context`);
    }
    if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1) throw new Error(`generate: max new tokens must be a positive integer, got ${req.maxNewTokens}`);
    if (req.stop?.length && !this.tokenizer) throw new Error('generate: stop strings need a tokenizer');
    new StopMatcher(req.stop ?? []);
  }

  private admit(): void {
    for (let slot = 0; slot < this.decoder.slots && this.queue.length; slot++) {
      if (this.active.has(slot)) continue;
      const live = this.queue.shift()!;
      const { req } = live;
      let sampler: Sampler;
      try {
        sampler = new Sampler(req.sampling);
      } catch (e) {
        live.reject(e as Error);
        slot--;
        continue;
      }
      this.decoder.reset(slot);
      this.active.set(slot, {
        ...live,
        slot,
        pending: [...req.prompt],
        seen: [...req.prompt],
        out: [],
        sampler,
        eos: new Set(req.eos ?? this.eos),
        text: this.tokenizer ? new IncrementalText(this.tokenizer) : null,
        stops: req.stop?.length || req.onText ? new StopMatcher(req.stop ?? []) : null,
        shown: 0,
      });
    }
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length || this.active.size) {
        this.admit();
        for (const a of [...this.active.values()]) if (a.req.signal?.aborted) this.finish(a, 'abort');
        if (this.active.size === 0) continue;
        const live = [...this.active.values()];
        let logits: Float32Array[];
        try {
          logits = this.decoder.forward(live.map((a) => ({ slot: a.slot, ids: a.pending })));
        } catch (e) {
          for (const a of live) {
            this.active.delete(a.slot);
            a.reject(e as Error);
          }
          continue;
        }
        this.stats.passes++;
        live.forEach((a, i) => {
          if (a.out.length === 0) this.stats.prefilled += a.pending.length;
          this.step(a, logits[i]);
        });
        // Let I/O (new requests, streamed responses, signals) and handle finalizers run between passes.
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      this.running = false;
    }
  }

  private step(a: Active, logits: Float32Array): void {
    let id: number;
    try {
      id = a.sampler.next(logits, a.seen);
    } catch (e) {
      this.active.delete(a.slot);
      a.reject(e as Error);
      return;
    }
    a.out.push(id);
    a.seen.push(id);
    this.stats.generated++;
    if (!this.guard(a, () => a.req.onToken?.(id))) return;
    if (a.eos.has(id)) return this.finish(a, 'stop');
    if (a.text) {
      const delta = a.text.push(id);
      a.stops?.append(delta);
      if (!this.guard(a, () => this.emit(a))) return;
      if (a.stops && a.stops.stoppedAt >= 0) return this.finish(a, 'stop');
    }
    // The whole sequence fits the context, as Hugging Face's max_length bounds it.
    if (a.out.length >= a.req.maxNewTokens || a.req.prompt.length + a.out.length >= this.decoder.maxLen) return this.finish(a, 'length');
    a.pending = [id];
  }

  /**
   * Runs a caller's callback. One that throws fails its own request only: the exception would
   * otherwise leave the batch loop, stranding every other sequence and killing a server.
   */
  private guard(a: Active, f: () => void): boolean {
    try {
      f();
      return true;
    } catch (e) {
      this.active.delete(a.slot);
      a.reject(e instanceof Error ? e : new Error(String(e)));
      return false;
    }
  }

  private emit(a: Active): void {
    if (!a.stops || !a.req.onText) return;
    const safe = a.stops.safe;
    if (safe > a.shown) {
      a.req.onText(a.stops.text.slice(a.shown, safe));
      a.shown = safe;
    }
  }

  private finish(a: Active, reason: FinishReason): void {
    this.active.delete(a.slot);
    let text = '';
    if (this.tokenizer) {
      if (a.text && a.stops) {
        a.stops.append(a.text.flush());
        if (a.stops.stoppedAt >= 0) reason = reason === 'abort' ? reason : 'stop';
        // Everything not shown yet is final now (the held-back tail never became a stop string).
        const end = a.stops.stoppedAt >= 0 ? a.stops.stoppedAt : a.stops.text.length;
        const rest = a.stops.text.slice(a.shown, end);
        if (a.req.onText && rest && !this.guard(a, () => a.req.onText!(rest))) return;
      }
      const body = a.eos.has(a.out[a.out.length - 1]) ? a.out.slice(0, -1) : a.out;
      text = this.tokenizer.decode(body);
      const stops = a.req.stop ?? [];
      let cut = -1;
      for (const s of stops) {
        const i = text.indexOf(s);
        if (i >= 0 && (cut < 0 || i < cut)) cut = i;
      }
      if (cut >= 0) text = text.slice(0, cut);
    }
    a.resolve({ ids: a.out, text, finishReason: reason, promptTokens: a.req.prompt.length });
  }

  /** Sequences generating now, and requests waiting for a slot. */
  get load(): { active: number; queued: number } {
    return { active: this.active.size, queued: this.queue.length };
  }

  dispose(): void {
    for (const l of [...this.queue, ...this.active.values()]) l.reject(new Error('generate: the generator was disposed'));
    this.queue.length = 0;
    this.active.clear();
    this.decoder.dispose();
  }
}
