import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runJudge, summarizeResults, type PairJudgment, type SingleJudgment } from '../../src/mtbench/index.js';
import { answerText, writeFixtureBench } from './helpers/fixture-bench.js';
import { markers, startScriptedJudge, type ScriptedJudge, type ScriptedReply, type SeenRequest } from './helpers/scripted-judge.js';

const root = mkdtempSync(join(tmpdir(), 'polytune-judge-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let servers: ScriptedJudge[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
async function judgeServer(script: (r: SeenRequest, before: number) => ScriptedReply, holdUntil = 0) {
  const s = await startScriptedJudge(script, holdUntil);
  servers.push(s);
  return s;
}
let n = 0;
const freshBench = (models?: string[], bothBad?: boolean) => {
  const dir = join(root, `b${n++}`);
  writeFixtureBench(dir, 'XX', models, bothBad);
  return dir;
};
const lines = <T>(f: string): T[] => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as T);
const quiet = { progress: false, onWarning: () => {}, retryBaseMs: 1 } as const;
const userOf = (r: SeenRequest) => r.body.messages.find((m) => m.role === 'user')!.content;

/** Single grades by model, question and turn; anything not listed is "[[8]]" for alpha and "[[5]]" for beta. */
const singleScript: Record<string, string> = {
  'alpha|82_XX|2': 'Decent. Rating: [7]',
  'alpha|91_XX|1': 'I cannot rate this.',
  'beta|111_XX|1': 'Rating: [[4.5]] (the format example said [[5]])',
};
function singleReply(r: SeenRequest): ScriptedReply {
  const ms = markers(userOf(r));
  const last = ms[ms.length - 1]; // the turn being judged is the last answer shown
  const k = `${last.model}|${last.qid}|${last.turn}`;
  return { content: singleScript[k] ?? (last.model === 'alpha' ? 'Good. Rating: [[8]]' : 'Fine. Rating: [[5]]') };
}

/**
 * The "true" outcome of each pairwise game: a model, tie, bothbad, or a judge that always picks the
 * first / second answer shown (position bias), or gives no verdict.
 */
const pairScript: Record<string, string> = {
  '81_XX|1': 'alpha', '81_XX|2': 'beta', '82_XX|1': 'tie', '82_XX|2': 'bothbad',
  '111_XX|1': 'alpha', '111_XX|2': 'first', '91_XX|1': 'second', '91_XX|2': 'none',
};
function pairReply(r: SeenRequest): ScriptedReply {
  const ms = markers(userOf(r));
  const a = ms[0].model;
  const turn = ms.length > 2 ? 2 : 1;
  const want = pairScript[`${ms[0].qid}|${turn}`];
  const v = want === 'first' ? 'A' : want === 'second' ? 'B' : want === 'tie' ? 'C' : want === 'bothbad' ? 'D' : want === 'none' ? null : want === a ? 'A' : 'B';
  return { content: v ? `Some reasoning. Final verdict: [[${v}]]` : 'Both answers have merits.' };
}

describe('mtbench judge against a scripted OpenAI-compatible server', () => {
  it('single: FastChat prompts, request parameters, scores parsed, -1 counted, then nothing left to do', async () => {
    const bench = freshBench();
    const s = await judgeServer(singleReply);
    const r = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha', 'beta'], judgeUrl: s.url, judgeModel: 'judge-x', apiKey: 'sk-test-123', ...quiet });
    const out = join(bench, 'mt_bench_XX/model_judgment/judge-x_single.jsonl');
    expect(r).toEqual({ outFile: out, planned: 16, skipped: 0, written: 16, invalidScores: 1, errorVerdicts: 0, failed: [] });
    expect(s.requests).toHaveLength(16);
    for (const q of s.requests) {
      expect(q.url).toBe('/v1/chat/completions');
      expect(q.authorization).toBe('Bearer sk-test-123');
      expect(q.body).toMatchObject({ model: 'judge-x', temperature: 0, max_tokens: 2048, n: 1 });
      expect(q.body.messages.map((m) => m.role)).toEqual(['system', 'user']);
    }
    const recs = lines<SingleJudgment>(out);
    expect(Object.keys(recs[0])).toEqual(['question_id', 'model', 'judge', 'user_prompt', 'judgment', 'score', 'turn', 'tstamp']);
    const score = (m: string, q: string, t: number) => recs.find((x) => x.model === m && x.question_id === q && x.turn === t)!;
    expect(score('alpha', '82_XX', 2).score).toBe(7);
    expect(score('alpha', '91_XX', 1).score).toBe(-1);
    expect(score('beta', '111_XX', 1).score).toBe(4.5);
    expect(score('beta', '81_XX', 2).score).toBe(5);
    // Prompt choice and filling, written out by hand from the fixture templates.
    expect(score('alpha', '81_XX', 1).judge).toEqual(['judge-x', 'single-v1']);
    expect(score('alpha', '81_XX', 1).user_prompt).toBe(`Rate {1-10} as "[[rating]]".\nQ: Write a poem.\nA: ${answerText('alpha', '81_XX', 1)}`);
    expect(score('alpha', '111_XX', 1).judge).toEqual(['judge-x', 'single-math-v1']);
    expect(score('alpha', '111_XX', 1).user_prompt).toBe(`Rate against the reference.\nQ: What is 2+3?\nREF: 5\nA: ${answerText('alpha', '111_XX', 1)}`);
    expect(score('beta', '111_XX', 2).judge).toEqual(['judge-x', 'single-math-v1-multi-turn']);
    expect(score('beta', '111_XX', 2).user_prompt).toBe(
      'REF\nUser: What is 2+3?\nRef: 5\nUser: And times 4?\nRef: 20\n/REF\n' +
      `<Assistant>\nUser: What is 2+3?\nAssistant: ${answerText('beta', '111_XX', 1)}\nUser: And times 4?\nAssistant: ${answerText('beta', '111_XX', 2)}\n</Assistant>`,
    );
    expect(score('beta', '82_XX', 2).judge).toEqual(['judge-x', 'single-v1-multi-turn']);
    const sys = s.requests.find((q) => userOf(q) === score('beta', '82_XX', 2).user_prompt)!.body.messages[0].content;
    expect(sys).toBe('Rate the second answer as "[[rating]]".');
    expect(readFileSync(out, 'utf8')).not.toContain('sk-test-123');

    const again = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha', 'beta'], judgeUrl: s.url, judgeModel: 'judge-x', ...quiet });
    expect(again).toMatchObject({ planned: 16, skipped: 16, written: 0 });
    expect(s.requests).toHaveLength(16);

    const sum = await summarizeResults(bench);
    const alpha = sum.single.find((x) => x.model === 'alpha' && x.category === 'all')!;
    expect(alpha.turn1).toEqual({ mean: 8, n: 3, invalid: 1 });
    expect(alpha.turn2).toEqual({ mean: 31 / 4, n: 4, invalid: 0 });
    expect(alpha.average).toEqual({ mean: 55 / 7, n: 7, invalid: 1 });
    const betaMath = sum.single.find((x) => x.model === 'beta' && x.category === 'math')!;
    expect(betaMath.turn1.mean).toBe(4.5);
    expect(betaMath.average.mean).toBe(4.75);
  });

  it('pairwise: both orders, exact win/loss/tie/both-bad/inconsistent/error counts, position bias, win rates', async () => {
    const bench = freshBench();
    const s = await judgeServer(pairReply, 3);
    const r = await runJudge({ benchDir: bench, lang: 'XX', mode: 'pairwise', models: ['alpha', 'beta'], judgeUrl: s.url, parallel: 3, apiKey: 'k', ...quiet });
    expect(r).toMatchObject({ planned: 8, skipped: 0, written: 8, errorVerdicts: 2, failed: [] });
    expect(s.requests).toHaveLength(16);
    expect(s.maxInFlight).toBe(3);
    const recs = lines<PairJudgment>(r.outFile);
    expect(r.outFile.endsWith('mt_bench_XX/model_judgment/gpt-4_pair.jsonl')).toBe(true);
    expect(Object.keys(recs[0])).toEqual(['question_id', 'model_1', 'model_2', 'g1_winner', 'g2_winner', 'judge', 'g1_user_prompt', 'g1_judgment', 'g2_user_prompt', 'g2_judgment', 'turn', 'tstamp']);
    const game = (q: string, t: number) => recs.find((x) => x.question_id === q && x.turn === t)!;
    expect(recs.every((x) => x.model_1 === 'alpha' && x.model_2 === 'beta')).toBe(true);
    expect([game('81_XX', 1).g1_winner, game('81_XX', 1).g2_winner]).toEqual(['model_1', 'model_1']);
    expect([game('81_XX', 2).g1_winner, game('81_XX', 2).g2_winner]).toEqual(['model_2', 'model_2']);
    expect([game('82_XX', 1).g1_winner, game('82_XX', 1).g2_winner]).toEqual(['tie', 'tie']);
    expect([game('82_XX', 2).g1_winner, game('82_XX', 2).g2_winner]).toEqual(['tie (bothbad)', 'tie (bothbad)']);
    expect([game('111_XX', 2).g1_winner, game('111_XX', 2).g2_winner]).toEqual(['model_1', 'model_2']);
    expect([game('91_XX', 1).g1_winner, game('91_XX', 1).g2_winner]).toEqual(['model_2', 'model_1']);
    expect([game('91_XX', 2).g1_winner, game('91_XX', 2).g2_winner]).toEqual(['error', 'error']);
    // g1 shows model_1 as A, g2 swaps them.
    const g = game('111_XX', 1);
    expect(g.judge).toEqual(['gpt-4', 'pair-math-v1']);
    expect(g.g1_user_prompt).toBe(`Q: What is 2+3?\nREF: 5\nA: ${answerText('alpha', '111_XX', 1)}\nB: ${answerText('beta', '111_XX', 1)}`);
    expect(g.g2_user_prompt).toBe(`Q: What is 2+3?\nREF: 5\nA: ${answerText('beta', '111_XX', 1)}\nB: ${answerText('alpha', '111_XX', 1)}`);
    expect(game('82_XX', 2).judge).toEqual(['gpt-4', 'pair-v2-multi-turn']);

    const sum = await summarizeResults(bench);
    const row = (model: string, opponent = 'all', category = 'all', turn: 1 | 2 | 'all' = 'all') =>
      sum.pairwise.find((x) => x.model === model && x.opponent === opponent && x.category === category && x.turn === turn);
    expect(row('alpha')).toMatchObject({ win: 2, loss: 1, tie: 1, bothBad: 1, inconsistent: 2, errors: 1, total: 7, winRate: 2 / 7, lossRate: 1 / 7, adjustedWinRate: 3.5 / 7 });
    expect(row('beta', 'alpha')).toMatchObject({ win: 1, loss: 2, tie: 1, bothBad: 1, inconsistent: 2, errors: 1, total: 7, adjustedWinRate: 2.5 / 7 });
    expect(row('alpha', 'beta', 'writing', 2)).toMatchObject({ win: 0, loss: 1, tie: 0, bothBad: 1, total: 2, adjustedWinRate: 0 });
    const bias = (category: string) => sum.positionBias.find((x) => x.category === category);
    expect(bias('all')).toMatchObject({ games: 7, consistent: 5, inconsistent: 2, biasedFirst: 1, biasedSecond: 1, errors: 1, inconsistentRate: 2 / 7 });
    expect(bias('writing')).toMatchObject({ games: 4, consistent: 4, inconsistent: 0 });
    expect(bias('math')).toMatchObject({ games: 2, consistent: 1, inconsistent: 1, biasedFirst: 1, biasedSecond: 0 });
    expect(bias('roleplay')).toMatchObject({ games: 1, inconsistent: 1, biasedSecond: 1, errors: 1 });
  });

  it('all pairs of three models, and a baseline; [[D]] is an error verdict where the prompt does not offer it', async () => {
    const bench = freshBench(['alpha', 'beta', 'gamma'], false);
    const s = await judgeServer(() => ({ content: 'Both are bad: [[D]]' }));
    const all = await runJudge({ benchDir: bench, lang: 'XX', mode: 'pairwise', models: ['alpha', 'beta', 'gamma'], judgeUrl: s.url, out: join(bench, 'all.jsonl'), ...quiet });
    expect(all).toMatchObject({ planned: 24, written: 24, errorVerdicts: 48 });
    const pairs = lines<PairJudgment>(join(bench, 'all.jsonl')).map((x) => `${x.model_1}/${x.model_2}`);
    expect(new Set(pairs)).toEqual(new Set(['alpha/beta', 'alpha/gamma', 'beta/gamma']));
    const base = await runJudge({ benchDir: bench, lang: 'XX', mode: 'pairwise', models: ['alpha', 'beta', 'gamma'], baseline: 'gamma', judgeUrl: s.url, out: join(bench, 'base.jsonl'), ...quiet });
    expect(base.planned).toBe(16);
    expect(new Set(lines<PairJudgment>(join(bench, 'base.jsonl')).map((x) => `${x.model_1}/${x.model_2}`))).toEqual(new Set(['alpha/gamma', 'beta/gamma']));
  });

  it('retries 429 (with Retry-After) and 5xx; a null content is a counted -1', async () => {
    const bench = freshBench(['alpha']);
    const s = await judgeServer((r, before) => {
      const m = markers(userOf(r)).pop()!;
      if (m.qid === '81_XX' && before === 0) return { status: 429, retryAfter: '0' };
      if (m.qid === '82_XX' && before < 2) return { status: 503 };
      if (m.qid === '91_XX' && m.turn === 2) return { content: null };
      return { content: '[[6]]' };
    });
    const r = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: s.url, ...quiet });
    expect(r).toMatchObject({ written: 8, invalidScores: 1, failed: [] });
    expect(s.requests).toHaveLength(8 + 2 + 4);
  });

  it('a server that times out: the run stops with a named error, keeps what finished, and a rerun does only the rest', async () => {
    const bench = freshBench(['alpha']);
    const bad = await judgeServer((r) => (markers(userOf(r)).pop()!.turn === 2 ? { hang: true } : { content: '[[9]]' }));
    const err = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: bad.url, timeoutMs: 150, maxRetries: 1, ...quiet }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(new RegExp(`${bad.url.replace(/[.]/g, '\\.')}/chat/completions: no reply within 150 ms \\(gave up after 2 attempts\\)`));
    expect((err as Error).message).toContain('rerun the same command to continue');
    const out = join(bench, 'mt_bench_XX/model_judgment/gpt-4_single.jsonl');
    const kept = lines<SingleJudgment>(out);
    expect(kept.map((x) => [x.question_id, x.turn, x.score])).toEqual([['81_XX', 1, 9], ['82_XX', 1, 9], ['91_XX', 1, 9], ['111_XX', 1, 9]]);
    expect(readdirSync(join(bench, 'mt_bench_XX/model_judgment')).filter((f) => f.endsWith('.lock'))).toEqual([]);

    const good = await judgeServer(() => ({ content: '[[3]]' }));
    const r = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: good.url, ...quiet });
    expect(r).toMatchObject({ planned: 8, skipped: 4, written: 4 });
    expect(good.requests.every((q) => markers(userOf(q)).pop()!.turn === 2)).toBe(true);
    expect(lines<SingleJudgment>(out).map((x) => x.score)).toEqual([9, 9, 9, 9, 3, 3, 3, 3]);
  });

  it('an abort (Ctrl-C) stops after the judgments in flight, all of them written; a rerun finishes', async () => {
    const bench = freshBench(['alpha']);
    const stop = new AbortController();
    const s = await judgeServer(() => {
      stop.abort(); // while the third request is in flight
      return { content: '[[2]]' };
    }, 3);
    const err = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: s.url, parallel: 3, signal: stop.signal, ...quiet }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^interrupted\n3 judgment\(s\) written/);
    const out = join(bench, 'mt_bench_XX/model_judgment/gpt-4_single.jsonl');
    expect(lines(out)).toHaveLength(3);
    const r = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: s.url, ...quiet });
    expect(r).toMatchObject({ skipped: 3, written: 5 });
  });

  it('nothing listening at --judge-url fails at once, naming the URL', async () => {
    const bench = freshBench(['alpha']);
    const s = await judgeServer(() => ({ content: '[[1]]' }));
    const url = s.url;
    await s.close();
    servers = [];
    const err = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: url, ...quiet, retryBaseMs: 60_000 }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(new RegExp(`^${url.replace(/[.]/g, '\\.')}/chat/completions: fetch failed \\(.*ECONNREFUSED`));
  });

  it('a half-judged pairwise game keeps its finished order: only the failed order is asked again', async () => {
    const bench = freshBench();
    let fail = true;
    const s = await judgeServer((r) => {
      const ms = markers(userOf(r));
      // The order with beta shown first fails for good (400 is not retried) on the first run.
      if (fail && ms[0].qid === '81_XX' && ms.length === 2 && ms[0].model === 'beta') return { status: 400, body: '{"error":"bad"}' };
      return { content: '[[A]]' };
    });
    const err = await runJudge({ benchDir: bench, lang: 'XX', mode: 'pairwise', models: ['alpha', 'beta'], judgeUrl: s.url, ...quiet }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/HTTP 400/);
    const firstRun = s.requests.length;
    fail = false;
    const r = await runJudge({ benchDir: bench, lang: 'XX', mode: 'pairwise', models: ['alpha', 'beta'], judgeUrl: s.url, ...quiet });
    const asked = s.requests.slice(firstRun).map((q) => markers(userOf(q)));
    const g81 = asked.filter((ms) => ms[0].qid === '81_XX' && ms.length === 2);
    expect(g81.map((ms) => ms[0].model)).toEqual(['beta']);
    expect(r.written + r.skipped).toBe(8);
    expect(existsSync(join(bench, 'mt_bench_XX/model_judgment/.gpt-4_pair.jsonl.half.jsonl'))).toBe(false);
    const rec = lines<PairJudgment>(r.outFile).find((x) => x.question_id === '81_XX' && x.turn === 1)!;
    expect([rec.g1_winner, rec.g2_winner]).toEqual(['model_1', 'model_2']);
  });

  it('a torn last line (a crash mid-write) is dropped with a warning and judged again; a torn middle line is an error', async () => {
    const bench = freshBench(['alpha']);
    const s = await judgeServer(() => ({ content: '[[4]]' }));
    const r1 = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: s.url, ...quiet });
    const text = readFileSync(r1.outFile, 'utf8');
    const keep = text.split('\n').slice(0, 7).join('\n') + '\n';
    writeFileSync(r1.outFile, keep + '{"question_id": "91_XX", "model": "al');
    const warnings: string[] = [];
    const r2 = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: s.url, ...quiet, onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([`${r1.outFile}:8: dropped an incomplete last line (a write cut short); that judgment is made again`]);
    expect(r2).toMatchObject({ skipped: 7, written: 1 });
    expect(lines(r1.outFile)).toHaveLength(8);
    appendFileSync(r1.outFile, 'garbage\n');
    await expect(runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: s.url, ...quiet })).rejects.toThrow(`${r1.outFile}:9: malformed JSON`);
  });

  it('--first-n judges the first questions only; a judge "org/model" writes org_model_single.jsonl, which show reads even mid-append', async () => {
    const bench = freshBench(['alpha', 'alpha']);
    const s = await judgeServer(() => ({ content: '[[6]]' }));
    const r = await runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha', 'alpha'], firstN: 2, judgeUrl: s.url, judgeModel: 'org/model', ...quiet });
    expect(r).toMatchObject({ planned: 4, written: 4 });
    expect(r.outFile).toBe(join(bench, 'mt_bench_XX/model_judgment/org_model_single.jsonl'));
    expect(new Set(lines<SingleJudgment>(r.outFile).map((x) => x.question_id))).toEqual(new Set(['81_XX', '82_XX']));
    appendFileSync(r.outFile, '{"question_id": "111_XX", "mod');
    const sum = await summarizeResults(bench);
    expect(sum.single.find((x) => x.category === 'all')).toMatchObject({ judge: 'org/model', model: 'alpha', average: { mean: 6, n: 4, invalid: 0 } });
  });

  it('bad inputs are named before any request: a missing answer, garbage judge prompts, a missing prompt, a missing reference', async () => {
    const s = await judgeServer(() => ({ content: '[[5]]' }));
    const opts = (bench: string) => ({ benchDir: bench, lang: 'XX', mode: 'single' as const, models: ['alpha'], judgeUrl: s.url, ...quiet });
    const b1 = freshBench(['alpha']);
    const ans = join(b1, 'mt_bench_XX/model_answer/alpha.jsonl');
    writeFileSync(ans, readFileSync(ans, 'utf8').split('\n').filter((l) => !l.includes('"111_XX"')).join('\n'));
    await expect(runJudge(opts(b1))).rejects.toThrow(`${ans}: no answer to question "111_XX" (${join(b1, 'mt_bench_XX/question.jsonl')}:3)`);
    await expect(runJudge({ ...opts(b1), models: ['nobody'] })).rejects.toThrow(`${join(b1, 'mt_bench_XX/model_answer/nobody.jsonl')}: no answer file for model "nobody"`);

    const b2 = freshBench(['alpha']);
    const jp = join(b2, 'mt_bench_XX/judge_prompts.jsonl');
    const good = readFileSync(jp, 'utf8').split('\n');
    writeFileSync(jp, [good[0], '{"name": "single-v1", "type": "single", garbage', ...good.slice(1)].join('\n'));
    await expect(runJudge(opts(b2))).rejects.toThrow(`${jp}:2: not a JSON judge prompt record`);
    writeFileSync(jp, good.filter((l) => !l.includes('"single-math-v1-multi-turn"')).join('\n'));
    await expect(runJudge(opts(b2))).rejects.toThrow(`${jp}: no judge prompt "single-math-v1-multi-turn" (needed for math questions, turn 2)`);
    writeFileSync(jp, good.join('\n').replace('Q: {question}\\nA: {answer}', 'Q: {question}\\nA: {answr}'));
    await expect(runJudge(opts(b2))).rejects.toThrow(/judge_prompts\.jsonl:5: prompt_template needs \{answr\}/);

    const b3 = freshBench(['alpha']);
    writeFileSync(join(b3, 'mt_bench_XX/reference_answer/gpt-4.jsonl'), '');
    await expect(runJudge(opts(b3))).rejects.toThrow(/gpt-4\.jsonl:1: the file is empty/);
    expect(s.requests).toHaveLength(0);
  });

  it('refuses the hosted default without OPENAI_API_KEY, and a second run on the same output file', async () => {
    const bench = freshBench(['alpha']);
    const saved = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY;
    try {
      await expect(runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], ...quiet })).rejects.toThrow('OPENAI_API_KEY is not set');
    } finally {
      if (saved !== undefined) process.env.OPENAI_API_KEY = saved;
    }
    const s = await judgeServer(() => ({ hang: true }));
    const first = runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: s.url, timeoutMs: 300, maxRetries: 0, ...quiet }).catch((e: Error) => e);
    await new Promise((r) => setImmediate(r));
    while (s.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await expect(runJudge({ benchDir: bench, lang: 'XX', mode: 'single', models: ['alpha'], judgeUrl: s.url, ...quiet })).rejects.toThrow(/another judge run \(pid \d+\) is writing this file/);
    expect(await first).toBeInstanceOf(Error);
  });
});

