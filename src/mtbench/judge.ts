import { appendFileSync, closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SingleBar } from 'cli-progress';
import { readJsonRecords } from '../data/jsonRecords.js';
import { readMtBenchAnswers, readMtBenchQuestions, type MtBenchAnswer, type MtBenchQuestion } from '../data/mtBench.js';
import { langDir, readJudgmentLines } from './bench-files.js';
import { ChatClient, JudgeRequestError, type ChatMessage } from './client.js';
import { parseScore, parseVerdict, type OrderVerdict } from './parse.js';
import { NEED_REF_CATS, formatPython, promptName, readJudgePrompts } from './prompts.js';
import type { JudgePrompt, JudgeRunOptions, JudgeRunResult, PairJudgment, PairWinner, SingleJudgment } from './types.js';
import { processAlive } from '../util/process.js';

export const DEFAULT_JUDGE_URL = 'https://api.openai.com/v1';

/** One record to produce: a single grade, or a pairwise game (both orders). */
interface Match {
  key: string;
  question: MtBenchQuestion;
  turn: 1 | 2;
  prompt: JudgePrompt;
  model: string;
  /** Pairwise only: model_2 (model_1 is `model`). */
  model2?: string;
}

/** Resume key of a record: a pairwise game is the same whichever model is model_1. */
export function recordKey(qid: string | number, turn: number, judgeModel: string, promptName: string, a: string, b?: string): string {
  const models = b === undefined ? [a] : [a, b].sort();
  return JSON.stringify([String(qid), turn, judgeModel, promptName, ...models]);
}

/** Lines of question.jsonl by id, for error messages. */
async function questionLines(file: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const { value, line } of readJsonRecords(file)) out.set(String(value.question_id), line);
  return out;
}

/** Appends whole lines and fsyncs each, so a finished judgment survives a crash; one writer per file. */
class LineAppender {
  private fd: number;
  constructor(readonly file: string) {
    this.fd = openSync(file, 'a');
  }
  append(record: unknown): void {
    const buf = Buffer.from(JSON.stringify(record) + '\n', 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off);
    fsyncSync(this.fd);
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** An exclusive lock file beside the output: two runs appending to one file would judge everything twice. */
function takeLock(out: string): () => void {
  const lock = join(dirname(out), `.${basename(out)}.lock`);
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => { try { unlinkSync(lock); } catch { /* already gone */ } };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(lock, 'utf8'));
      if (processAlive(pid)) throw new Error(`${out}: another judge run (pid ${pid}) is writing this file; lock ${lock}`);
      unlinkSync(lock); // stale: its process is gone
    }
  }
  throw new Error(`${out}: cannot take the lock`);
}

function toWinner(v: OrderVerdict, aIs: 'model_1' | 'model_2'): PairWinner {
  if (v === 'A') return aIs;
  if (v === 'B') return aIs === 'model_1' ? 'model_2' : 'model_1';
  if (v === 'tie') return 'tie';
  if (v === 'bothbad') return 'tie (bothbad)';
  return 'error';
}

/** The user prompt of a match, filled as FastChat's run_judge_single / run_judge_pair do. */
export function buildUserPrompt(m: { question: MtBenchQuestion; turn: 1 | 2; prompt: JudgePrompt }, answerA: MtBenchAnswer, answerB: MtBenchAnswer | undefined, ref: MtBenchAnswer | undefined): string {
  const q = m.question;
  const vars: Record<string, string> = {};
  if (ref) {
    vars.ref_answer_1 = ref.turns[0];
    if (m.turn === 2) vars.ref_answer_2 = ref.turns[1];
  }
  if (m.turn === 2) {
    Object.assign(vars, { question_1: q.turns[0], question_2: q.turns[1] });
    if (answerB) Object.assign(vars, { answer_a_1: answerA.turns[0], answer_a_2: answerA.turns[1], answer_b_1: answerB.turns[0], answer_b_2: answerB.turns[1] });
    else Object.assign(vars, { answer_1: answerA.turns[0], answer_2: answerA.turns[1] });
  } else {
    vars.question = q.turns[0];
    if (answerB) Object.assign(vars, { answer_a: answerA.turns[0], answer_b: answerB.turns[0] });
    else vars.answer = answerA.turns[0];
  }
  return formatPython(m.prompt.prompt_template, vars, m.prompt.source);
}

