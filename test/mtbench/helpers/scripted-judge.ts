import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A chat request as the scripted server saw it. */
export interface SeenRequest {
  url: string;
  authorization?: string;
  body: { model: string; messages: { role: string; content: string }[]; temperature: number; max_tokens: number; n?: number };
}

/** What to answer: a reply text (200), an HTTP error, or no answer at all (the client must time out). */
export type ScriptedReply = { content: string | null } | { status: number; body?: string; retryAfter?: string } | { hang: true };

export interface ScriptedJudge {
  url: string;
  requests: SeenRequest[];
  /** Most requests in flight at once. */
  maxInFlight: number;
  close(): Promise<void>;
}

/**
 * An OpenAI-compatible chat-completions server on 127.0.0.1 whose replies come from `script`
 * (called with the request and how many times that exact user prompt was seen before).
 * `holdUntil` holds the first replies until that many requests are in flight, so a test can see
 * the client's concurrency without timing anything.
 */
export async function startScriptedJudge(script: (req: SeenRequest, seenBefore: number) => ScriptedReply, holdUntil = 0): Promise<ScriptedJudge> {
  const requests: SeenRequest[] = [];
  const seen = new Map<string, number>();
  const held: (() => void)[] = [];
  let inFlight = 0;
  let released = holdUntil <= 1;
  const state = { maxInFlight: 0 };
  const hanging = new Set<IncomingMessage>();
  const server: Server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (data += c));
    req.on('end', () => {
      const body = JSON.parse(data) as SeenRequest['body'];
      const seenReq: SeenRequest = { url: req.url ?? '', authorization: req.headers.authorization, body };
      requests.push(seenReq);
      const user = body.messages.find((m) => m.role === 'user')?.content ?? '';
      const before = seen.get(user) ?? 0;
      seen.set(user, before + 1);
      inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, inFlight);
      const answer = () => {
        const r = script(seenReq, before);
        if ('hang' in r) { hanging.add(req); return; }
        inFlight--;
        if ('status' in r) {
          res.writeHead(r.status, { 'content-type': 'application/json', ...(r.retryAfter ? { 'retry-after': r.retryAfter } : {}) });
          res.end(r.body ?? JSON.stringify({ error: { message: `scripted ${r.status}` } }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'x', object: 'chat.completion', model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: r.content }, finish_reason: 'stop' }] }));
      };
      if (released) return answer();
      held.push(answer);
      if (held.length >= holdUntil) { released = true; held.splice(0).forEach((f) => f()); }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    get maxInFlight() { return state.maxInFlight; },
    close: async () => {
      for (const f of held.splice(0)) f();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The answer markers <<model|question|turn>> of a prompt, in order. */
export function markers(text: string): { model: string; qid: string; turn: number }[] {
  return [...text.matchAll(/<<(\w+)\|([^|>]+)\|(\d)>>/g)].map((m) => ({ model: m[1], qid: m[2], turn: Number(m[3]) }));
}
