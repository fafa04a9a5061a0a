import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { computeAgreement, fleissKappa, mtBenchCategory, readVotes, type PairJudgment, type Vote } from '../../src/mtbench/index.js';
import { twoSidedP } from '../../src/mtbench/fleiss.js';
import { rng } from '../helpers/random.js';

const tmp = mkdtempSync(join(tmpdir(), 'polytune-agree-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("Fleiss' kappa", () => {
  it('a hand-computed table: 4 items, 2 raters, kappa = 3/19', () => {
    // P_i = 1, 1, 0, 0 -> P = 1/2; p = (3/8, 4/8, 1/8) -> Pe = 26/64; kappa = (32/64 - 26/64) / (38/64) = 6/38.
    const r = fleissKappa([[2, 0, 0], [0, 2, 0], [1, 1, 0], [0, 1, 1]], ['a', 'b', 'tie']);
    expect(r.kappa).toBeCloseTo(3 / 19, 14);
    expect(r).toMatchObject({ items: 4, raters: 2, categories: ['a', 'b', 'tie'] });
  });

  it("Fleiss (1971), Table 1: 30 patients, 6 psychiatrists, 5 diagnoses: kappa .430 as published; z 17.7 as R's irr", () => {
    // Rows of Fleiss 1971, Table 1 (depression, personality disorder, schizophrenia, neurosis, other).
    const t = [
      [0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0], [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0],
      [2, 0, 0, 4, 0], [0, 0, 0, 0, 6], [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1], [0, 0, 5, 0, 1],
      [3, 0, 0, 1, 2], [5, 1, 0, 0, 0], [0, 2, 0, 4, 0], [1, 0, 2, 0, 3], [0, 0, 0, 0, 6], [0, 1, 0, 5, 0], [0, 2, 0, 1, 3], [2, 0, 0, 4, 0],
      [1, 0, 0, 4, 1], [0, 5, 0, 1, 0], [4, 0, 0, 0, 2], [0, 2, 0, 4, 0], [1, 0, 5, 0, 0], [0, 0, 0, 0, 6],
    ];
    // The published marginals p_j = .144 .144 .167 .306 .239 (checked through the column sums).
    expect(t.reduce((acc, row) => acc.map((s, j) => s + row[j]), [0, 0, 0, 0, 0]).map((s) => (s / 180).toFixed(3))).toEqual(['0.144', '0.144', '0.167', '0.306', '0.239']);
    const r = fleissKappa(t);
    expect(r.kappa!.toFixed(3)).toBe('0.430');
    expect(r.z!.toFixed(1)).toBe('17.7');
    expect(r.pValue!).toBeLessThan(1e-12);
    expect(r).toMatchObject({ items: 30, raters: 6 });
  });

  it('p-values of the normal: z = 1.959964 -> 0.05, z = 1 -> 0.3173, z = 0 -> 1', () => {
    expect(twoSidedP(1.959963985)).toBeCloseTo(0.05, 6);
    expect(twoSidedP(-1)).toBeCloseTo(0.31731050786, 6);
    expect(twoSidedP(0)).toBeCloseTo(1, 6);
  });

  it('refuses items with different numbers of raters; undefined kappa is null with a reason', () => {
    expect(() => fleissKappa([[2, 0], [1, 0]])).toThrow('item 1 has 1 ratings, item 0 has 2');
    expect(fleissKappa([[2, 0], [2, 0]]).reason).toMatch(/one category/);
    expect(fleissKappa([]).reason).toMatch(/no item/);
  });
});