/** The messages sent: FastChat's OpenAI conversation, system prompt then the user prompt. */
export function judgeMessages(prompt: JudgePrompt, userPrompt: string): ChatMessage[] {
  return [
    { role: 'system', content: prompt.system_prompt },
    { role: 'user', content: userPrompt },
  ];
}

/** Half-finished pairwise games (one order judged), kept so a failure of the other order loses nothing. */
class HalfGames {
  private readonly done = new Map<string, string>();
  private appender?: LineAppender;
  constructor(readonly file: string) {
    if (!existsSync(file)) return;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      try {
        const r = JSON.parse(line) as { judge: unknown; user_prompt: string; judgment: string };
        if (typeof r.user_prompt === 'string' && typeof r.judgment === 'string') this.done.set(JSON.stringify([r.judge, r.user_prompt]), r.judgment);
      } catch { /* a torn line: that half is simply judged again */ }
    }
  }
  /** A judgment already made by this judge and prompt for exactly this prompt text. */
  get(judge: [string, string], userPrompt: string): string | undefined {
    return this.done.get(JSON.stringify([judge, userPrompt]));
  }
  put(judge: [string, string], userPrompt: string, judgment: string): void {
    this.appender ??= new LineAppender(this.file);
    this.appender.append({ judge, user_prompt: userPrompt, judgment });
    this.done.set(JSON.stringify([judge, userPrompt]), judgment);
  }
  finish(removeFile: boolean): void {
    this.appender?.close();
    this.appender = undefined;
    if (removeFile && existsSync(this.file)) unlinkSync(this.file);
  }
}

/** A counting semaphore for the request limit. */
class Limit {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await f();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/**
 * `mtbench judge`: grades answers (single) or compares them in both orders (pairwise) with an
 * OpenAI-compatible judge, FastChat llm_judge's prompts, parsing and record format. Finished
 * judgments already in the output file are skipped; each new one is appended (and fsynced) as soon
 * as it is done. Requests that still fail after the retries are reported in `failed` (nothing is
 * written for them, so a rerun judges them); a non-retriable error (bad key, bad model name) or a
 * run of consecutive failures stops the run after the requests in flight.
 */
/**
 * The key sent to the judge. OPENAI_API_KEY goes to OpenAI only: users keep it exported, and
 * pointing the judge at a local or third-party server must not hand it over. Another endpoint's
 * key comes from the variable named by `apiKeyEnv`; no key ever travels over plain http to a host
 * off this machine.
 */
export function judgeApiKey(judgeUrl: string, opts: Pick<JudgeRunOptions, 'apiKey' | 'apiKeyEnv'>): string | undefined {
  let url: URL;
  try {
    url = new URL(judgeUrl);
  } catch {
    throw new Error(`--judge-url ${JSON.stringify(judgeUrl)} is not a URL`);
  }
  const key = opts.apiKey ?? (opts.apiKeyEnv ? process.env[opts.apiKeyEnv] : url.hostname === 'api.openai.com' ? process.env.OPENAI_API_KEY : undefined);
  if (opts.apiKeyEnv && !key) throw new Error(`${opts.apiKeyEnv} is not set (named by --api-key-env)`);
  const loopback = ['localhost', '127.0.0.1', '[::1]', '::1'].includes(url.hostname) || url.hostname.startsWith('127.');
  if (key && url.protocol === 'http:' && !loopback) {
    throw new Error(`refusing to send an API key over plain http to ${url.host}: use https, or no key`);
  }
  return key || undefined;
}

export async function runJudge(opts: JudgeRunOptions): Promise<JudgeRunResult> {
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const dir = langDir(opts.benchDir, opts.lang);
  const judgeModel = opts.judgeModel ?? 'gpt-4';
  const judgeUrl = opts.judgeUrl ?? DEFAULT_JUDGE_URL;
  const apiKey = judgeApiKey(judgeUrl, opts);
  if (!apiKey && judgeUrl === DEFAULT_JUDGE_URL) throw new Error('OPENAI_API_KEY is not set (needed for the default judge URL, https://api.openai.com/v1)');
  const parallel = opts.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1) throw new Error(`--parallel must be a positive integer, found ${parallel}`);
  const models = [...new Set(opts.models)];
  if (models.length === 0) throw new Error('no models given (--models A,B,...)');
  if (opts.firstN !== undefined && !(Number.isInteger(opts.firstN) && opts.firstN > 0)) throw new Error(`--first-n must be a positive integer, found ${opts.firstN}`);

