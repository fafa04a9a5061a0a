// Generation on a tiny chat checkpoint: greedy against a full-forward argmax loop, seeded sampling,
// batching, stop conditions, and `polytune generate` end to end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeConversation } from '../../src/data/index.js';
import { Generator, type GenerationRequest } from '../../src/generate/engine.js';
import { loadModel, type LoadedModel } from '../../src/generate/load.js';
import { argmax } from '../../src/generate/sampling.js';
import { native, withScope } from '../../src/tensor/index.js';
import { makeBatch } from '../../src/model/index.js';
import { runCli } from '../helpers/cli.js';
import { makeTinyChatCheckpoint } from '../helpers/tiny-checkpoint.js';

let tmp: string;
let dir: string;
let m: LoadedModel;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'polytune-gen-'));
  dir = await makeTinyChatCheckpoint(tmp);
  m = await loadModel(dir, { dtype: 'f32' });
});
afterAll(() => {
  m?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

// --device defaults to auto, which says what it picked on stderr, and nothing else is printed there.
const AUTO_DEVICE_LINE = /^device: (cpu|cuda:\d+) \(--device "auto": [^\n]*\)\n$/;

/** Greedy decoding by re-running the full forward pass on the whole sequence for every token. */
function referenceGreedy(prompt: number[], n: number, eos: number[]): number[] {
  const ids = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = withScope(() => m.model.forwardLogits(makeBatch(Int32Array.from(ids), 1)).toArray() as Float32Array);
    const next = argmax(logits.subarray((ids.length - 1) * m.model.config.vocab_size));
    out.push(next);
    ids.push(next);
    if (eos.includes(next)) break;
  }
  return out;
}

const prompts = () => [
  [m.generation.bos!, ...m.tokenizer.encode('Was ist drei plus vier?')],
  [m.generation.bos!, ...m.tokenizer.encode('Count to five, please. Compte jusqu’à cinq.')],
  encodeConversation(m.tokenizer, m.template!, { id: 'q', lang: 'IT', messages: [{ role: 'user', content: 'Quanto fa due più due?' }] }, { generationPrompt: true }).ids,
];

describe('Generator', () => {
  it('greedy equals a full-forward argmax loop, and is deterministic', async () => {
    const gen = new Generator(m.model, m.tokenizer, { slots: 1, maxLen: 256, eos: [] });
    for (const p of prompts()) {
      const ref = referenceGreedy(p, 24, []);
      const a = await gen.generate({ prompt: p, maxNewTokens: 24, sampling: { temperature: 0 } });
      const b = await gen.generate({ prompt: p, maxNewTokens: 24, sampling: { temperature: 0 } });
      expect(a.ids).toEqual(ref);
      expect(b.ids).toEqual(a.ids);
      expect(a.finishReason).toBe('length');
      expect(a.text).toBe(m.tokenizer.decode(a.ids));
    }
    gen.dispose();
  });

  it('batched (continuous batching, more requests than slots) equals one at a time, greedy and seeded sampling', async () => {
    const reqs: GenerationRequest[] = [];
    prompts().forEach((p, i) => {
      reqs.push({ prompt: p, maxNewTokens: 10 + 5 * i, sampling: { temperature: 0 } });
      reqs.push({ prompt: p, maxNewTokens: 20, sampling: { temperature: 0.9, topP: 0.9, topK: 40, seed: 100 + i } });
    });
    const alone = new Generator(m.model, m.tokenizer, { slots: 1, maxLen: 256, eos: [] });
    const one: number[][] = [];
    for (const r of reqs) one.push((await alone.generate(r)).ids);
    alone.dispose();
    const batched = new Generator(m.model, m.tokenizer, { slots: 4, maxLen: 256, eos: [], chunk: 32 });
    const many = await Promise.all(reqs.map((r) => batched.generate(r)));
    expect(batched.stats.passes).toBeLessThan(reqs.reduce((s, r) => s + r.maxNewTokens, 0));
    batched.dispose();
    expect(many.map((r) => r.ids)).toEqual(one);
  });

  it('seeded sampling reproduces; other seeds differ', async () => {
    const gen = new Generator(m.model, m.tokenizer, { slots: 2, maxLen: 256, eos: [] });
    const p = prompts()[0];
    const run = (seed: number) => gen.generate({ prompt: p, maxNewTokens: 30, sampling: { temperature: 1.2, seed } });
    const [a, b, c] = await Promise.all([run(1), run(1), run(2)]);
    expect(a.ids).toEqual(b.ids);
    expect(c.ids).not.toEqual(a.ids);
    gen.dispose();
  });

  it('stops at EOS (kept in ids, not in text), at max_new_tokens, and at stop strings (cut from text and stream)', async () => {
    const p = prompts()[1];
    const free = new Generator(m.model, m.tokenizer, { slots: 1, maxLen: 256, eos: [] });
    const base = await free.generate({ prompt: p, maxNewTokens: 12, sampling: { temperature: 0 } });
    // Make the 5th greedy token the EOS id: generation must end right there.
    const eosGen = new Generator(m.model, m.tokenizer, { slots: 1, maxLen: 256, eos: [base.ids[4]] });
    const e = await eosGen.generate({ prompt: p, maxNewTokens: 12, sampling: { temperature: 0 } });
    expect(e.ids).toEqual(base.ids.slice(0, base.ids.indexOf(base.ids[4]) + 1));
    expect(e.finishReason).toBe('stop');
    expect(e.text).toBe(m.tokenizer.decode(e.ids.slice(0, -1)));
    eosGen.dispose();
    // A stop string from the middle of the greedy text.
    const stop = base.text.slice(Math.floor(base.text.length / 2), Math.floor(base.text.length / 2) + 3);
    let streamed = '';
    const s = await free.generate({ prompt: p, maxNewTokens: 12, sampling: { temperature: 0 }, stop: [stop], onText: (d) => (streamed += d) });
    expect(s.finishReason).toBe('stop');
    expect(s.text).toBe(base.text.slice(0, base.text.indexOf(stop)));
    expect(streamed).toBe(s.text);
    // Without a stop, the stream is the whole text.
    streamed = '';
    const whole = await free.generate({ prompt: p, maxNewTokens: 12, sampling: { temperature: 0 }, onText: (d) => (streamed += d) });
    expect(streamed).toBe(whole.text);
    free.dispose();
  });

  it('rejects bad requests without disturbing others', async () => {
    const gen = new Generator(m.model, m.tokenizer, { slots: 2, maxLen: 64, eos: [] });
    const good = gen.generate({ prompt: prompts()[0], maxNewTokens: 5, sampling: { temperature: 0 } });
    await expect(gen.generate({ prompt: [], maxNewTokens: 5 })).rejects.toThrow(/no tokens/);
    await expect(gen.generate({ prompt: [1, 99999], maxNewTokens: 5 })).rejects.toThrow(/outside the vocabulary/);
    await expect(gen.generate({ prompt: Array(64).fill(5), maxNewTokens: 5 })).rejects.toThrow(/no room/);
    await expect(gen.generate({ prompt: [1, 5], maxNewTokens: 5, sampling: { topP: 2 } })).rejects.toThrow(/top_p/);
    expect((await good).ids).toHaveLength(5);
    // The context bounds generation: a 60-token prompt in a 64-token cache gets 4 tokens.
    const r = await gen.generate({ prompt: Array(60).fill(5), maxNewTokens: 50, sampling: { temperature: 0 } });
    expect(r.ids).toHaveLength(4);
    expect(r.finishReason).toBe('length');
    gen.dispose();
  });

  it('a callback that throws fails its own request only; the others finish as if alone', async () => {
    const gen = new Generator(m.model, m.tokenizer, { slots: 3, maxLen: 128, eos: [] });
    const [p0, p1] = prompts();
    const alone = await gen.generate({ prompt: p1, maxNewTokens: 8, sampling: { temperature: 0 } });
    let calls = 0;
    const results = await Promise.allSettled([
      gen.generate({ prompt: p0, maxNewTokens: 8, sampling: { temperature: 0 }, onText: () => { throw new Error('client gone'); } }),
      gen.generate({ prompt: p0, maxNewTokens: 8, sampling: { temperature: 0 }, onToken: () => { if (++calls === 3) throw new Error('token hook'); } }),
      gen.generate({ prompt: p1, maxNewTokens: 8, sampling: { temperature: 0 } }),
    ]);
    expect(results[0]).toMatchObject({ status: 'rejected', reason: { message: 'client gone' } });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { message: 'token hook' } });
    expect(results[2]).toMatchObject({ status: 'fulfilled', value: { ids: alone.ids } });
    // The generator still serves: its slots were freed.
    expect((await gen.generate({ prompt: p1, maxNewTokens: 8, sampling: { temperature: 0 } })).ids).toEqual(alone.ids);
    expect(gen.load).toEqual({ active: 0, queued: 0 });
    gen.dispose();
  });
});

