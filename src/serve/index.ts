// An OpenAI-compatible chat server over one model folder: POST /v1/chat/completions (with
// server-sent-event streaming) and GET /v1/models. Concurrent requests share the KV-cache batch
// (continuous batching). Bad requests get 400 with OpenAI's error body; nothing a client sends
// can stop the server.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeConversation, type Message, type Role } from '../data/index.js';
import { Generator, type FinishReason } from '../generate/engine.js';
import { loadModel, type LoadedModel } from '../generate/load.js';
import { checkSampling, type SamplingParams } from '../generate/sampling.js';
import type { Device } from '../tensor/index.js';

export interface ServeOptions {
  model: string;
  host?: string;
  port?: number;
  log?: (line: string) => void;
  /** Concurrent sequences (default 8). */
  batch?: number;
  /** KV-cache context per sequence (default max_position_embeddings, at most 4096). */
  maxLen?: number;
  /**
   * The most tokens one completion may have, whatever the request's max_tokens (default: no cap
   * beyond the context). For small or slow models acting as judges, which are asked for 2048.
   */
  maxNewTokens?: number;
  /**
   * Requests that may wait for a free sequence slot (default 4 × batch); beyond them a request is
   * answered 429 at once (OpenAI clients retry with backoff) instead of holding its body in memory.
   */
  maxQueue?: number;
  dtype?: 'bf16' | 'f32';
  /** Where the model and its KV cache live (default cpu). */
  device?: Device;
  /** Chat template: the folder's (default), 'teuken', 'llama2' or a tokenizer_config.json. */
  template?: string;
  /** The id /v1/models reports (default: the folder name); requests may name any model. */
  modelId?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY = 8 * 2 ** 20;

class RequestError extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
    readonly status = 400,
    readonly type = 'invalid_request_error',
  ) {
    super(message);
  }
}

interface ChatRequest {
  messages: Message[];
  sampling: SamplingParams;
  maxTokens?: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  lang: string;
}

