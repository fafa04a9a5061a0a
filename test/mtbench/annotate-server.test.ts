// The annotation server through its HTTP API: bad requests never hurt it, votes are durable and
// exact, annotators resume under the same pseudonym, a torn last line is recovered.
import { existsSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/data/random.js';
import { normalizeName, pseudonym } from '../../src/mtbench/annotate/pseudonym.js';
import { startAnnotationServer, type AnnotateOptions, type AnnotationServer } from '../../src/mtbench/annotate/server.js';
import { nextTask, VoteIndex, type AnnotationItem } from '../../src/mtbench/annotate/tasks.js';
import type { HumanVote } from '../../src/mtbench/annotate/votes.js';
import { answerMark, buildBench, tempDir } from '../report/fixture.js';

const MODELS = ['mono', 'mix'];
const tmp = tempDir('polytune-annotate-api-');
afterAll(tmp.cleanup);
// Generated questions (16: two per category): the API tests need no ../shared.
const fx = buildBench(join(tmp.dir, 'bench'), { langs: ['FR'], models: [...MODELS, 'third'], real: false, judgments: false });
let n = 0;
const start = (o: Partial<AnnotateOptions> = {}) =>
  startAnnotationServer({ benchDir: fx.benchDir, lang: 'FR', models: MODELS, out: join(tmp.dir, `votes-${n++}.jsonl`), port: 0, rand: seededRandom(n), log: () => {}, ...o });

async function api(s: AnnotationServer, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(path, s.url), body === undefined ? { headers } : { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}
// fetch cannot set Host; a page on another domain resolving to 127.0.0.1 would send its own.
const hostRequest = (s: AnnotationServer, host: string) =>
  new Promise<{ status: number }>((resolve, reject) => {
    const u = new URL('/api/config', s.url);
    request({ hostname: u.hostname, port: u.port, path: u.pathname, headers: { host } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode! });
    }).on('error', reject).end();
  });
const votesOf = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as HumanVote) : []);
const modelOf = (text: string) => MODELS.find((m) => text.startsWith(answerMark(m)))!;