  const qFile = join(dir, 'question.jsonl');
  if (!existsSync(qFile)) throw new Error(`${qFile}: no question file for language ${opts.lang}`);
  const questions = (await readMtBenchQuestions(qFile)).slice(0, opts.firstN);
  const qLine = await questionLines(qFile);
  const promptsFile = opts.judgePrompts ?? join(dir, 'judge_prompts.jsonl');
  const prompts = await readJudgePrompts(promptsFile, warn);
  const refFile = opts.referenceFile ?? join(dir, 'reference_answer', 'gpt-4.jsonl');
  const needRef = questions.some((q) => NEED_REF_CATS.includes(q.category));
  const refs = needRef ? await readMtBenchAnswers(refFile).catch((e: Error) => {
    throw existsSync(refFile) ? e : new Error(`${refFile}: no reference answers (needed for ${NEED_REF_CATS.slice(0, 3).join(', ')})`);
  }) : new Map<string, MtBenchAnswer>();

  const pairs: [string, string][] = [];
  if (opts.mode === 'pairwise') {
    if (opts.baseline !== undefined) {
      for (const m of models) if (m !== opts.baseline) pairs.push([m, opts.baseline]);
    } else {
      for (let i = 0; i < models.length; i++) for (let j = i + 1; j < models.length; j++) pairs.push([models[i], models[j]]);
    }
    if (pairs.length === 0) throw new Error('pairwise judging needs two models (--models A,B or --baseline M with another model)');
  } else if (opts.baseline !== undefined) throw new Error('--baseline is for --mode pairwise');

  // Every input checked before the first request, as FastChat's check_data.
  const answerDir = join(dir, 'model_answer');
  const needed = [...new Set([...models, ...(opts.baseline ? [opts.baseline] : [])])];
  const answers = new Map<string, Map<string, MtBenchAnswer>>();
  for (const m of needed) {
    const f = join(answerDir, `${m}.jsonl`);
    if (!existsSync(f)) throw new Error(`${f}: no answer file for model ${JSON.stringify(m)}`);
    const a = await readMtBenchAnswers(f);
    for (const q of questions) {
      const ans = a.get(String(q.questionId));
      const where = `${qFile}:${qLine.get(String(q.questionId))}`;
      if (!ans) throw new Error(`${f}: no answer to question ${JSON.stringify(q.questionId)} (${where})`);
      if (ans.turns.length < q.turns.length) throw new Error(`${f}: the answer to question ${JSON.stringify(q.questionId)} has ${ans.turns.length} turn(s), the question ${q.turns.length} (${where})`);
    }
    answers.set(m, a);
  }
  for (const q of questions) {
    if (!NEED_REF_CATS.includes(q.category)) continue;
    const r = refs.get(String(q.questionId));
    if (!r || r.turns.length < q.turns.length) throw new Error(`${refFile}: no reference answer${r ? ' for every turn' : ''} to ${q.category} question ${JSON.stringify(q.questionId)} (${qFile}:${qLine.get(String(q.questionId))})`);
  }
  const promptFor = (q: MtBenchQuestion, turn: 1 | 2): JudgePrompt => {
    const name = promptName(opts.mode, q.category, turn);
    const p = prompts.get(name);
    if (!p) throw new Error(`${promptsFile}: no judge prompt "${name}" (needed for ${q.category} questions, turn ${turn}); the file has ${[...prompts.keys()].join(', ')}`);
    if (p.type !== (opts.mode === 'single' ? 'single' : 'pairwise')) throw new Error(`${p.source}: judge prompt "${name}" has type "${p.type}"`);
    return p;
  };

