import { DataFileError, readJsonRecords } from '../data/jsonRecords.js';
import { fleissKappa } from './fleiss.js';
import { gameOutcome } from './summary.js';
import type { AgreementCell, AgreementOptions, AgreementPair, AgreementResult, AgreementRow, FleissResult, JudgeId, PairJudgment, Vote, VoteWinner } from './types.js';

/** The study's subset of categories for agreement. */
export const STUDY_SUBSET = ['roleplay', 'coding', 'extraction', 'math', 'reasoning'];
const SUBSET_SCOPE = 'study subset';

/** MT-Bench's categories in question order; each has ten questions, from id 81 on. */
const MT_BENCH_LAYOUT = ['writing', 'roleplay', 'reasoning', 'math', 'coding', 'extraction', 'stem', 'humanities'];

/** MT-Bench's fixed layout: ids 81-90 writing, 91-100 roleplay, ... 151-160 humanities ("81_DE" too). */
export function mtBenchCategory(id: number | string): string | undefined {
  const n = typeof id === 'number' ? id : Number(/^(\d+)(?:_[A-Za-z]{2,3})?$/.exec(id)?.[1]);
  if (!Number.isInteger(n) || n < 81 || n > 160) return undefined;
  return MT_BENCH_LAYOUT[Math.floor((n - 81) / 10)];
}

const WINNERS: VoteWinner[] = ['model_a', 'model_b', 'tie', 'tie (bothbad)'];

/** Reads votes in FastChat's human-judgment format (JSON lines or a JSON array); errors name file:line. */
export async function readVotes(file: string): Promise<Vote[]> {
  const out: Vote[] = [];
  for await (const { value: r, line } of readJsonRecords(file)) {
    const fail = (m: string): never => { throw new DataFileError(file, line, m); };
    const qid = r.question_id;
    if (!((typeof qid === 'number' && Number.isInteger(qid)) || (typeof qid === 'string' && qid !== ''))) fail('field "question_id" must be an integer or a non-empty string');
    for (const f of ['model_a', 'model_b']) if (typeof r[f] !== 'string' || r[f] === '') fail(`field "${f}" must be a non-empty string`);
    if (r.model_a === r.model_b) fail('model_a and model_b are the same model');
    if (!WINNERS.includes(r.winner as VoteWinner)) fail(`field "winner" must be one of ${WINNERS.map((w) => JSON.stringify(w)).join(', ')}, found ${JSON.stringify(r.winner)}`);
    const j = r.judge;
    const isPair = Array.isArray(j) && j.length === 2 && j.every((x) => typeof x === 'string');
    if (!(typeof j === 'string' && j !== '') && !isPair) fail('field "judge" must be an annotator name or [judge_model, prompt_name]');
    if (r.turn !== 1 && r.turn !== 2) fail('field "turn" must be 1 or 2');
    out.push(r as Vote);
  }
  return out;
}

/**
 * An LLM judge's pairwise records as votes: a verdict both orders agree on is the vote (both bad
 * as "tie (bothbad)"); two orders that disagree are a tie, as FastChat and the MT-Bench paper count
 * them; a record with an error verdict in either order is no vote (counted in `errors`).
 */
export function judgmentsToVotes(judgments: PairJudgment[]): { votes: Vote[]; errors: number } {
  const votes: Vote[] = [];
  let errors = 0;
  const map = { win: 'model_a', loss: 'model_b', tie: 'tie', inconsistent: 'tie', bothBad: 'tie (bothbad)' } as const;
  for (const p of judgments) {
    const o = gameOutcome(p);
    if (o === 'error') { errors++; continue; }
    votes.push({ question_id: p.question_id, model_a: p.model_1, model_b: p.model_2, winner: map[o], judge: p.judge, turn: p.turn });
  }
  return { votes, errors };
}

const revert = (w: VoteWinner): VoteWinner => (w === 'model_a' ? 'model_b' : w === 'model_b' ? 'model_a' : w);
/** FastChat's convertvote/equalvote: a tie and a both-bad vote are the same verdict for agreement. */
const cls = (w: VoteWinner) => (w.includes('tie') ? 'tie' : w);
const isTie = (w: VoteWinner) => cls(w) === 'tie';

interface Item {
  qid: string;
  turn: number;
  category: string | undefined;
  /** annotator -> vote (the last one, if an annotator voted twice). */
  humans: Map<string, VoteWinner>;
  judge?: VoteWinner;
}

function cell(agree: number, total: number): AgreementCell {
  return { agree, total, ratio: total ? agree / total : null };
}

function judgeHuman(items: Item[], ban: boolean): AgreementCell {
  let agree = 0, total = 0;
  for (const it of items) {
    if (it.judge === undefined || (ban && isTie(it.judge))) continue;
    for (const h of it.humans.values()) {
      if (ban && isTie(h)) continue;
      total++;
      if (cls(h) === cls(it.judge)) agree++;
    }
  }
  return cell(agree, total);
}

function humanHuman(items: Item[], ban: boolean): AgreementCell {
  let agree = 0, total = 0;
  for (const it of items) {
    const hs = [...it.humans.values()].filter((h) => !(ban && isTie(h)));
    for (let i = 0; i < hs.length; i++) for (let j = i + 1; j < hs.length; j++) { total++; if (cls(hs[i]) === cls(hs[j])) agree++; }
  }
  return cell(agree, total);
}