/** Validates a chat.completions body, naming the offending parameter as OpenAI does. */
export function parseChatRequest(body: unknown): ChatRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new RequestError('The request body must be a JSON object.');
  const b = body as Record<string, unknown>;
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw new RequestError("'messages' must be a non-empty array.", 'messages');
  const messages: Message[] = b.messages.map((m: unknown, i: number) => {
    const where = `messages[${i}]`;
    if (m === null || typeof m !== 'object') throw new RequestError(`${where} must be an object with role and content.`, where);
    const { role, content } = m as Record<string, unknown>;
    const roles: Role[] = ['system', 'user', 'assistant'];
    const r = role === 'developer' ? 'system' : role;
    if (!roles.includes(r as Role)) throw new RequestError(`${where}.role must be one of system, user, assistant; got ${JSON.stringify(role)}.`, `${where}.role`);
    let text: string;
    if (typeof content === 'string') text = content;
    else if (Array.isArray(content) && content.every((p) => p && typeof p === 'object' && (p as { type?: unknown }).type === 'text' && typeof (p as { text?: unknown }).text === 'string')) {
      text = content.map((p) => (p as { text: string }).text).join('');
    } else throw new RequestError(`${where}.content must be a string or a list of text parts.`, `${where}.content`);
    return { role: r as Role, content: text };
  });
  const numberParam = (name: string, lo: number, hi: number, integer = false): number | undefined => {
    const v = b[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
      throw new RequestError(`'${name}' must be ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}]; got ${JSON.stringify(v)}.`, name);
    }
    return v;
  };
  const n = numberParam('n', 1, 1, true);
  void n;
  const temperature = numberParam('temperature', 0, 2);
  const topP = numberParam('top_p', 0, 1);
  if (topP === 0) throw new RequestError("'top_p' must be greater than 0.", 'top_p');
  const topK = numberParam('top_k', 0, 1e9, true);
  const repetitionPenalty = numberParam('repetition_penalty', 1e-6, 100);
  const seed = numberParam('seed', -(2 ** 53) + 1, 2 ** 53 - 1, true);
  const maxTokens = numberParam('max_completion_tokens', 1, 1e9, true) ?? numberParam('max_tokens', 1, 1e9, true);
  for (const p of ['frequency_penalty', 'presence_penalty'] as const) {
    const v = numberParam(p, -2, 2);
    if (v !== undefined && v !== 0) throw new RequestError(`'${p}' is not supported (use repetition_penalty).`, p);
  }
  if (b.logprobs === true) throw new RequestError("'logprobs' is not supported.", 'logprobs');
  if (b.tools !== undefined && b.tools !== null) throw new RequestError("'tools' are not supported.", 'tools');
  let stop: string[] = [];
  if (typeof b.stop === 'string') stop = [b.stop];
  else if (Array.isArray(b.stop) && b.stop.length <= 4 && b.stop.every((s) => typeof s === 'string')) stop = b.stop as string[];
  else if (b.stop !== undefined && b.stop !== null) throw new RequestError("'stop' must be a string or a list of up to 4 strings.", 'stop');
  stop = stop.filter((s) => s !== '');
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw new RequestError("'stream' must be a boolean.", 'stream');
  const so = b.stream_options as { include_usage?: unknown } | undefined | null;
  const lang = typeof b.lang === 'string' ? b.lang.toUpperCase() : 'EN';
  // OpenAI's defaults: temperature 1, top_p 1, no top-k.
  const sampling: SamplingParams = { temperature: temperature ?? 1, topP: topP ?? 1, topK: topK ?? 0, repetitionPenalty: repetitionPenalty ?? 1, seed };
  try {
    checkSampling(sampling, 'request');
  } catch (e) {
    throw new RequestError((e as Error).message);
  }
  return { messages, sampling, maxTokens, stop, stream: b.stream === true, includeUsage: so?.include_usage === true, lang };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, e: RequestError): void {
  sendJson(res, e.status, { error: { message: e.message, type: e.type, param: e.param, code: null } });
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new RequestError(`The request body is larger than ${MAX_BODY} bytes.`, null, 413);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new RequestError('The request body is empty; expected JSON.');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new RequestError(`The request body is not valid JSON: ${(e as Error).message}`);
  }
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const log = opts.log ?? (() => {});
  const m: LoadedModel = await loadModel(opts.model, { dtype: opts.dtype, template: opts.template, device: opts.device });
  if (!m.template) {
    m.dispose();
    throw new Error(`${m.dir}: has no chat_template in tokenizer_config.json; pass a template (teuken, llama2 or a tokenizer_config.json)`);
  }
  const template = m.template;
  const modelId = opts.modelId ?? m.name;
  const maxLen = Math.min(m.model.config.max_position_embeddings, opts.maxLen ?? 4096);
  const gen = new Generator(m.model, m.tokenizer, { slots: opts.batch ?? 8, maxLen, eos: m.generation.eos });
  const created = Math.floor(Date.now() / 1000);

  const slots = opts.batch ?? 8;
  const maxPending = slots + (opts.maxQueue ?? 4 * slots);
  let pending = 0;
  const chat = async (req: IncomingMessage, res: ServerResponse) => {
    if (pending >= maxPending) {
      throw new RequestError(`The server is busy: ${pending - slots} requests are already waiting for one of ${slots} slots; retry later.`, null, 429, 'rate_limit_error');
    }
    pending++;
    try {
      await complete(req, res);
    } finally {
      pending--;
    }
  };
  const complete = async (req: IncomingMessage, res: ServerResponse) => {
    const r = parseChatRequest(await readBody(req));
    let prompt: number[];
    try {
      prompt = encodeConversation(m.tokenizer, template, { id: 'request', lang: r.lang, messages: r.messages }, { generationPrompt: true }).ids;
    } catch (e) {
      throw new RequestError((e as Error).message.replace(/^conversation request \(\w+\): /, ''), 'messages');
    }
    const room = maxLen - prompt.length;
    if (room < 1) throw new RequestError(`The prompt has ${prompt.length} tokens; this server's context is ${maxLen}.`, 'messages');
    const maxNew = Math.min(room, r.maxTokens ?? room, opts.maxNewTokens ?? room);
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const now = Math.floor(Date.now() / 1000);
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const finishOf = (f: FinishReason) => (f === 'length' ? 'length' : 'stop');
    const usage = (n: number) => ({ prompt_tokens: prompt.length, completion_tokens: n, total_tokens: prompt.length + n });
    if (!r.stream) {
      const out = await gen.generate({ prompt, maxNewTokens: maxNew, sampling: r.sampling, stop: r.stop, signal: abort.signal });
      sendJson(res, 200, {
        id, object: 'chat.completion', created: now, model: modelId, system_fingerprint: null,
        choices: [{ index: 0, message: { role: 'assistant', content: out.text, refusal: null }, logprobs: null, finish_reason: finishOf(out.finishReason) }],
        usage: usage(out.ids.length),
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.on('error', () => abort.abort());
    const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
      !res.destroyed && res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: now, model: modelId, system_fingerprint: null, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra })}\n\n`);
    chunk({ role: 'assistant', content: '' }, null);
    try {
      const out = await gen.generate({ prompt, maxNewTokens: maxNew, sampling: r.sampling, stop: r.stop, signal: abort.signal, onText: (d) => d && chunk({ content: d }, null) });
      if (out.finishReason === 'abort') return;
      chunk({}, finishOf(out.finishReason));
      if (res.destroyed) return;
      if (r.includeUsage) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: now, model: modelId, choices: [], usage: usage(out.ids.length) })}\n\n`);
      res.write('data: [DONE]\n\n');
    } catch (e) {
      if (!res.destroyed) res.write(`data: ${JSON.stringify({ error: { message: (e as Error).message, type: 'server_error', param: null, code: null } })}\n\n`);
    }
    res.end();
  };

  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    const t0 = performance.now();
    res.on('finish', () => log(`${req.method} ${url} ${res.statusCode} ${(performance.now() - t0).toFixed(0)} ms`));
    const handle = async () => {
      if (url === '/v1/models' || url === '/models') {
        if (req.method !== 'GET') throw new RequestError(`Method ${req.method} is not allowed on ${url}; use GET.`, null, 405);
        sendJson(res, 200, { object: 'list', data: [{ id: modelId, object: 'model', created, owned_by: 'polytune' }] });
      } else if (url === '/v1/chat/completions' || url === '/chat/completions') {
        if (req.method !== 'POST') throw new RequestError(`Method ${req.method} is not allowed on ${url}; use POST.`, null, 405);
        await chat(req, res);
      } else if (url === '/health') {
        sendJson(res, 200, { status: 'ok', ...gen.load, generatedTokens: gen.stats.generated, prefilledTokens: gen.stats.prefilled });
      } else {
        throw new RequestError(`Unknown path ${url}; this server has GET /v1/models and POST /v1/chat/completions.`, null, 404);
      }
    };
    handle().catch((e: unknown) => {
      if (e instanceof RequestError) sendError(res, e);
      else {
        log(`error: ${(e as Error)?.stack ?? String(e)}`);
        sendError(res, new RequestError(`Internal error: ${(e as Error)?.message ?? String(e)}`, null, 500, 'server_error'));
      }
    });
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8000, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `http://${shownHost}:${port}/v1`;
  log(`serving ${modelId} at ${url} (batch ${gen.decoder.slots}, context ${maxLen})`);
  let closed = false;
  return {
    url,
    port,
    close: async () => {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      gen.dispose();
      m.dispose();
    },
  };
}