describe('annotation server API', () => {
  it('answers bad requests with 4xx and keeps serving', async () => {
    const logged: string[] = [];
    const s = await start({ log: (m) => logged.push(m) });
    try {
      const { annotator } = (await api(s, '/api/session', { name: 'Marie' })).body;
      const { task } = (await api(s, `/api/next?annotator=${annotator}`)).body;
      const tampered = task.token.slice(0, -3) + (task.token.endsWith('AAA') ? 'BBB' : 'AAA');
      const cases: [string, Promise<{ status: number }>, number][] = [
        ['text/plain body', api(s, '/api/session', '{"name":"x"}', { 'content-type': 'text/plain' }), 415],
        ['invalid JSON', api(s, '/api/session', '{"name":'), 400],
        ['JSON array', api(s, '/api/session', '[]'), 400],
        ['empty name', api(s, '/api/session', { name: '  ' }), 400],
        ['unknown annotator', api(s, '/api/next?annotator=anno_zz'), 400],
        ['no annotator', api(s, '/api/next'), 400],
        ['garbage token', api(s, '/api/vote', { token: 'garbage', choice: 'A' }), 400],
        ['tampered token', api(s, '/api/vote', { token: tampered, choice: 'A' }), 400],
        ['unknown choice', api(s, '/api/vote', { token: task.token, choice: 'C' }), 400],
        ['token of another annotator', api(s, '/api/vote', { token: task.token, choice: 'A', annotator: 'anno_000000000000' }), 400],
        ['body over 64 KiB', api(s, '/api/session', { name: 'x'.repeat(70_000) }), 413],
        ['foreign Host header', hostRequest(s, 'evil.example'), 403],
        ['loopback Host header', hostRequest(s, 'localhost'), 200],
        ['unknown path', api(s, '/nope'), 404],
        ['unknown API', api(s, '/api/nope', {}), 404],
      ];
      for (const [what, p, status] of cases) expect((await p).status, what).toBe(status);
      const raw = await new Promise<string>((resolve) => {
        const c = connect(Number(new URL(s.url).port), '127.0.0.1', () => c.write('NOT HTTP AT ALL\r\n\r\n'));
        let got = '';
        c.on('data', (d) => (got += d));
        c.on('close', () => resolve(got));
      });
      expect(raw).toMatch(/^HTTP\/1\.1 400/);
      // A client that goes away in the middle of its body.
      await new Promise<void>((resolve) => {
        const c = connect(Number(new URL(s.url).port), '127.0.0.1', () => {
          c.write('POST /api/vote HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"token": "');
          setTimeout(() => c.destroy(), 50);
        });
        c.on('close', () => resolve());
      });
      expect(votesOf(s.voteFile)).toEqual([]);
      // Still alive, and the untouched task still votes.
      expect((await api(s, '/api/config')).body.lang).toBe('FR');
      expect((await api(s, '/api/vote', { token: task.token, choice: 'A' })).body.saved).toBe(true);
      expect(votesOf(s.voteFile)).toHaveLength(1);
      // Client mistakes are answered, not logged as server errors.
      expect(logged.filter((m) => m.startsWith('error'))).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('gives every question once, turn 1 then turn 2 of the same pair, until nothing is left', async () => {
    const s = await start();
    try {
      const { annotator } = (await api(s, '/api/session', { name: 'Jean' })).body;
      const shown: { q: string; turn: number; left: string; choice: string }[] = [];
      const choices = ['A', 'B', 'tie', 'bothbad'];
      for (let i = 0; i < 100; i++) {
        const r = (await api(s, `/api/next?annotator=${annotator}`)).body;
        if (!r.task) break;
        const t = r.task;
        expect(t.left.length).toBe(t.turn);
        expect(modelOf(t.left[t.turn - 1])).not.toBe(modelOf(t.right[t.turn - 1]));
        const choice = choices[i % 4];
        shown.push({ q: String(t.questionId), turn: t.turn, left: modelOf(t.left[t.turn - 1]), choice });
        expect((await api(s, '/api/vote', { token: t.token, choice })).status).toBe(200);
      }
      const qs = fx.questions.get('FR')!;
      expect(shown).toHaveLength(qs.length * 2);
      for (let i = 0; i < shown.length; i += 2) expect([shown[i].q, shown[i].turn, shown[i + 1].q, shown[i + 1].turn]).toEqual([shown[i].q, 1, shown[i].q, 2]);
      expect(new Set(shown.map((x) => x.q)).size).toBe(qs.length);
      const winner = (x: (typeof shown)[number]) =>
        x.choice === 'tie' ? 'tie' : x.choice === 'bothbad' ? 'tie (bothbad)' : (x.choice === 'A') === (x.left === 'mono') ? 'model_a' : 'model_b';
      expect(votesOf(s.voteFile).map((v) => [String(v.question_id), v.turn, v.shown_left, v.winner, v.model_a, v.model_b])).toEqual(
        shown.map((x) => [x.q, x.turn, x.left, winner(x), 'mono', 'mix']),
      );
      expect((await api(s, `/api/next?annotator=${annotator}`)).body).toMatchObject({ task: null, votes: qs.length * 2, remaining: 0 });
    } finally {
      await s.close();
    }
  });

  it('writes a vote once however often it is sent, and resumes annotators and skips after a restart', async () => {
    const out = join(tmp.dir, 'resume.jsonl');
    let s = await start({ out });
    const a = (await api(s, '/api/session', { name: '  Élodie   Martin ' })).body.annotator;
    const t1 = (await api(s, `/api/next?annotator=${a}`)).body.task;
    expect((await api(s, '/api/vote', { token: t1.token, choice: 'B' })).body.saved).toBe(true);
    expect((await api(s, '/api/vote', { token: t1.token, choice: 'A' })).body).toMatchObject({ saved: false, duplicate: true });
    const t2 = (await api(s, `/api/next?annotator=${a}`)).body.task;
    expect([t2.questionId, t2.turn]).toEqual([t1.questionId, 2]);
    const skipped = (await api(s, '/api/skip', { token: t2.token })).body;
    expect(skipped.skipped).toBe(true);
    const t3 = (await api(s, `/api/next?annotator=${a}`)).body.task;
    expect(t3.questionId).not.toBe(t1.questionId);
    await s.close();

    s = await start({ out });
    try {
      // Same person, other spelling of the name: same pseudonym; the skip holds; the old token still votes.
      const again = (await api(s, '/api/session', { name: 'élodie martin' })).body;
      expect(again).toMatchObject({ annotator: a, votes: 1 });
      expect((await api(s, '/api/session', { name: 'Elodie Martin' })).body.annotator).not.toBe(a);
      expect((await api(s, '/api/vote', { token: t3.token, choice: 'tie' })).body.saved).toBe(true);
      const next = (await api(s, `/api/next?annotator=${a}`)).body.task;
      expect([next.questionId, next.turn]).toEqual([t3.questionId, 2]);
      const votes = votesOf(out);
      expect(votes.map((v) => [v.question_id, v.turn, v.winner === 'tie'])).toEqual([[t1.questionId, 1, false], [t3.questionId, 1, true]]);
      expect(readFileSync(out, 'utf8')).not.toMatch(/lodie|martin/i);
      expect(statSync(out + '.salt').mode & 0o777).toBe(0o600);
      expect(a).toBe(pseudonym(readFileSync(out + '.salt', 'utf8').trim(), 'Élodie Martin'));
      expect(normalizeName('  Élodie   Martin ')).toBe(normalizeName('E\u0301lodie martin'));
    } finally {
      await s.close();
    }
  });

  it('cuts a torn last line, refuses a broken one elsewhere, and refuses votes whose salt is gone', async () => {
    const out = join(tmp.dir, 'torn.jsonl');
    const good = JSON.stringify({ question_id: '81_FR', model_a: 'mono', model_b: 'mix', winner: 'tie', judge: 'expert_0', turn: 1, tstamp: 1 });
    writeFileSync(out, good + '\n' + good.slice(0, 40));
    writeFileSync(out + '.salt', 'ab'.repeat(32) + '\n');
    const warnings: string[] = [];
    const s = await start({ out, log: (m) => warnings.push(m) });
    const a = (await api(s, '/api/session', { name: 'Zoé' })).body.annotator;
    const t = (await api(s, `/api/next?annotator=${a}`)).body.task;
    await api(s, '/api/vote', { token: t.token, choice: 'A' });
    await s.close();
    expect(warnings.join('\n')).toContain(`${out}:2: cut off a torn last line`);
    const lines = readFileSync(out, 'utf8').split('\n');
    expect(lines[0]).toBe(good);
    expect(JSON.parse(lines[1]).judge).toBe(a);
    expect(lines).toHaveLength(3);

    writeFileSync(out, good + '\n{"question_id": \n' + good + '\n');
    await expect(start({ out })).rejects.toThrow(`${out}:2: malformed JSON`);
    writeFileSync(out, good + '\n' + JSON.stringify({ ...JSON.parse(good), winner: 'model_c' }) + '\n');
    await expect(start({ out })).rejects.toThrow(`${out}:2: field "winner" must be one of`);
    writeFileSync(out, good + '\n');
    unlinkSync(out + '.salt');
    await expect(start({ out })).rejects.toThrow(/holds votes but its salt .* is missing/);
  });

  it('names what is wrong with the benchmark or the options', async () => {
    await expect(start({ models: ['mono', 'nosuch'] })).rejects.toThrow(/model_answer\/nosuch\.jsonl: no answer file for model "nosuch"/);
    await expect(start({ models: ['mono'] })).rejects.toThrow(/at least two different models/);
    await expect(start({ lang: 'PT' })).rejects.toThrow(/--lang PT: the annotation page speaks EN, DE, FR, IT, ES/);
    await expect(start({ lang: 'DE' })).rejects.toThrow(/mt_bench_DE\/question\.jsonl: no such file/);
    const s = await start();
    try {
      const port = Number(new URL(s.url).port);
      await expect(start({ port })).rejects.toThrow(`port ${port} on 127.0.0.1 is in use: pass another --port`);
    } finally {
      await s.close();
    }
  });
});

describe('task choice', () => {
  const item = (id: string, models: string[]): AnnotationItem => ({ questionId: id, category: 'writing', turns: ['q1', 'q2'], answers: new Map(models.map((m) => [m, ['a1', 'a2']])) });
  const vote = (judge: string, q: string, a: string, b: string, turn: number): HumanVote =>
    ({ question_id: q, model_a: a, model_b: b, winner: 'tie', judge, turn, shown_left: a, shown_right: b, lang: 'EN', tstamp: 0 });

  it('gives a question the pair other annotators judged there, so their votes overlap', () => {
    const models = ['a', 'b', 'c'];
    const idx = new VoteIndex([vote('anno_1', 'q1', 'a', 'c', 1), vote('anno_1', 'q1', 'a', 'c', 2), vote('anno_2', 'q1', 'a', 'c', 1)]);
    for (let seed = 0; seed < 20; seed++) {
      const t = nextTask([item('q1', models)], models, idx, 'anno_3', new Set(), seededRandom(seed))!;
      expect([t.modelA, t.modelB, t.turn]).toEqual(['a', 'c', 1]);
    }
    // anno_2 first finishes its open pair.
    const t = nextTask([item('q0', models), item('q1', models)], models, idx, 'anno_2', new Set(), seededRandom(1))!;
    expect([t.item.questionId, t.modelA, t.modelB, t.turn]).toEqual(['q1', 'a', 'c', 2]);
  });

  it('never offers a pair with a missing answer, and draws both sides', () => {
    const models = ['a', 'b', 'c'];
    const items = [item('q1', ['a', 'c']), item('q2', ['b'])];
    const sides = new Set<boolean>();
    for (let seed = 0; seed < 20; seed++) {
      const t = nextTask(items, models, new VoteIndex([]), 'anno_1', new Set(), seededRandom(seed))!;
      expect([t.item.questionId, t.modelA, t.modelB]).toEqual(['q1', 'a', 'c']);
      sides.add(t.aLeft);
    }
    expect(sides).toEqual(new Set([true, false]));
    expect(nextTask(items, models, new VoteIndex([]), 'anno_1', new Set(['q1']), seededRandom(0))).toBeUndefined();
  });
});