const mtxDE = resolve(__dirname, '../../../shared/data/mt-bench-x/mt_bench_DE');
describe.skipIf(!existsSync(mtxDE))(`the real German files${existsSync(mtxDE) ? '' : ` (skipped: ${mtxDE} is absent)`}`, () => {
  it('pairwise over all 80 real questions with the real judge_prompts_v2.jsonl (stray bytes recovered) and references: [[D]] is both bad', async () => {
    const bench = join(root, 'real'), dir = join(bench, 'mt_bench_DE');
    mkdirSync(join(dir, 'model_answer'), { recursive: true });
    cpSync(join(mtxDE, 'question.jsonl'), join(dir, 'question.jsonl'));
    cpSync(join(mtxDE, 'reference_answer'), join(dir, 'reference_answer'), { recursive: true });
    const ids = readFileSync(join(dir, 'question.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { question_id: string }).question_id);
    for (const m of ['alpha', 'beta']) {
      writeFileSync(join(dir, 'model_answer', `${m}.jsonl`), ids.map((id) => JSON.stringify({ question_id: id, model_id: m, choices: [{ index: 0, turns: [answerText(m, id, 1), answerText(m, id, 2)] }] })).join('\n') + '\n');
    }
    // Math, reasoning and coding (ids 101-130) both bad; the rest: alpha wins.
    const s = await judgeServer((r) => {
      const ms = markers(userOf(r));
      const n = Number(ms[0].qid.split('_')[0]);
      return { content: n >= 101 && n <= 130 ? 'Beide falsch. [[D]]' : ms[0].model === 'alpha' ? '[[A]]' : '[[B]]' };
    });
    const warnings: string[] = [];
    const r = await runJudge({ benchDir: bench, lang: 'DE', mode: 'pairwise', models: ['alpha', 'beta'], judgeUrl: s.url, judgePrompts: join(mtxDE, 'judge_prompts_v2.jsonl'), parallel: 4, ...quiet, onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([`${join(mtxDE, 'judge_prompts_v2.jsonl')}:1: ignored 10 stray characters "gewählt un" before the record`]);
    expect(r).toMatchObject({ planned: 160, written: 160, errorVerdicts: 0 });
    const recs = lines<PairJudgment>(r.outFile);
    const math = recs.find((x) => x.question_id === '111_DE' && x.turn === 2)!;
    expect(math.judge).toEqual(['gpt-4', 'pair-math-v1-multi-turn']);
    expect(math.g1_user_prompt).toContain('### Referenzantwort:');
    const sum = await summarizeResults(bench);
    expect(sum.pairwise.find((x) => x.model === 'alpha' && x.opponent === 'all' && x.category === 'all' && x.turn === 'all')).toMatchObject({ win: 100, loss: 0, bothBad: 60, total: 160, winRate: 100 / 160, adjustedWinRate: 100 / 160 });
    expect(sum.positionBias.find((x) => x.category === 'all')).toMatchObject({ games: 160, consistent: 160, inconsistent: 0 });
  });
});

