// Generation on every device other than the CPU against the CPU: the KV-cache decoder with the model
// on the device (greedy tokens and every step's logits, prefill split into chunks beside decoding
// slots, bf16 teacher-forced), and a checkpoint folder loaded onto the device through loadModel and
// decoded by the Generator. The CPU's decoder is itself checked against the full forward pass in
// kv-decoder.test.ts. Devices that are not there show as skipped with the reason.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Generator } from '../../src/generate/engine.js';
import { KvDecoder } from '../../src/generate/kv-decoder.js';
import { loadModel } from '../../src/generate/load.js';
import { argmax } from '../../src/generate/sampling.js';
import { LlamaModel, initLlamaWeights, type LlamaConfig } from '../../src/model/index.js';
import type { DType, Device } from '../../src/tensor/index.js';
import { randint, rng } from '../helpers/random.js';
import { TINY } from '../helpers/tiny.js';
import { makeTinyChatCheckpoint } from '../helpers/tiny-checkpoint.js';
import { backends } from '../ops/harness.js';

// (test/oracle's random-llama is not used: it pulls in onnxruntime, which the device bundle lacks.)
const CONFIGS: [string, LlamaConfig][] = [
  ['tiny (head_dim 8, GQA 2)', TINY],
  ['wide (head_dim 128, multi-query, vocab 300)', { ...TINY, hidden_size: 512, intermediate_size: 256, num_attention_heads: 4, num_key_value_heads: 1, vocab_size: 300 }],
];

const randomIds = (c: LlamaConfig, n: number, seed: number): number[] => Array.from(randint(n, c.vocab_size, rng(seed)));

function withModel<R>(c: LlamaConfig, seed: number, dtype: DType, device: Device, f: (m: LlamaModel) => R): R {
  // std 1.5/sqrt(hidden): logits and attention scores of order 1-2, far from flat, so the greedy
  // tokens have clear margins and a wrong key or position changes them.
  const m = LlamaModel.fromWeights(c, initLlamaWeights(c, seed, 1.5 / Math.sqrt(c.hidden_size)), dtype, undefined, device);
  try {
    return f(m);
  } finally {
    m.dispose();
  }
}

/** A prompt prefilled in chunks of 4, then `steps` greedy tokens: the ids and each step's logits. */
function greedy(m: LlamaModel, prompt: number[], steps: number) {
  const dec = new KvDecoder(m, { slots: 1, maxLen: m.config.max_position_embeddings, chunk: 4 });
  try {
    const ids: number[] = [], logits: Float32Array[] = [];
    let l = dec.forward([{ slot: 0, ids: prompt }])[0];
    for (let i = 0; i < steps; i++) {
      logits.push(l);
      ids.push(argmax(l));
      l = dec.forward([{ slot: 0, ids: [ids[i]] }])[0];
    }
    return { ids, logits };
  } finally {
    dec.dispose();
  }
}

/** Three slots fed in mixed passes (a prefill beside decoding slots, idle slots): every token's logits per slot. */
function batched(m: LlamaModel, seqs: number[][]) {
  const dec = new KvDecoder(m, { slots: seqs.length, maxLen: m.config.max_position_embeddings, chunk: 8 });
  try {
    const V = m.config.vocab_size;
    const got = seqs.map((s) => new Float32Array(s.length * V));
    const fed = seqs.map(() => 0);
    for (let step = 0; fed.some((f, i) => f < seqs[i].length); step++) {
      const plan = seqs.map((_, i) => (step === 0 ? [9, 1, 3][i] : (step + i) % 3));
      const items = plan.map((n, slot) => ({ slot, ids: seqs[slot].slice(fed[slot], fed[slot] + n) })).filter((it) => it.ids.length > 0);
      dec.forward(items, { allLogits: true }).forEach((o, j) => {
        got[items[j].slot].set(o, fed[items[j].slot] * V);
        fed[items[j].slot] += items[j].ids.length;
      });
    }
    return got;
  } finally {
    dec.dispose();
  }
}

/** max |a - b| / max |b| */
function relMax(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0, p = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Number.isNaN(a[i]) ? Infinity : Math.abs(a[i] - b[i]));
    p = Math.max(p, Math.abs(b[i]));
  }
  return d / p;
}

describe.each(backends())('generation on $name against the cpu', ({ device, skip }) => {
  for (const [label, c] of CONFIGS) {
    it.skipIf(!!skip)(`${label} f32: greedy decoding gives the cpu's tokens, every step's logits to 1e-4`, () => {
      const prompt = randomIds(c, 11, 5);
      const want = withModel(c, 31, 'f32', 'cpu', (m) => greedy(m, prompt, 24));
      const got = withModel(c, 31, 'f32', device, (m) => greedy(m, prompt, 24));
      expect(got.ids).toEqual(want.ids);
      want.logits.forEach((w, i) => expect(relMax(got.logits[i], w), `step ${i}`).toBeLessThanOrEqual(1e-4));
    });

    it.skipIf(!!skip)(`${label} f32: slots of different lengths in mixed passes give the cpu's logits for every token`, () => {
      const seqs = [randomIds(c, 30, 41), randomIds(c, 7, 42), randomIds(c, 19, 43)];
      const want = withModel(c, 32, 'f32', 'cpu', (m) => batched(m, seqs));
      const got = withModel(c, 32, 'f32', device, (m) => batched(m, seqs));
      got.forEach((g, i) => expect(relMax(g, want[i]), `slot ${i}`).toBeLessThanOrEqual(1e-4));
    });

    it.skipIf(!!skip)(`${label} bf16: the same tokens fed on both give logits within bf16 rounding`, () => {
      const seqs = [randomIds(c, 25, 51), randomIds(c, 12, 52), randomIds(c, 1, 53)];
      const want = withModel(c, 33, 'bf16', 'cpu', (m) => batched(m, seqs));
      const got = withModel(c, 33, 'bf16', device, (m) => batched(m, seqs));
      // Both round activations to bf16 after every op, at different points (fused kernels, GEMM
      // epilogues): the budget of kv-decoder.test.ts's bf16 check against the full forward.
      got.forEach((g, i) => expect(relMax(g, want[i]), `slot ${i}`).toBeLessThanOrEqual(0.05));
    });
  }

  it.skipIf(!!skip)('a checkpoint folder loaded onto the device generates the cpu\'s greedy ids (Generator, 2 slots)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'polytune-gen-dev-'));
    try {
      const dir = await makeTinyChatCheckpoint(tmp);
      const answer = async (dev: Device) => {
        const m = await loadModel(dir, { dtype: 'f32', device: dev });
        try {
          expect(m.model.device).toBe(dev);
          const gen = new Generator(m.model, m.tokenizer, { slots: 2, maxLen: 128, eos: [] });
          const prompts = [[m.generation.bos!, ...m.tokenizer.encode('Was ist drei plus vier?')], [m.generation.bos!, ...m.tokenizer.encode('Count to five.')]];
          const r = await Promise.all(prompts.map((prompt) => gen.generate({ prompt, maxNewTokens: 20, sampling: { temperature: 0 } })));
          gen.dispose();
          return r.map((x) => x.ids);
        } finally {
          m.dispose();
        }
      };
      const want = await answer('cpu');
      expect(want[0].length).toBe(20);
      expect(await answer(device)).toEqual(want);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
