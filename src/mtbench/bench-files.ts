import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DataFileError } from '../data/jsonRecords.js';
import { readMtBenchAnswers, readMtBenchQuestions, type MtBenchAnswer } from '../data/mtBench.js';
import type { BenchLanguage, JudgeId, PairJudgment, PairWinner, SingleJudgment } from './types.js';

/** `<benchDir>/mt_bench_<LANG>`. */
export function langDir(benchDir: string, lang: string): string {
  return join(benchDir, `mt_bench_${lang}`);
}

/** The languages of a bench dir: its mt_bench_XX folders, sorted. */
export async function listBenchLanguages(benchDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(benchDir);
  } catch (e) {
    throw new Error(`${benchDir}: cannot read the bench dir: ${(e as Error).message}`);
  }
  return names.map((n) => /^mt_bench_([A-Za-z]{2,3})$/.exec(n)?.[1]).filter((l): l is string => !!l).sort();
}

/** Model answer files model_answer/<model>.jsonl; the model is the file name (as FastChat). */
export async function readModelAnswers(dir: string, only?: string[]): Promise<Map<string, Map<string, MtBenchAnswer>>> {
  const out = new Map<string, Map<string, MtBenchAnswer>>();
  if (!existsSync(dir)) return out;
  const files = (await readdir(dir)).filter((f) => f.endsWith('.jsonl')).sort();
  for (const f of files) {
    const model = basename(f, '.jsonl');
    if (only && !only.includes(model)) continue;
    out.set(model, await readMtBenchAnswers(join(dir, f)));
  }
  return out;
}

/** Questions, model answers, reference answers and judgments of one language; named errors (file:line) on bad input. */
export async function loadBenchLanguage(benchDir: string, lang: string): Promise<BenchLanguage> {
  const dir = langDir(benchDir, lang);
  const qFile = join(dir, 'question.jsonl');
  if (!existsSync(qFile)) throw new Error(`${qFile}: no question file for language ${lang}`);
  const questions = await readMtBenchQuestions(qFile);
  const answers = await readModelAnswers(join(dir, 'model_answer'));
  const refFile = join(dir, 'reference_answer', 'gpt-4.jsonl');
  const references = existsSync(refFile) ? await readMtBenchAnswers(refFile) : new Map<string, MtBenchAnswer>();
  const single: SingleJudgment[] = [], pairwise: PairJudgment[] = [];
  for (const f of await judgmentFiles(dir)) {
    const r = await readJudgmentFile(f, { inProgress: true });
    single.push(...r.single);
    pairwise.push(...r.pairwise);
  }
  return { lang, dir, questions, answers, references, single, pairwise };
}

/** model_judgment/*.jsonl of a language folder, sorted. */
export async function judgmentFiles(dir: string): Promise<string[]> {
  const jdir = join(dir, 'model_judgment');
  if (!existsSync(jdir)) return [];
  return (await readdir(jdir)).filter((f) => f.endsWith('.jsonl') && !f.startsWith('.')).sort().map((f) => join(jdir, f));
}

const WINNERS: PairWinner[] = ['model_1', 'model_2', 'tie', 'tie (bothbad)', 'error'];

function fail(file: string, line: number, msg: string): never {
  throw new DataFileError(file, line, msg);
}

function str(r: Record<string, unknown>, f: string, file: string, line: number): string {
  const v = r[f];
  if (typeof v !== 'string') fail(file, line, `field "${f}" must be a string`);
  return v;
}

function common(r: Record<string, unknown>, file: string, line: number) {
  const qid = r.question_id;
  if (!((typeof qid === 'number' && Number.isInteger(qid)) || (typeof qid === 'string' && qid !== ''))) fail(file, line, 'field "question_id" must be an integer or a non-empty string');
  const judge = r.judge;
  if (!Array.isArray(judge) || judge.length !== 2 || judge.some((j) => typeof j !== 'string')) fail(file, line, 'field "judge" must be [judge_model, prompt_name]');
  const turn = r.turn;
  if (turn !== 1 && turn !== 2) fail(file, line, 'field "turn" must be 1 or 2');
  const tstamp = typeof r.tstamp === 'number' ? r.tstamp : 0;
  return { question_id: qid, judge: judge as JudgeId, turn, tstamp };
}