/** Each human vote compared with the humans' majority on its item: the most any judge can agree. */
function upperBound(items: Item[], ban: boolean, needJudge: boolean): AgreementCell {
  let agree = 0, total = 0;
  for (const it of items) {
    if (needJudge && it.judge === undefined) continue;
    const tally = new Map<string, number>();
    for (const h of it.humans.values()) if (!(ban && isTie(h))) tally.set(cls(h), (tally.get(cls(h)) ?? 0) + 1);
    if (tally.size === 0) continue;
    agree += Math.max(...tally.values());
    total += [...tally.values()].reduce((a, b) => a + b, 0);
  }
  return cell(agree, total);
}

const pair = (f: (ban: boolean) => AgreementCell): AgreementPair => ({ withTies: f(false), withoutTies: f(true) });

function fleissOver(items: Item[], raters: string[]): FleissResult {
  if (raters.length < 2) return { kappa: null, z: null, pValue: null, items: 0, raters: raters.length, categories: WINNERS, reason: 'fewer than 2 human raters' };
  const complete = items.filter((it) => raters.every((r) => it.humans.has(r)));
  const counts = complete.map((it) => WINNERS.map((w) => raters.filter((r) => it.humans.get(r) === w).length));
  return fleissKappa(counts, WINNERS);
}

/**
 * Agreement between an LLM judge and humans and among humans, as FastChat's compute_agreement:
 * votes are keyed by question, turn and the sorted model pair (the verdict flipped when the pair is
 * stored the other way round); "with ties" compares all votes, a tie equal to a both-bad vote;
 * "without ties" drops every comparison where either vote is a tie or both bad. Judge votes come
 * from `votes` whose judge is a [model, prompt] pair and from `judgments` (pairwise records).
 */
export function computeAgreement(votes: Vote[], judgments: PairJudgment[] = [], opts: AgreementOptions = {}): AgreementResult {
  const fromJudgments = judgmentsToVotes(opts.judge === undefined ? judgments : judgments.filter((p) => p.judge[0] === opts.judge));
  const all = [...votes, ...fromJudgments.votes].filter((v) => opts.judge === undefined || !Array.isArray(v.judge) || v.judge[0] === opts.judge);
  const judgeNames = new Set(all.filter((v) => Array.isArray(v.judge)).map((v) => (v.judge as JudgeId)[0]));
  if (judgeNames.size > 1) throw new Error(`votes from several LLM judges (${[...judgeNames].join(', ')}); choose one (--judge-model)`);
  const items = new Map<string, Item>();
  const humans = new Set<string>();
  let humanVotes = 0, judgeVotes = 0;
  for (const v of all) {
    const [a, b] = [v.model_a, v.model_b];
    const winner = a < b ? v.winner : revert(v.winner);
    const key = JSON.stringify([String(v.question_id), v.turn, ...[a, b].sort()]);
    let it = items.get(key);
    if (!it) {
      const category = opts.categories ? opts.categories.get(String(v.question_id)) : mtBenchCategory(v.question_id);
      items.set(key, (it = { qid: String(v.question_id), turn: v.turn, category, humans: new Map() }));
    }
    if (typeof v.judge === 'string') {
      it.humans.set(v.judge, winner);
      humans.add(v.judge);
      humanVotes++;
    } else {
      it.judge = winner;
      judgeVotes++;
    }
  }
  const list = [...items.values()];
  const hasJudge = judgeVotes > 0;
  const seen = new Set(list.map((it) => it.category).filter((c): c is string => c !== undefined));
  const cats = [...MT_BENCH_LAYOUT.filter((c) => seen.has(c)), ...[...seen].filter((c) => !MT_BENCH_LAYOUT.includes(c)).sort()];
  const rows: AgreementRow[] = [];
  for (const turn of [1, 2, 'all'] as const) {
    const inTurn = list.filter((it) => turn === 'all' || it.turn === turn);
    for (const scope of ['all', ...cats, SUBSET_SCOPE]) {
      const sel = scope === 'all' ? inTurn : scope === SUBSET_SCOPE ? inTurn.filter((it) => STUDY_SUBSET.includes(it.category ?? '')) : inTurn.filter((it) => it.category === scope);
      rows.push({
        turn,
        scope,
        judgeHuman: hasJudge ? pair((ban) => judgeHuman(sel, ban)) : null,
        humanHuman: pair((ban) => humanHuman(sel, ban)),
        upperBound: pair((ban) => upperBound(sel, ban, hasJudge)),
      });
    }
  }
  if (opts.raters) for (const r of opts.raters) if (!humans.has(r)) throw new Error(`no votes by annotator ${JSON.stringify(r)} (the votes have ${[...humans].sort().join(', ')})`);
  const raters = opts.raters ? [...new Set(opts.raters)].sort() : [...humans].sort();
  const fleiss = ([1, 2, 'all'] as const).map((turn) => ({ turn, result: fleissOver(list.filter((it) => turn === 'all' || it.turn === turn), raters) }));
  return { rows, fleiss, counts: { humanVotes, humans: humans.size, judgeVotes, judgeErrorsSkipped: fromJudgments.errors, items: list.length } };
}
