// The human-evaluation server: node:http, static files from ./static, a small JSON API, and the
// vote file as its only state. Bad requests are answered 4xx and never reach the process.
import { createHmac, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { packageRoot } from '../../tensor/root.js';
import { defaultVoteFile, loadAnnotationSet } from './load.js';
import { PSEUDONYM_RE, loadOrCreateSalt, pseudonym } from './pseudonym.js';
import { uiStrings } from './strings.js';
import { nextTask, remainingQuestions, VoteIndex, type AnnotationItem, type TaskSpec } from './tasks.js';
import { TaskSealer } from './token.js';
import { openSkipLog, openVoteLog, type HumanVote, type Winner } from './votes.js';

export interface AnnotateOptions {
  benchDir: string;
  lang: string;
  /** At least two; votes record model_a/model_b in this order. */
  models: string[];
  /** The vote file (default <bench>/mt_bench_XX/human_judgment/votes.jsonl). */
  out?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Draws questions, pairs and sides; crypto-random unless given (tests seed it). */
  rand?: () => number;
  log?: (msg: string) => void;
}

export interface AnnotationServer {
  url: string;
  voteFile: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const MAX_BODY = 64 * 1024;
const CHOICES: Record<string, (aLeft: boolean) => Winner> = {
  A: (aLeft) => (aLeft ? 'model_a' : 'model_b'),
  B: (aLeft) => (aLeft ? 'model_b' : 'model_a'),
  tie: () => 'tie',
  bothbad: () => 'tie (bothbad)',
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATIC: Record<string, [file: string, type: string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

function readStatic(): Map<string, [Buffer, string]> {
  const dir = join(packageRoot(), 'src', 'mtbench', 'annotate', 'static');
  return new Map(Object.entries(STATIC).map(([route, [f, type]]) => [route, [readFileSync(join(dir, f)), type]]));
}

async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  // A JSON content type cannot be sent cross-origin without a preflight we never grant, so another
  // site open in the annotator's browser cannot post votes.
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'send Content-Type: application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    // An oversized body is still read (up to a bound, then the connection is dropped): closing a
    // socket with unread data resets it, and the client would never see the 413.
    if (size > 16 * MAX_BODY) req.destroy();
    else if (size <= MAX_BODY) chunks.push(c as Buffer);
  }
  if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the request body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'the request body must be a JSON object');
  return v as Record<string, unknown>;
}

function stringField(body: Record<string, unknown>, k: string, max = 4096): string {
  const v = body[k];
  if (typeof v !== 'string' || v.trim() === '' || v.length > max) throw new HttpError(400, `field "${k}" must be a non-empty string of at most ${max} characters`);
  return v;
}

function annotatorField(v: unknown): string {
  if (typeof v !== 'string' || !PSEUDONYM_RE.test(v)) throw new HttpError(400, 'unknown annotator: start again from the name form');
  return v;
}

export async function startAnnotationServer(opts: AnnotateOptions): Promise<AnnotationServer> {
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const lang = opts.lang.toUpperCase();
  const strings = uiStrings(lang);
  if (new Set(opts.models).size !== opts.models.length || opts.models.length < 2) {
    throw new Error(`--models: give at least two different models (got ${opts.models.join(',') || 'none'})`);
  }
  const host = opts.host ?? '127.0.0.1';
  const rand = opts.rand ?? (() => randomInt(2 ** 32) / 2 ** 32);
  const set = await loadAnnotationSet(opts.benchDir, lang, opts.models);
  for (const [m, ids] of set.missing) log(`note: ${m} has no answer to ${ids.length} question(s) (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''}); its pairs skip them`);
  const items = set.items;
  const byId = new Map<string, AnnotationItem>(items.map((it) => [String(it.questionId), it]));
  const voteFile = opts.out ?? defaultVoteFile(opts.benchDir, lang);
  const votes = openVoteLog(voteFile, log);
  let skips: ReturnType<typeof openSkipLog>;
  let salt: string;
  try {
    salt = loadOrCreateSalt(voteFile, votes.records.length > 0);
    skips = openSkipLog(voteFile + '.skips', log);
  } catch (e) {
    votes.close();
    throw e;
  }
  const sealer = new TaskSealer(salt);
  // Names this vote file to the page, which keeps one pseudonym per study: a pseudonym made with
  // another salt (another study served on the same port earlier) would not be this person's.
  const study = createHmac('sha256', salt).update('polytune annotate study').digest('hex').slice(0, 12);
  const index = new VoteIndex(votes.records);
  const skipped = new Map<string, Set<string>>();
  const skip = (judge: string, q: number | string) => {
    if (!skipped.has(judge)) skipped.set(judge, new Set());
    skipped.get(judge)!.add(String(q));
  };
  for (const s of skips.records) skip(s.judge, s.question_id);
  const statics = readStatic();

  const taskView = (judge: string, t: TaskSpec) => {
    const upto = <T>(xs: T[] | undefined) => xs?.slice(0, t.turn);
    const [left, right] = t.aLeft ? [t.modelA, t.modelB] : [t.modelB, t.modelA];
    return {
      token: sealer.seal({ judge, questionId: t.item.questionId, turn: t.turn, modelA: t.modelA, modelB: t.modelB, aLeft: t.aLeft }),
      questionId: t.item.questionId,
      category: t.item.category,
      turn: t.turn,
      turns: t.item.turns.length,
      questions: upto(t.item.turns),
      left: upto(t.item.answers.get(left)),
      right: upto(t.item.answers.get(right)),
      reference: upto(t.item.reference) ?? null,
    };
  };
  const progress = (judge: string) => ({ votes: index.votesBy(judge), remaining: remainingQuestions(items, opts.models, index, judge) });

  const api = async (req: IncomingMessage, path: string, query: URLSearchParams): Promise<unknown> => {
    if (req.method === 'GET' && path === '/api/config') {
      return { lang, strings, study, questions: items.length, models: opts.models.length };
    }
    if (req.method === 'GET' && path === '/api/next') {
      const judge = annotatorField(query.get('annotator'));
      const t = nextTask(items, opts.models, index, judge, skipped.get(judge) ?? new Set(), rand);
      return { ...progress(judge), task: t ? taskView(judge, t) : null };
    }
    if (req.method !== 'POST') throw new HttpError(req.method === 'GET' ? 404 : 405, `${req.method} ${path}: no such endpoint`);
    const body = await readJsonBody(req);
    if (path === '/api/session') {
      const judge = pseudonym(salt, stringField(body, 'name', 200));
      return { annotator: judge, ...progress(judge) };
    }
    if (path === '/api/vote' || path === '/api/skip') {
      const claim = sealer.open(stringField(body, 'token'));
      if (!claim || !byId.has(String(claim.questionId))) throw new HttpError(400, 'this task was not issued for this vote file; reload the page');
      if (body.annotator !== undefined && body.annotator !== claim.judge) throw new HttpError(400, 'the task belongs to another annotator; reload the page');
      const { judge, questionId, turn, modelA, modelB, aLeft } = claim;
      if (path === '/api/skip') {
        skips.append({ judge, question_id: questionId, turn, tstamp: Date.now() / 1000 });
        skip(judge, questionId);
        return { skipped: true, ...progress(judge) };
      }
      const choice = body.choice;
      if (typeof choice !== 'string' || !Object.hasOwn(CHOICES, choice)) throw new HttpError(400, `field "choice" must be one of ${Object.keys(CHOICES).join(', ')}`);
      if (index.has(judge, questionId, modelA, modelB, turn)) {
        // A retried request whose answer was lost: the vote is already on disk, so this one is a no-op.
        return { saved: false, duplicate: true, ...progress(judge) };
      }
      const vote: HumanVote = {
        question_id: questionId,
        model_a: modelA,
        model_b: modelB,
        winner: CHOICES[choice](aLeft),
        judge,
        turn,
        shown_left: aLeft ? modelA : modelB,
        shown_right: aLeft ? modelB : modelA,
        lang,
        tstamp: Date.now() / 1000,
      };
      votes.append(vote);
      index.add(vote);
      return { saved: true, ...progress(judge) };
    }
    throw new HttpError(404, `POST ${path}: no such endpoint`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(body);
    };
    try {
      // Bound to loopback, only loopback names are served: a web page cannot reach this server by
      // pointing a domain of its own at 127.0.0.1 (DNS rebinding).
      const hostName = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      if (LOOPBACK.has(host) && !LOOPBACK.has(hostName)) throw new HttpError(403, `Host "${req.headers.host ?? ''}" is not served`);
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname.startsWith('/api/')) {
        send(200, 'application/json; charset=utf-8', JSON.stringify(await api(req, url.pathname, url.searchParams)));
        return;
      }
      const file = statics.get(url.pathname);
      if (!file || req.method !== 'GET') throw new HttpError(404, `${url.pathname}: not found`);
      send(200, file[1], file[0]);
    } catch (e) {
      if (req.destroyed && !(e instanceof HttpError)) return; // the client went away mid-request
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500) log(`error: ${req.method} ${req.url}: ${(e as Error).stack ?? e}`);
      if (!res.headersSent) send(status, 'application/json; charset=utf-8', JSON.stringify({ error: (e as Error).message }));
      else res.destroy();
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      votes.close();
      skips.close();
      reject(e.code === 'EADDRINUSE' ? new Error(`port ${opts.port} on ${host} is in use: pass another --port (0 picks a free one)`) : e);
    });
    server.listen(opts.port ?? 0, host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  if (!LOOPBACK.has(host)) log(`warning: listening on ${host}, beyond this machine; anyone who can reach it can vote`);
  log(`annotating ${items.length} ${lang} questions, models ${opts.models.join(', ')}; ${votes.records.length} votes so far in ${voteFile}`);
  return {
    url,
    voteFile,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          votes.close();
          skips.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