describe('agreement (FastChat compute_agreement semantics)', () => {
  const v = (question_id: string | number, turn: number, model_a: string, model_b: string, winner: Vote['winner'], judge: string): Vote => ({ question_id, turn, model_a, model_b, winner, judge });
  const votes: Vote[] = [
    // X: question 81 (writing), turn 1, m1 vs m2: the three experts see the pair in different orders.
    v('81_DE', 1, 'm1', 'm2', 'model_a', 'expert_0'), // m1
    v('81_DE', 1, 'm2', 'm1', 'model_b', 'expert_1'), // m1, reordered
    v('81_DE', 1, 'm2', 'm1', 'model_a', 'expert_2'), // m2
    // Y: question 101 (reasoning), turn 2, m1 vs m3.
    v('101_DE', 2, 'm1', 'm3', 'tie', 'expert_0'),
    v('101_DE', 2, 'm3', 'm1', 'tie (bothbad)', 'expert_1'),
    // Z: question 131 (extraction), turn 1.
    v('131_DE', 1, 'm1', 'm2', 'model_a', 'expert_0'), // m1
    v('131_DE', 1, 'm2', 'm1', 'model_a', 'expert_1'), // m2
    // W: question 82 (writing), turn 2.
    v('82_DE', 2, 'm1', 'm2', 'model_b', 'expert_2'), // m2
  ];
  const j = (question_id: string, turn: number, model_1: string, model_2: string, g1: PairJudgment['g1_winner'], g2: PairJudgment['g2_winner']): PairJudgment => ({
    question_id, turn, model_1, model_2, g1_winner: g1, g2_winner: g2, judge: ['gpt-4', 'pair-v2'], g1_user_prompt: '', g1_judgment: '', g2_user_prompt: '', g2_judgment: '', tstamp: 0,
  });
  const judgments = [
    j('81_DE', 1, 'm2', 'm1', 'model_2', 'model_2'), // m1, stored reordered
    j('101_DE', 2, 'm1', 'm3', 'model_1', 'model_2'), // inconsistent: a tie
    j('131_DE', 1, 'm1', 'm2', 'error', 'model_1'), // no vote
    j('82_DE', 2, 'm1', 'm2', 'tie (bothbad)', 'tie (bothbad)'),
  ];
  const r = computeAgreement(votes, judgments);
  const row = (turn: 1 | 2 | 'all', scope: string) => r.rows.find((x) => x.turn === turn && x.scope === scope)!;
  const c = (agree: number, total: number) => ({ agree, total, ratio: agree / total });

  it('judge-human with and without ties, pairs keyed by sorted models with flipped verdicts', () => {
    // With ties: X 2/3, Y 2/2 (tie = both bad), W 0/1; Z has no judge vote. Without ties only X counts.
    expect(row('all', 'all').judgeHuman).toEqual({ withTies: c(4, 6), withoutTies: c(2, 3) });
    expect(row(1, 'all').judgeHuman).toEqual({ withTies: c(2, 3), withoutTies: c(2, 3) });
    expect(row(2, 'all').judgeHuman!.withTies).toEqual(c(2, 3));
    expect(row(2, 'all').judgeHuman!.withoutTies).toEqual({ agree: 0, total: 0, ratio: null });
    expect(row('all', 'writing').judgeHuman!.withTies).toEqual(c(2, 4));
    expect(row('all', 'study subset').judgeHuman!.withTies).toEqual(c(2, 2));
    expect(r.counts).toEqual({ humanVotes: 8, humans: 3, judgeVotes: 3, judgeErrorsSkipped: 1, items: 4 });
  });

  it('human-human over pairs of annotators, and the majority-vote upper bound', () => {
    expect(row('all', 'all').humanHuman).toEqual({ withTies: c(2, 5), withoutTies: c(1, 4) });
    expect(row(1, 'all').humanHuman.withTies).toEqual(c(1, 4));
    expect(row('all', 'study subset').humanHuman.withTies).toEqual(c(1, 2));
    // Items with a judge vote: X majority 2 of 3, Y 2 of 2 (tie and both bad together), W 1 of 1.
    expect(row('all', 'all').upperBound).toEqual({ withTies: c(5, 6), withoutTies: c(3, 4) });
  });

  it("Fleiss' kappa over the three experts on the items all of them voted on", () => {
    // Only X: model_a twice, model_b once: P = 1/3, Pe = 5/9, kappa = -1/2.
    const all = r.fleiss.find((f) => f.turn === 'all')!.result;
    expect(all).toMatchObject({ items: 1, raters: 3 });
    expect(all.kappa).toBeCloseTo(-0.5, 14);
    expect(r.fleiss.find((f) => f.turn === 2)!.result).toMatchObject({ kappa: null, items: 0 });
  });

  it("an annotator's later vote on the same item replaces the earlier one; votes of two LLM judges are refused", () => {
    const again = computeAgreement([...votes, v('81_DE', 1, 'm1', 'm2', 'model_b', 'expert_0')], judgments);
    expect(again.rows.find((x) => x.turn === 1 && x.scope === 'all')!.judgeHuman!.withTies).toEqual(c(1, 3));
    const twoJudges = [...votes, { ...votes[0], judge: ['claude', 'pair-v2'] as [string, string] }];
    expect(() => computeAgreement(twoJudges, judgments)).toThrow('votes from several LLM judges (claude, gpt-4)');
    expect(computeAgreement(twoJudges, judgments, { judge: 'gpt-4' }).rows).toEqual(r.rows);
  });

  it("Fleiss' kappa over chosen raters: more items when fewer raters must all have voted", () => {
    // expert_0 and expert_1 both voted on X (m1, m1), Y (tie, both bad) and Z (m1, m2).
    const k = computeAgreement(votes, judgments, { raters: ['expert_0', 'expert_1'] }).fleiss.find((f) => f.turn === 'all')!.result;
    // counts (a, b, tie, bothbad): X [2,0,0,0], Y [0,0,1,1], Z [1,1,0,0]; P = (1 + 0 + 0)/3; p = (3/6, 1/6, 1/6, 1/6); Pe = 12/36.
    expect(k).toMatchObject({ items: 3, raters: 2 });
    expect(k.kappa).toBeCloseTo((1 / 3 - 1 / 3) / (1 - 1 / 3), 14);
    expect(() => computeAgreement(votes, judgments, { raters: ['expert_9'] })).toThrow('no votes by annotator "expert_9"');
  });

  it('categories from the MT-Bench layout; vote files read with named errors', async () => {
    expect([81, '90_DE', '91_FR', 101, 111, 121, 131, 141, '160_EN', 80, 'x'].map((q) => mtBenchCategory(q))).toEqual(
      ['writing', 'writing', 'roleplay', 'reasoning', 'math', 'coding', 'extraction', 'stem', 'humanities', undefined, undefined],
    );
    const f = join(tmp, 'votes.jsonl');
    writeFileSync(f, votes.map((x) => JSON.stringify(x)).join('\n') + '\n');
    expect(await readVotes(f)).toEqual(votes);
    writeFileSync(f, JSON.stringify(votes[0]) + '\n' + JSON.stringify({ ...votes[0], winner: 'model_c' }) + '\n');
    await expect(readVotes(f)).rejects.toThrow(`${f}:2: field "winner" must be one of "model_a", "model_b", "tie", "tie (bothbad)", found "model_c"`);
    writeFileSync(f, JSON.stringify(votes) + '\n');
    expect(await readVotes(f)).toHaveLength(votes.length); // FastChat's JSON-array files too
  });

  it("equals FastChat's compute_agreement (transcribed) on random votes in random pair orders", () => {
    const r = rng(11);
    const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
    const winners: Vote['winner'][] = ['model_a', 'model_b', 'tie', 'tie (bothbad)'];
    const rv: Vote[] = [];
    for (let q = 81; q < 111; q++) for (const turn of [1, 2]) {
      const [a, b] = pick([['m1', 'm2'], ['m2', 'm3'], ['m1', 'm3']]);
      for (const judge of ['expert_0', 'expert_1', 'expert_2', 'gpt4']) {
        if (r() < 0.25) continue;
        const flip = r() < 0.5;
        rv.push({ question_id: q, turn, model_a: flip ? b : a, model_b: flip ? a : b, winner: pick(winners), judge: judge === 'gpt4' ? ['gpt-4', 'pair-v2'] : judge });
      }
    }
    // FastChat: get_mt_bench_votes_data, get_mt_bench_agreement (gpt4-pair vs human, human vs human).
    const revert = (v: string) => (v === 'model_a' ? 'model_b' : v === 'model_b' ? 'model_a' : v);
    const data: Map<string, Map<string, string[]>>[] = [new Map(), new Map()];
    for (const vote of rv) {
      const key = vote.model_a < vote.model_b ? `${vote.question_id}|${vote.model_a}|${vote.model_b}` : `${vote.question_id}|${vote.model_b}|${vote.model_a}`;
      const winner = vote.model_a < vote.model_b ? vote.winner : revert(vote.winner);
      const judge = Array.isArray(vote.judge) ? 'gpt4-pair' : 'human';
      const d = data[vote.turn - 1];
      if (!d.has(key)) d.set(key, new Map());
      if (!d.get(key)!.has(judge)) d.get(key)!.set(judge, []);
      d.get(key)!.get(judge)!.push(winner);
    }
    const convert = (v: string) => (v.includes('tie') ? 'tie' : v);
    const equal = (x: string, y: string) => (x.includes('tie') && y.includes('tie')) || x === y;
    const fastchat = (d: Map<string, Map<string, string[]>>, j1: string, ban: string[]) => {
      let agree = 0, total = 0;
      for (const votes of d.values()) {
        if (j1 === 'gpt4-pair') {
          if (!votes.has(j1) || !votes.has('human')) continue;
          const g = votes.get(j1)![0];
          if (ban.includes(convert(g))) continue;
          for (const h of votes.get('human')!) { if (ban.includes(convert(h))) continue; total++; agree += Number(equal(g, h)); }
        } else {
          const hs = votes.get('human') ?? [];
          for (let i = 0; i < hs.length - 1; i++) for (let k = i + 1; k < hs.length; k++) {
            if (ban.includes(convert(hs[i])) || ban.includes(convert(hs[k]))) continue;
            total++; agree += Number(equal(hs[i], hs[k]));
          }
        }
      }
      return { agree, total, ratio: total ? agree / total : null };
    };
    const ours = computeAgreement(rv);
    for (const turn of [1, 2] as const) {
      const row = ours.rows.find((x) => x.turn === turn && x.scope === 'all')!;
      expect(row.judgeHuman).toEqual({ withTies: fastchat(data[turn - 1], 'gpt4-pair', []), withoutTies: fastchat(data[turn - 1], 'gpt4-pair', ['tie']) });
      expect(row.humanHuman).toEqual({ withTies: fastchat(data[turn - 1], 'human', []), withoutTies: fastchat(data[turn - 1], 'human', ['tie']) });
      expect(row.judgeHuman!.withTies.total).toBeGreaterThan(20);
    }
  });
});