describe('polytune generate', () => {
  it('--input-ids feeds ids as given; --output ids prints the greedy ids', () => {
    const p = prompts()[0];
    const r = runCli(['generate', '--model', dir, '--dtype', 'f32', '--input-ids', JSON.stringify(p), '--max-new-tokens', '16', '--output', 'ids']);
    expect(r.stderr).toMatch(AUTO_DEVICE_LINE);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(referenceGreedy(p, 16, m.generation.eos));
  });

  it('--chat wraps the prompt in the checkpoint template; text streams; json reports the prompt ids', () => {
    const r = runCli(['generate', '--model', dir, '--dtype', 'f32', '--prompt', 'Quanto fa due più due?', '--chat', '--lang', 'IT', '--max-new-tokens', '8', '--output', 'json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.prompt_ids).toEqual(prompts()[2]);
    expect(j.ids).toEqual(referenceGreedy(prompts()[2], 8, m.generation.eos));
    const t = runCli(['generate', '--model', dir, '--dtype', 'f32', '--prompt', 'Quanto fa due più due?', '--chat', '--lang', 'IT', '--max-new-tokens', '8']);
    expect(t.stdout).toBe(j.text + '\n');
  });

  it('sampling flags with a seed reproduce; bad flags fail with a message', () => {
    const args = ['generate', '--model', dir, '--prompt', 'Hallo', '--temperature', '1', '--top-p', '0.95', '--seed', '7', '--max-new-tokens', '10', '--output', 'ids'];
    const a = runCli(args), b = runCli(args);
    expect(a.status).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    const bad = runCli(['generate', '--model', dir, '--input-ids', '[1, "x"]']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--input-ids: expected a non-empty JSON array of token ids/);
    const both = runCli(['generate', '--model', dir]);
    expect(both.stderr).toMatch(/exactly one of --prompt and --input-ids/);
  });

  it('--device: cpu is logged as picked; a cuda that this build or machine lacks is an error, never a fallback', () => {
    const ids = JSON.stringify(prompts()[0]);
    const cpu = runCli(['generate', '--model', dir, '--dtype', 'f32', '--device', 'cpu', '--input-ids', ids, '--max-new-tokens', '4', '--output', 'ids']);
    expect(cpu.status).toBe(0);
    expect(cpu.stderr).toBe('device: cpu (--device is "cpu")\n');
    expect(JSON.parse(cpu.stdout)).toEqual(referenceGreedy(prompts()[0], 4, m.generation.eos));
    const bad = runCli(['generate', '--model', dir, '--device', 'gpu', '--input-ids', ids]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--device: expected auto, cpu, cuda or cuda:N, got "gpu"/);
    const gpus = native().devices().filter((d) => d !== 'cpu');
    const missing = `cuda:${gpus.length}`;
    const none = runCli(['generate', '--model', dir, '--device', missing, '--input-ids', ids]);
    expect(none.status).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(native().buildInfo().cuda
      ? new RegExp(`--device is "${missing}" but this machine has `)
      : /--device is "cuda:0" but this addon was built without CUDA; .*set --device to "cpu" or "auto"/);
  });
});

describe('polytune chat', () => {
  it("one message per line, the model's own answers in the next turn's prompt; /reset starts over", async () => {
    const gen = new Generator(m.model, m.tokenizer, { slots: 1, maxLen: 2048, eos: m.generation.eos });
    const say = async (messages: { role: 'user' | 'assistant'; content: string }[]) =>
      (await gen.generate({ prompt: encodeConversation(m.tokenizer, m.template!, { id: 'c', lang: 'DE', messages }, { generationPrompt: true }).ids, maxNewTokens: 6, sampling: { temperature: 0 } })).text;
    const a1 = await say([{ role: 'user', content: 'Hallo' }]);
    const a2 = await say([{ role: 'user', content: 'Hallo' }, { role: 'assistant', content: a1.trim() }, { role: 'user', content: "Wie geht's?" }]);
    gen.dispose();
    const r = runCli(['chat', '--model', dir, '--dtype', 'f32', '--lang', 'DE', '--max-new-tokens', '6'], { input: "Hallo\nWie geht's?\n/reset\nHallo\n" });
    expect(r.stderr).toMatch(AUTO_DEVICE_LINE);
    expect(r.stdout).toBe(`${a1}\n${a2}\n${a1}\n`);
  });
});
