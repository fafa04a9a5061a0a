// Which pair of answers an annotator sees next. A task is one turn of one question for one pair of
// models; turn 2 always follows turn 1 of the same pair, and the page side of each model is drawn
// anew for every turn, so a preference for the left column averages out instead of favouring a model.
import type { HumanVote } from './votes.js';

export interface AnnotationItem {
  questionId: number | string;
  category: string;
  turns: string[];
  /** Reference solution per turn (reference_answer/gpt-4.jsonl, else the question's own list). */
  reference?: string[];
  /** Each model's answer turns, for the models that answered this question. */
  answers: Map<string, string[]>;
}

export interface TaskSpec {
  item: AnnotationItem;
  turn: number;
  /** model_a / model_b in the order of --models, as the vote file records them. */
  modelA: string;
  modelB: string;
  /** True when model_a's answer is shown on the left ("Assistant A" of the page). */
  aLeft: boolean;
}

const key = (q: number | string, a: string, b: string) => `${q}\u0000${a}\u0000${b}`;

/** Each annotator's progress and every annotator's pair per question, rebuilt from the vote file. */
export class VoteIndex {
  /** annotator -> question/pair key -> turns voted */
  private readonly byAnnotator = new Map<string, Map<string, Set<number>>>();
  /** annotator -> questions with any vote */
  private readonly questionsVoted = new Map<string, Set<string>>();
  /** question/pair key -> annotators who voted on it */
  private readonly pairVoters = new Map<string, Set<string>>();

  constructor(votes: Iterable<HumanVote>) {
    for (const v of votes) this.add(v);
  }

  add(v: HumanVote): void {
    const k = key(v.question_id, v.model_a, v.model_b);
    let m = this.byAnnotator.get(v.judge);
    if (!m) this.byAnnotator.set(v.judge, (m = new Map()));
    if (!m.has(k)) m.set(k, new Set());
    m.get(k)!.add(v.turn);
    if (!this.questionsVoted.has(v.judge)) this.questionsVoted.set(v.judge, new Set());
    this.questionsVoted.get(v.judge)!.add(String(v.question_id));
    if (!this.pairVoters.has(k)) this.pairVoters.set(k, new Set());
    this.pairVoters.get(k)!.add(v.judge);
  }

  has(annotator: string, q: number | string, a: string, b: string, turn: number): boolean {
    return this.byAnnotator.get(annotator)?.get(key(q, a, b))?.has(turn) ?? false;
  }

  turnsVoted(annotator: string, q: number | string, a: string, b: string): Set<number> {
    return this.byAnnotator.get(annotator)?.get(key(q, a, b)) ?? new Set();
  }

  votedQuestion(annotator: string, q: number | string): boolean {
    return this.questionsVoted.get(annotator)?.has(String(q)) ?? false;
  }

  votesBy(annotator: string): number {
    let n = 0;
    for (const turns of this.byAnnotator.get(annotator)?.values() ?? []) n += turns.size;
    return n;
  }

  /** How many other annotators voted on this pair of this question. */
  otherVoters(annotator: string, q: number | string, a: string, b: string): number {
    const s = this.pairVoters.get(key(q, a, b));
    return s ? s.size - (s.has(annotator) ? 1 : 0) : 0;
  }
}

/** The model pairs of a study, each in --models order. */
export function modelPairs(models: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < models.length; i++) for (let j = i + 1; j < models.length; j++) out.push([models[i], models[j]]);
  return out;
}

/**
 * The annotator's next task, or undefined when nothing is left. An unfinished question (turn 1
 * voted, a later turn not) comes first; otherwise a random question the annotator has not voted on,
 * with the pair most other annotators already judged there (ties drawn at random): overlapping
 * votes are what human-human agreement and Fleiss' kappa are computed from.
 */
export function nextTask(
  items: AnnotationItem[],
  models: string[],
  index: VoteIndex,
  annotator: string,
  skipped: ReadonlySet<string>,
  rand: () => number,
): TaskSpec | undefined {
  const pairs = modelPairs(models);
  const answered = (it: AnnotationItem, [a, b]: [string, string]) => it.answers.has(a) && it.answers.has(b);
  for (const it of items) {
    if (skipped.has(String(it.questionId))) continue;
    for (const p of pairs) {
      const turns = index.turnsVoted(annotator, it.questionId, p[0], p[1]);
      if (turns.size === 0 || !answered(it, p)) continue;
      for (let t = 1; t <= it.turns.length; t++) {
        if (!turns.has(t)) return { item: it, turn: t, modelA: p[0], modelB: p[1], aLeft: rand() < 0.5 };
      }
    }
  }
  const open = items.filter(
    (it) => !skipped.has(String(it.questionId)) && !index.votedQuestion(annotator, it.questionId) && pairs.some((p) => answered(it, p)),
  );
  if (open.length === 0) return undefined;
  const it = open[Math.floor(rand() * open.length)];
  const candidates = pairs.filter((p) => answered(it, p));
  const most = Math.max(...candidates.map((p) => index.otherVoters(annotator, it.questionId, p[0], p[1])));
  const best = candidates.filter((p) => index.otherVoters(annotator, it.questionId, p[0], p[1]) === most);
  const [modelA, modelB] = best[Math.floor(rand() * best.length)];
  return { item: it, turn: 1, modelA, modelB, aLeft: rand() < 0.5 };
}

/** Questions the annotator can still be given (for the progress line). */
export function remainingQuestions(items: AnnotationItem[], models: string[], index: VoteIndex, annotator: string): number {
  const pairs = modelPairs(models);
  return items.filter((it) => !index.votedQuestion(annotator, it.questionId) && pairs.some(([a, b]) => it.answers.has(a) && it.answers.has(b)))
    .length;
}