/** Checks one parsed judgment record; single and pairwise are told apart by their fields. */
export function checkJudgment(r: Record<string, unknown>, file: string, line: number): { single: SingleJudgment } | { pair: PairJudgment } {
  const c = common(r, file, line);
  if ('model_1' in r) {
    const winner = (f: string) => {
      const w = r[f];
      if (!WINNERS.includes(w as PairWinner)) fail(file, line, `field "${f}" must be one of ${WINNERS.map((x) => JSON.stringify(x)).join(', ')}, found ${JSON.stringify(w)}`);
      return w as PairWinner;
    };
    return {
      pair: {
        question_id: c.question_id,
        model_1: str(r, 'model_1', file, line),
        model_2: str(r, 'model_2', file, line),
        g1_winner: winner('g1_winner'),
        g2_winner: winner('g2_winner'),
        judge: c.judge,
        g1_user_prompt: str(r, 'g1_user_prompt', file, line),
        g1_judgment: str(r, 'g1_judgment', file, line),
        g2_user_prompt: str(r, 'g2_user_prompt', file, line),
        g2_judgment: str(r, 'g2_judgment', file, line),
        turn: c.turn,
        tstamp: c.tstamp,
      },
    };
  }
  if ('model' in r) {
    if (typeof r.score !== 'number' || !Number.isFinite(r.score)) fail(file, line, 'field "score" must be a number (-1 when none was parsed)');
    return {
      single: {
        question_id: c.question_id,
        model: str(r, 'model', file, line),
        judge: c.judge,
        user_prompt: str(r, 'user_prompt', file, line),
        judgment: str(r, 'judgment', file, line),
        score: r.score,
        turn: c.turn,
        tstamp: c.tstamp,
      },
    };
  }
  fail(file, line, 'neither a single judgment (field "model") nor a pairwise one (fields "model_1", "model_2")');
}

/** The lines of a judgment file: complete records plus, separately, an unterminated last line. */
export interface JudgmentLines {
  single: SingleJudgment[];
  pairwise: PairJudgment[];
  /** Byte length of the file up to the end of its last complete line. */
  completeBytes: number;
  /** The unterminated last line that is not a valid record (a write cut short), if any. */
  tornTail?: { line: number; text: string };
  /** The last record parsed but its newline is missing: the next append must start a line first. */
  missingNewline?: boolean;
}

/**
 * Reads a judgment JSONL (single and pairwise records may be mixed). Every complete line must be a
 * valid record (else a DataFileError naming file:line); a last line without its newline that does
 * not parse is reported as `tornTail` when `tolerateTornTail` is set (a judge run appends whole
 * lines, so only a crash mid-write leaves one), and is an error otherwise.
 */
export async function readJudgmentLines(file: string, tolerateTornTail = false): Promise<JudgmentLines> {
  const buf = await readFile(file);
  const text = buf.toString('utf8');
  const out: JudgmentLines = { single: [], pairwise: [], completeBytes: buf.length };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (raw.trim() === '') continue;
    const last = i === lines.length - 1;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      if (last && tolerateTornTail) {
        out.tornTail = { line: i + 1, text: raw };
        // From the bytes, not the decoded text: a cut inside a multi-byte character decodes to
        // U+FFFD (3 bytes), and a length taken from it would cut into the previous record.
        out.completeBytes = buf.lastIndexOf(0x0a) + 1;
        break;
      }
      fail(file, i + 1, `malformed JSON: ${(e as Error).message}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(file, i + 1, 'a judgment must be a JSON object');
    const r = checkJudgment(v as Record<string, unknown>, file, i + 1);
    if ('single' in r) out.single.push(r.single);
    else out.pairwise.push(r.pair);
  }
  if (!out.tornTail && buf.length > 0 && buf[buf.length - 1] !== 0x0a) out.missingNewline = true;
  return out;
}

/**
 * Reads a judgment JSONL (single and pairwise records may be mixed); errors name file:line. With
 * `inProgress`, a last line without its newline that does not parse is skipped: the record a
 * running `mtbench judge` is appending at that moment.
 */
export async function readJudgmentFile(file: string, opts: { inProgress?: boolean } = {}): Promise<{ single: SingleJudgment[]; pairwise: PairJudgment[] }> {
  const { single, pairwise } = await readJudgmentLines(file, opts.inProgress ?? false);
  return { single, pairwise };
}