  // FastChat's match order: questions without references, with, then the same for turn 2.
  const matches: Match[] = [];
  const plain = questions.filter((q) => !NEED_REF_CATS.includes(q.category));
  const withRef = questions.filter((q) => NEED_REF_CATS.includes(q.category));
  for (const turn of [1, 2] as const) {
    for (const q of [...plain, ...withRef]) {
      if (turn === 2 && q.turns.length !== 2) continue;
      const prompt = promptFor(q, turn);
      if (opts.mode === 'single') {
        for (const m of models) matches.push({ key: recordKey(q.questionId, turn, judgeModel, prompt.name, m), question: q, turn, prompt, model: m });
      } else {
        for (const [m1, m2] of pairs) matches.push({ key: recordKey(q.questionId, turn, judgeModel, prompt.name, m1, m2), question: q, turn, prompt, model: m1, model2: m2 });
      }
    }
  }

  // A judge like "org/model" must not become a sub-folder that `show` would never read.
  const out = opts.out ?? join(dir, 'model_judgment', `${judgeModel.replace(/[/\\]/g, '_')}_${opts.mode === 'single' ? 'single' : 'pair'}.jsonl`);
  mkdirSync(dirname(out), { recursive: true });
  const unlock = takeLock(out);
  const result: JudgeRunResult = { outFile: out, planned: matches.length, skipped: 0, written: 0, invalidScores: 0, errorVerdicts: 0, failed: [] };
  let bar: SingleBar | undefined;
  let appender: LineAppender | undefined;
  const half = new HalfGames(join(dirname(out), `.${basename(out)}.half.jsonl`));
  try {
    const done = new Set<string>();
    if (existsSync(out)) {
      const prev = await readJudgmentLines(out, true);
      if (prev.tornTail) {
        warn(`${out}:${prev.tornTail.line}: dropped an incomplete last line (a write cut short); that judgment is made again`);
        const fd = openSync(out, 'r+');
        try { ftruncateSync(fd, prev.completeBytes); fsyncSync(fd); } finally { closeSync(fd); }
      }
      if (prev.missingNewline) appendFileSync(out, '\n');
      for (const s of prev.single) done.add(recordKey(s.question_id, s.turn, s.judge[0], s.judge[1], s.model));
      for (const p of prev.pairwise) done.add(recordKey(p.question_id, p.turn, p.judge[0], p.judge[1], p.model_1, p.model_2));
    }
    const todo = matches.filter((m) => !done.has(m.key));
    result.skipped = matches.length - todo.length;
    appender = new LineAppender(out);
    const client = new ChatClient({ baseUrl: judgeUrl, model: judgeModel, apiKey, timeoutMs: opts.timeoutMs ?? 300_000, maxRetries: opts.maxRetries ?? 8, retryBaseMs: opts.retryBaseMs ?? 1000 });
    const limit = new Limit(parallel);
    const ref = (q: MtBenchQuestion) => (NEED_REF_CATS.includes(q.category) ? refs.get(String(q.questionId)) : undefined);
    const ask = async (prompt: JudgePrompt, userPrompt: string, keepHalf: boolean): Promise<string> => {
      const judge: [string, string] = [judgeModel, prompt.name];
      const cached = keepHalf ? half.get(judge, userPrompt) : undefined;
      if (cached !== undefined) return cached;
      const judgment = await limit.run(() => client.complete(judgeMessages(prompt, userPrompt)));
      if (keepHalf) half.put(judge, userPrompt, judgment);
      return judgment;
    };

    const play = async (m: Match): Promise<SingleJudgment | PairJudgment> => {
      const a1 = answers.get(m.model)!.get(String(m.question.questionId))!;
      const judge: [string, string] = [judgeModel, m.prompt.name];
      if (m.model2 === undefined) {
        const userPrompt = buildUserPrompt(m, a1, undefined, ref(m.question));
        const judgment = await ask(m.prompt, userPrompt, false);
        return { question_id: m.question.questionId, model: m.model, judge, user_prompt: userPrompt, judgment, score: parseScore(judgment), turn: m.turn, tstamp: Date.now() / 1000 };
      }
      const a2 = answers.get(m.model2)!.get(String(m.question.questionId))!;
      const g1Prompt = buildUserPrompt(m, a1, a2, ref(m.question));
      const g2Prompt = buildUserPrompt(m, a2, a1, ref(m.question));
      const [g1, g2] = await Promise.all([ask(m.prompt, g1Prompt, true), ask(m.prompt, g2Prompt, true)]);
      return {
        question_id: m.question.questionId,
        model_1: m.model,
        model_2: m.model2,
        g1_winner: toWinner(parseVerdict(g1, m.prompt), 'model_1'),
        g2_winner: toWinner(parseVerdict(g2, m.prompt), 'model_2'),
        judge,
        g1_user_prompt: g1Prompt,
        g1_judgment: g1,
        g2_user_prompt: g2Prompt,
        g2_judgment: g2,
        turn: m.turn,
        tstamp: Date.now() / 1000,
      };
    };

    if (opts.progress ?? process.stderr.isTTY) {
      bar = new SingleBar({ stream: process.stderr, format: `judging ${opts.lang} {bar} {value}/{total} | {eta_formatted} left | -1/error: {bad} | failed: {failed}`, hideCursor: false });
      bar.start(todo.length, 0, { bad: 0, failed: 0 });
    }
    let next = 0, consecutiveFailures = 0;
    let fatal: Error | undefined;
    const maxConsecutive = parallel + 2;
    const worker = async () => {
      while (!fatal && next < todo.length) {
        if (opts.signal?.aborted) { fatal ??= new Error('interrupted'); break; }
        const m = todo[next++];
        try {
          const rec = await play(m);
          appender!.append(rec);
          result.written++;
          consecutiveFailures = 0;
          if ('score' in rec) { if (rec.score === -1) result.invalidScores++; }
          else result.errorVerdicts += Number(rec.g1_winner === 'error') + Number(rec.g2_winner === 'error');
        } catch (e) {
          if (!(e instanceof JudgeRequestError)) { fatal ??= e as Error; break; }
          result.failed.push({ key: m.key, error: e.message });
          if (!e.retriable) fatal ??= e;
          else if (++consecutiveFailures >= maxConsecutive) fatal ??= new Error(`the judge failed ${consecutiveFailures} times in a row, stopping; last error: ${e.message}`);
        }
        bar?.increment(1, { bad: result.invalidScores + result.errorVerdicts, failed: result.failed.length });
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, todo.length) }, worker));
    bar?.stop();
    bar = undefined;
    half.finish(result.failed.length === 0 && !fatal);
    if (fatal) {
      const err = new Error(`${fatal.message}\n${result.written} judgment(s) written to ${out} before stopping, ${result.skipped} were already there; rerun the same command to continue`);
      (err as Error & { result?: JudgeRunResult }).result = result;
      throw err;
    }
    return result;
  } finally {
    bar?.stop();
    appender?.close();
    half.finish(false);
    unlock();
  }
}
