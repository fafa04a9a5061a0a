// `polytune serve` over real HTTP on loopback: the openai npm client and plain fetch, streaming,
// concurrent requests, and malformed bodies; answers checked against the generator run directly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeConversation, type Message } from '../../src/data/index.js';
import { Generator } from '../../src/generate/engine.js';
import { loadModel, type LoadedModel } from '../../src/generate/load.js';
import { startServer, type RunningServer } from '../../src/serve/index.js';
import { spawnCli } from '../helpers/cli.js';
import { makeTinyChatCheckpoint } from '../helpers/tiny-checkpoint.js';

let tmp: string;
let dir: string;
let server: RunningServer;
let client: OpenAI;
let m: LoadedModel;
let ref: Generator;
const logs: string[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'polytune-serve-'));
  dir = await makeTinyChatCheckpoint(tmp);
  server = await startServer({ model: dir, port: 0, log: (l) => logs.push(l), batch: 4, dtype: 'f32' });
  client = new OpenAI({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 });
  m = await loadModel(dir, { dtype: 'f32' });
  ref = new Generator(m.model, m.tokenizer, { slots: 1, maxLen: 2048, eos: m.generation.eos });
});
afterAll(async () => {
  await server?.close();
  ref?.dispose();
  m?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

/** What the server should answer, greedily, computed without it. */
async function expected(messages: Message[], maxTokens: number, lang = 'EN', stop?: string[]) {
  const prompt = encodeConversation(m.tokenizer, m.template!, { id: 'x', lang, messages }, { generationPrompt: true }).ids;
  return ref.generate({ prompt, maxNewTokens: maxTokens, sampling: { temperature: 0 }, stop });
}

const post = (body: unknown, path = '/chat/completions') =>
  fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('polytune serve', () => {
  it('is on loopback; GET /v1/models lists the model', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const models = await client.models.list();
    expect(models.data.map((x) => x.id)).toEqual(['model']);
  });

  it('chat.completions with the openai client: the template applied, greedy text, usage, finish_reason', async () => {
    const messages: Message[] = [{ role: 'system', content: 'Sei kurz.' }, { role: 'user', content: 'Was ist drei plus vier?' }];
    const r = await client.chat.completions.create({ model: 'model', messages, temperature: 0, max_tokens: 12 });
    const want = await expected(messages, 12);
    expect(r.choices[0].message.content).toBe(want.text);
    expect(r.choices[0].finish_reason).toBe(want.finishReason === 'length' ? 'length' : 'stop');
    expect(r.usage).toEqual({ prompt_tokens: want.promptTokens, completion_tokens: want.ids.length, total_tokens: want.promptTokens + want.ids.length });
    expect(r.object).toBe('chat.completion');
  });

  it('streams server-sent events whose deltas make the same text; stop strings are honoured', async () => {
    const messages: Message[] = [{ role: 'user', content: 'Count to five.' }];
    const want = await expected(messages, 16);
    const stream = await client.chat.completions.create({ model: 'model', messages, temperature: 0, max_tokens: 16, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: unknown;
    let n = 0;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      if (!c.choices.length) continue;
      text += c.choices[0].delta.content ?? '';
      finish = c.choices[0].finish_reason ?? finish;
      n++;
    }
    expect(text).toBe(want.text);
    expect(n).toBeGreaterThan(3);
    expect(finish).toBe('length');
    expect(usage).toMatchObject({ completion_tokens: want.ids.length });
    const stop = want.text.slice(4, 7);
    const cut = await client.chat.completions.create({ model: 'model', messages, temperature: 0, max_tokens: 16, stop: [stop] });
    expect(cut.choices[0].message.content).toBe(want.text.slice(0, want.text.indexOf(stop)));
    expect(cut.choices[0].finish_reason).toBe('stop');
  });

  it('answers concurrent requests (batched) exactly as one at a time; seeded sampling reproduces', async () => {
    const asks = ['Wie heißt die Hauptstadt von Italien?', 'Combien font deux plus deux ?', 'Spell the word cat.', 'Conta fino a tre.', 'Cuenta hasta cuatro.', 'Hi!'];
    const wants = [];
    for (const a of asks) wants.push((await expected([{ role: 'user', content: a }], 10)).text);
    const gots = await Promise.all(asks.map((a) => client.chat.completions.create({ model: 'model', messages: [{ role: 'user', content: a }], temperature: 0, max_tokens: 10 })));
    expect(gots.map((g) => g.choices[0].message.content)).toEqual(wants);
    const sampled = () => client.chat.completions.create({ model: 'model', messages: [{ role: 'user', content: 'Hi!' }], temperature: 1, top_p: 0.9, seed: 42, max_tokens: 10 });
    const [x, y] = await Promise.all([sampled(), sampled()]);
    expect(x.choices[0].message.content).toBe(y.choices[0].message.content);
  });

  it('malformed requests get 400 with an OpenAI-style error body, and the server keeps serving', async () => {
    const cases: [unknown, RegExp, string | null][] = [
      ['{not json', /not valid JSON/, null],
      ['', /empty/, null],
      [[1, 2], /JSON object/, null],
      [{}, /'messages' must be a non-empty array/, 'messages'],
      [{ messages: [{ role: 'wizard', content: 'x' }] }, /role must be one of/, 'messages[0].role'],
      [{ messages: [{ role: 'user', content: 42 }] }, /content must be a string/, 'messages[0].content'],
      [{ messages: [{ role: 'user', content: 'x' }], temperature: -1 }, /'temperature' must be a number in \[0, 2\]/, 'temperature'],
      [{ messages: [{ role: 'user', content: 'x' }], top_p: 0 }, /top_p/, 'top_p'],
      [{ messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, /'max_tokens'/, 'max_tokens'],
      [{ messages: [{ role: 'user', content: 'x' }], n: 2 }, /'n'/, 'n'],
      [{ messages: [{ role: 'user', content: 'x' }], stop: [1] }, /'stop'/, 'stop'],
      [{ messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, /'stream'/, 'stream'],
      [{ messages: [{ role: 'assistant', content: 'x' }] }, /must end with a user turn/, 'messages'],
      [{ messages: [{ role: 'user', content: 'x' }, { role: 'user', content: 'y' }] }, /assistant|alternate/, 'messages'],
      [{ messages: [{ role: 'user', content: 'x '.repeat(3000) }] }, /context is 2048/, 'messages'],
    ];
    for (const [body, msg, param] of cases) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      const j = await r.json();
      expect(j.error.type).toBe('invalid_request_error');
      expect(j.error.message).toMatch(msg);
      expect(j.error.param).toBe(param);
    }
    expect((await fetch(server.url + '/nope')).status).toBe(404);
    expect((await fetch(server.url + '/chat/completions')).status).toBe(405);
    // The openai client surfaces the 400 as an APIError with the message.
    await expect(client.chat.completions.create({ model: 'model', messages: [], max_tokens: 1 })).rejects.toMatchObject({ status: 400 });
    const ok = await client.chat.completions.create({ model: 'model', messages: [{ role: 'user', content: 'Hi!' }], temperature: 0, max_tokens: 3 });
    expect(ok.choices[0].message.content).toBe((await expected([{ role: 'user', content: 'Hi!' }], 3)).text);
  });

  it('a client that disconnects mid-stream stops its generation and frees its slot', async () => {
    const messages: Message[] = [{ role: 'user', content: 'Tell me more.' }];
    // Left alone, this request would generate all 1500 tokens (no EOS on the way).
    expect((await expected(messages, 1500)).finishReason).toBe('length');
    const health = async () => (await fetch(server.url.replace(/\/v1$/, '') + '/health')).json();
    const before = (await health()).generatedTokens;
    const ctrl = new AbortController();
    const res = await fetch(server.url + '/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: ctrl.signal,
      body: JSON.stringify({ messages, stream: true, max_tokens: 1500, temperature: 0 }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    ctrl.abort();
    const t0 = Date.now();
    let load = { active: 1, queued: 1, generatedTokens: 0 };
    while (Date.now() - t0 < 20_000 && (load.active > 0 || load.queued > 0)) {
      await new Promise((r) => setTimeout(r, 50));
      load = await health();
    }
    expect(load).toMatchObject({ active: 0, queued: 0 });
    expect(load.generatedTokens - before).toBeLessThan(500);
  });
});

describe('polytune serve under more requests than it holds', () => {
  it('answers 429 (rate_limit_error) past batch + maxQueue at once, serves the rest, and stays up', async () => {
    const busy = await startServer({ model: dir, port: 0, batch: 1, maxQueue: 1, dtype: 'f32', maxNewTokens: 400 });
    try {
      const body = JSON.stringify({ messages: [{ role: 'user', content: 'Tell me more.' }], max_tokens: 400, temperature: 0 });
      const rs = await Promise.all(Array.from({ length: 6 }, () => fetch(busy.url + '/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body })));
      const codes = rs.map((r) => r.status);
      const bodies = await Promise.all(rs.map((r) => r.json() as Promise<{ error?: { type: string; message: string } }>));
      expect(codes.filter((c) => c === 200).length).toBeGreaterThanOrEqual(2);
      expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(1);
      expect(codes.every((c) => c === 200 || c === 429)).toBe(true);
      for (const [i, b] of bodies.entries()) if (codes[i] === 429) expect(b.error).toMatchObject({ type: 'rate_limit_error', message: expect.stringContaining('retry later') });
      const after = await fetch(busy.url + '/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi!' }], max_tokens: 2 }) });
      expect(after.status).toBe(200);
    } finally {
      await busy.close();
    }
  });
});

describe('polytune serve (CLI)', () => {
  it('prints its base URL, answers plain fetch, and stops on SIGTERM', async () => {
    const child = spawnCli(['serve', '--model', dir, '--port', '0', '--quiet']);
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.trim());
      });
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
      setTimeout(() => reject(new Error('serve did not start in 60 s')), 60_000);
    });
    const r = await fetch(`${url}/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi!' }], max_tokens: 4, temperature: 0 }) });
    expect(r.status).toBe(200);
    expect((await r.json()).choices[0].message.role).toBe('assistant');
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
