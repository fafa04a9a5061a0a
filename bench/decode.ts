// Decode throughput of the KV-cache decoder on a randomly initialised Llama (~270M parameters on
// the CPU; on CUDA four layers of Llama-2-7B's shapes, 1.1e9 parameters), bf16, against the
// memory-bandwidth bound measured in the same run on the same device: decoding one token reads every
// weight once (the embedding table excepted: one row), so tokens/s cannot exceed copy bandwidth /
// bytes read per step, times the batch.
import { KvDecoder } from '../src/generate/kv-decoder.js';
import { argmax } from '../src/generate/sampling.js';
import { LlamaModel, type LlamaConfig } from '../src/model/index.js';
import { expectedLlamaTensors } from '../src/checkpoint/llama-names.js';
import { Tensor, native, type Device } from '../src/tensor/index.js';
import { printTable, writeReport } from './report.js';
import type { BenchSuite } from './types.js';

// 270M parameters (536 MB in bf16): hidden 1024, 16 layers, Llama-2's 32k vocabulary, GQA 16/8.
const full: LlamaConfig = {
  hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 16, num_attention_heads: 16, num_key_value_heads: 8,
  rms_norm_eps: 1e-5, rope_theta: 10000, vocab_size: 32000, max_position_embeddings: 2048, tie_word_embeddings: false,
};
// A GPU reads 270M parameters in ~0.1 ms, under the launch costs of a step: on CUDA the layers are
// Llama-2-7B's (4 of its 32), so the ratio to the bound says what the 7B model would reach.
const gpu: LlamaConfig = { ...full, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 4, num_attention_heads: 32, num_key_value_heads: 32 };
const LLAMA2_7B_DECODE_BYTES = 2 * (6.74e9 - 32000 * 4096);
const quick: LlamaConfig = { ...full, hidden_size: 512, intermediate_size: 1408, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 4, vocab_size: 8000 };

const now = () => performance.now() / 1000;

/** Weights with a varied bf16 pattern (values of std ~0.02 keep activations finite). */
function randomModel(c: LlamaConfig, device: Device): LlamaModel {
  const params = new Map<string, Tensor>();
  for (const [name, shape] of expectedLlamaTensors(c)) {
    const t = Tensor.empty(shape, 'bf16', device);
    const n = t.numel;
    const row = new Uint16Array(Math.min(n, 1 << 20));
    const norm = name.endsWith('norm.weight');
    for (let i = 0; i < row.length; i++) row[i] = norm ? 0x3f80 : 0x3ca3 ^ ((Math.imul(i + name.length, 2654435761) >>> 17) & 0x80ff);
    for (let off = 0; off < n; off += row.length) t.writeBytes(off * 2, row.subarray(0, Math.min(row.length, n - off)));
    params.set(name, t);
  }
  return new LlamaModel(c, params);
}

/**
 * Copy bandwidth (bytes read + written per second), the best of every sample taken: the native copy
 * kernel (on the device; a 2-byte read back makes each timing wait for it) and memcpy (on a GPU,
 * the same-device copy of to()). On the CPU the decode loop samples it again between steps, so the
 * best copy and the best step come from the same minutes: this guest's copy bandwidth moved between
 * 20 and 52 GB/s within an hour, and a bound measured only before the steps once gave a ratio of 1.67.
 */
class CopyBandwidth {
  native = 0;
  memcpy = 0;
  private readonly a: Tensor;
  private readonly b: Tensor;
  private readonly x?: Buffer;
  private readonly y?: Buffer;

  constructor(
    private readonly bytes: number,
    private readonly device: Device,
  ) {
    this.a = Tensor.full([bytes / 2], 'bf16', 1, device);
    this.b = Tensor.empty([bytes / 2], 'bf16', device);
    this.b.readBytes(0, 2);
    if (device === 'cpu') {
      this.x = Buffer.alloc(bytes, 1);
      this.y = Buffer.alloc(bytes);
    }
  }

  /** Times one copy of each kind. */
  sample(): void {
    let t0 = now();
    native().cast(this.a.handle, this.b.handle);
    this.b.readBytes(0, 2);
    this.native = Math.max(this.native, (2 * this.bytes) / (now() - t0));
    t0 = now();
    if (this.x && this.y) {
      this.x.copy(this.y);
    } else {
      // The device-to-device copy engine path too (to() on the same device copies): the bound is the
      // best copy the device does, not what our elementwise kernel reaches.
      const c = this.a.to(this.device);
      c.readBytes(0, 2);
      c.dispose();
    }
    this.memcpy = Math.max(this.memcpy, (2 * this.bytes) / (now() - t0));
  }

  get best(): number {
    return Math.max(this.native, this.memcpy);
  }

  dispose(): void {
    this.a.dispose();
    this.b.dispose();
  }
}

