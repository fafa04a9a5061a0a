// A bench dir for the annotation and report tests: the real MT-Bench-X question and reference files
// where ../shared has them (generated ones otherwise), plus generated answers, judgments and votes
// whose numbers are known.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../../src/data/random.js';

export const projectRoot = resolve(fileURLToPath(import.meta.url), '../../..');
export const sharedBench = resolve(projectRoot, '../shared/data/mt-bench-x');

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const CATEGORIES = ['writing', 'roleplay', 'reasoning', 'math', 'coding', 'extraction', 'stem', 'humanities'];
const WITH_REFERENCE = new Set(['reasoning', 'math', 'coding']);

interface Question {
  question_id: string;
  category: string;
  turns: string[];
}

/** The text a model's answer starts with, so a test can tell which model a page shows. */
export const answerMark = (model: string) => `«${model}»`;

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

function generatedQuestions(lang: string, perCategory: number): Question[] {
  const out: Question[] = [];
  CATEGORIES.forEach((c, ci) => {
    for (let k = 0; k < perCategory; k++) {
      const n = 81 + ci * 10 + k;
      out.push({ question_id: `${n}_${lang}`, category: c, turns: [`(${lang}) ${c} question ${n}, first turn?`, `(${lang}) follow-up to ${n}?`] });
    }
  });
  return out;
}

export interface FixtureOptions {
  langs: string[];
  models: string[];
  /** Use ../shared's questions when present (default true). */
  real?: boolean;
  /** Generated questions per category when ../shared is not used. */
  perCategory?: number;
  /** Write single and pairwise judgments (default true). */
  judgments?: boolean;
  seed?: number;
}

export interface Fixture {
  benchDir: string;
  /** Whether the questions came from ../shared. */
  real: boolean;
  questions: Map<string, Question[]>;
}

/** Builds mt_bench_<LANG>/{question.jsonl, reference_answer/, model_answer/, model_judgment/} under `dir`. */
export function buildBench(dir: string, o: FixtureOptions): Fixture {
  const real = (o.real ?? true) && existsSync(sharedBench);
  const rand = seededRandom(o.seed ?? 7);
  const questions = new Map<string, Question[]>();
  for (const lang of o.langs) {
    const ld = join(dir, `mt_bench_${lang}`);
    mkdirSync(join(ld, 'reference_answer'), { recursive: true });
    mkdirSync(join(ld, 'model_answer'), { recursive: true });
    let qs: Question[];
    if (real && existsSync(join(sharedBench, `mt_bench_${lang}`, 'question.jsonl'))) {
      copyFileSync(join(sharedBench, `mt_bench_${lang}`, 'question.jsonl'), join(ld, 'question.jsonl'));
      copyFileSync(join(sharedBench, `mt_bench_${lang}`, 'reference_answer', 'gpt-4.jsonl'), join(ld, 'reference_answer', 'gpt-4.jsonl'));
      qs = readFileSync(join(ld, 'question.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Question);
    } else {
      qs = generatedQuestions(lang, o.perCategory ?? 2);
      writeFileSync(join(ld, 'question.jsonl'), jsonl(qs.map((q) => ({ ...q, reference: [] }))));
      const refs = qs.filter((q) => WITH_REFERENCE.has(q.category));
      writeFileSync(join(ld, 'reference_answer', 'gpt-4.jsonl'), jsonl(refs.map((q) => ({ question_id: q.question_id, answer_id: 'r', model_id: 'gpt-4', choices: [{ index: 0, turns: [`reference ${q.question_id} turn 1`, `reference ${q.question_id} turn 2`] }], tstamp: 0 }))));
    }
    questions.set(lang, qs);
    for (const m of o.models) {
      writeFileSync(join(ld, 'model_answer', `${m}.jsonl`), jsonl(qs.map((q) => ({
        question_id: q.question_id,
        answer_id: `${m}-${q.question_id}`,
        model_id: m,
        choices: [{ index: 0, turns: q.turns.map((_, t) => `${answerMark(m)} answer to ${q.question_id}, turn ${t + 1}.\n<b>not bold</b> & kept as text`) }],
        tstamp: 0,
      }))));
    }
    if (o.judgments ?? true) writeJudgments(ld, qs, o.models, rand);
  }
  return { benchDir: dir, real, questions };
}

/** Single grades 1-10 (a few -1) and pairwise games in both orders, a few of them inconsistent or both-bad. */
function writeJudgments(ld: string, qs: Question[], models: string[], rand: () => number): void {
  mkdirSync(join(ld, 'model_judgment'), { recursive: true });
  const single = [];
  for (const q of qs) for (const [mi, m] of models.entries()) for (const turn of [1, 2]) {
    const score = rand() < 0.04 ? -1 : Math.min(10, 1 + Math.floor(rand() * 7) + mi);
    single.push({ question_id: q.question_id, model: m, judge: ['gpt-4', turn === 1 ? 'single-v1' : 'single-v1-multi-turn'], user_prompt: `grade ${q.question_id}`, judgment: score < 0 ? '$ERROR$' : `Fine. Rating: [[${score}]]`, score, turn, tstamp: 1 });
  }
  writeFileSync(join(ld, 'model_judgment', 'gpt-4_single.jsonl'), jsonl(single));
  const pair = [];
  const verdicts = ['model_1', 'model_2', 'tie', 'tie (bothbad)'] as const;
  for (const q of qs) for (let i = 1; i < models.length; i++) for (const turn of [1, 2]) {
    const g1 = verdicts[Math.floor(rand() * 4)];
    const g2 = rand() < 0.2 ? verdicts[Math.floor(rand() * 4)] : g1;
    pair.push({ question_id: q.question_id, model_1: models[0], model_2: models[i], g1_winner: g1, g2_winner: g2, judge: ['gpt-4', turn === 1 ? 'pair-v2' : 'pair-v2-multi-turn'], g1_user_prompt: 'p1', g1_judgment: `g1 says ${g1}`, g2_user_prompt: 'p2', g2_judgment: `g2 says ${g2}`, turn, tstamp: 1 });
  }
  writeFileSync(join(ld, 'model_judgment', 'gpt-4_pair.jsonl'), jsonl(pair));
}

/** Human votes (FastChat's format) by `raters` annotators on the first `n` questions' pairs. */
export function writeVotes(ld: string, qs: Question[], models: string[], raters: number, n: number, seed = 3): string {
  const rand = seededRandom(seed);
  const winners = ['model_a', 'model_b', 'tie', 'tie (bothbad)'];
  const votes = [];
  for (const q of qs.slice(0, n)) for (const turn of [1, 2]) {
    const base = winners[Math.floor(rand() * 4)];
    for (let r = 0; r < raters; r++) {
      const w = rand() < 0.7 ? base : winners[Math.floor(rand() * 4)];
      votes.push({ question_id: q.question_id, model_a: models[0], model_b: models[1], winner: w, judge: `expert_${r}`, turn, tstamp: 1 });
    }
  }
  const f = join(ld, 'human_judgment', 'votes.jsonl');
  mkdirSync(join(ld, 'human_judgment'), { recursive: true });
  writeFileSync(f, jsonl(votes));
  return f;
}