export const run: BenchSuite = async (opts) => {
  const device: Device = opts.device === 'cuda' ? 'cuda:0' : 'cpu';
  if (!native().devices().includes(device)) throw new Error(`bench decode --device cuda: this build or machine has no ${device} (see \`polytune devices\`)`);
  const c = opts.quick ? quick : device === 'cpu' ? full : gpu;
  const promptLen = opts.quick ? 32 : 128;
  const steps = opts.quick ? 8 : 24;
  const model = randomModel(c, device);
  const paramBytes = [...model.params.values()].reduce((s, t) => s + t.nbytes, 0);
  const params = paramBytes / 2;
  // Bytes one decode step must read: every weight but the embedding table (one row per token).
  const weightBytes = paramBytes - c.vocab_size * c.hidden_size * 2;
  const kvBytesPerToken = c.num_hidden_layers * 2 * c.num_key_value_heads * (c.hidden_size / c.num_attention_heads) * 2;
  const rows: Record<string, string | number>[] = [];
  const results: Record<string, unknown> = {};

  const bw = new CopyBandwidth(opts.quick ? 64 * 2 ** 20 : device === 'cpu' ? 512 * 2 ** 20 : 2 ** 31, device);
  for (let r = 0; r < (device === 'cpu' ? 5 : 20); r++) bw.sample();
  const copyRow: Record<string, string | number> = { measure: `copy bandwidth (native / ${device === 'cpu' ? 'memcpy' : 'to()'}), best`, value: '', bound: '', ratio: '' };
  rows.push(copyRow);

  // Prefill: one prompt of 512 tokens (128 quick) in chunks of 256.
  {
    const n = opts.quick ? 128 : 512;
    const dec = new KvDecoder(model, { slots: 1, maxLen: n + 8, chunk: 256 });
    const ids = Array.from({ length: n }, (_, i) => (i * 7919) % c.vocab_size);
    dec.forward([{ slot: 0, ids: ids.slice(0, 16) }]); // warm-up
    let best = Infinity;
    for (let r = 0; r < 2; r++) {
      dec.reset(0);
      const t0 = now();
      dec.forward([{ slot: 0, ids }]);
      best = Math.min(best, now() - t0);
    }
    const tps = n / best;
    results.prefill = { tokens: n, tokensPerSecond: tps, gflops: (2 * params * n) / best / 1e9 };
    rows.push({ measure: `prefill ${n} tokens`, value: `${tps.toFixed(1)} tok/s`, bound: '', ratio: '' });
    dec.dispose();
  }

  const measured: { B: number; times: number[] }[] = [];
  for (const B of [1, 16]) {
    const dec = new KvDecoder(model, { slots: B, maxLen: promptLen + steps + 8, chunk: 256 });
    const items = Array.from({ length: B }, (_, s) => ({ slot: s, ids: Array.from({ length: promptLen }, (_, i) => (i * 31 + s * 7) % c.vocab_size) }));
    let logits = dec.forward(items);
    let next = logits.map((l) => argmax(l));
    // One untimed step so first-touch costs stay out of the figure.
    logits = dec.forward(next.map((id, s) => ({ slot: s, ids: [id] })));
    next = logits.map((l) => argmax(l));
    // Per-step times: the best step is compared with the best copy, both as free of other
    // processes' interference as this run got; the mean is reported beside it. On the CPU a copy is
    // timed before each step (see CopyBandwidth).
    const times: number[] = [];
    for (let step = 0; step < steps; step++) {
      if (device === 'cpu') bw.sample();
      const t0 = now();
      logits = dec.forward(next.map((id, s) => ({ slot: s, ids: [id] })));
      next = logits.map((l) => argmax(l));
      times.push(now() - t0);
    }
    measured.push({ B, times });
    dec.dispose();
  }
  model.dispose();
  bw.dispose();
  // Each batch against the best copy of the whole run, the copies between its steps included.
  const bandwidth = bw.best;
  copyRow.value = `${(bw.native / 1e9).toFixed(1)} / ${(bw.memcpy / 1e9).toFixed(1)} GB/s`;
  for (const { B, times } of measured) {
    const dt = times.reduce((a, b) => a + b, 0);
    const best = Math.min(...times);
    const tps = B / best;
    const meanTps = (B * steps) / dt;
    // Bytes per step: the weights once plus every sequence's KV cache so far (at mid-run length).
    const bytesPerStep = weightBytes + B * kvBytesPerToken * (promptLen + steps / 2);
    const bound = (B * bandwidth) / bytesPerStep;
    results[`batch${B}`] = { tokensPerSecond: tps, meanTokensPerSecond: meanTps, bestMsPerStep: 1000 * best, meanMsPerStep: (1000 * dt) / steps, boundTokensPerSecond: bound, ratio: tps / bound, meanRatio: meanTps / bound, bytesPerStep };
    rows.push({ measure: `decode batch ${B} (greedy, ${promptLen}-token prompts)`, value: `${tps.toFixed(1)} tok/s (mean ${meanTps.toFixed(1)})`, bound: `${bound.toFixed(1)} tok/s`, ratio: `${(tps / bound).toFixed(3)} (mean ${(meanTps / bound).toFixed(3)})` });
    if (device !== 'cpu' && B === 1 && !opts.quick) {
      // What Llama-2-7B would reach at the same fraction of its own bound (it reads 13.2 GB a token).
      const projected = (tps / bound) * (bandwidth / LLAMA2_7B_DECODE_BYTES);
      results.llama2_7b_batch1_projected = projected;
      rows.push({ measure: 'Llama-2-7B batch 1 at this ratio (projected, not measured)', value: `${projected.toFixed(1)} tok/s`, bound: `${(bandwidth / LLAMA2_7B_DECODE_BYTES).toFixed(1)} tok/s`, ratio: '' });
    }
  }
  console.log(`decode on ${device}: random Llama ${(params / 1e6).toFixed(0)}M parameters, bf16 (${(weightBytes / 1e6).toFixed(0)} MB read per step), ${steps} decode steps`);
  printTable(rows);
  const path = writeReport('decode', opts.out, {
    device,
    model: { ...c, parameters: params, weightBytesPerStep: weightBytes },
    bandwidth: { nativeCopyBytesPerSecond: bw.native, memcpyBytesPerSecond: bw.memcpy, used: bandwidth, sampledBetweenSteps: device === 'cpu' },
    ...results,
  });
  console.log(`wrote ${path}`);
  return results;
};
