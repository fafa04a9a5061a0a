import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { summarizeResults, type PairJudgment, type PairWinner, type SingleJudgment } from '../../src/mtbench/index.js';
import { rng } from '../helpers/random.js';

const root = mkdtempSync(join(tmpdir(), 'polytune-summary-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
let n = 0;

/** A bench dir with questions and the given judgment files per language. */
function bench(langs: Record<string, { questions: { id: string; category: string }[]; files: Record<string, unknown[]> }>): string {
  const dir = join(root, `s${n++}`);
  for (const [lang, d] of Object.entries(langs)) {
    mkdirSync(join(dir, `mt_bench_${lang}`, 'model_judgment'), { recursive: true });
    writeFileSync(join(dir, `mt_bench_${lang}`, 'question.jsonl'), jsonl(d.questions.map((q) => ({ question_id: q.id, category: q.category, turns: ['a', 'b'] }))));
    for (const [name, rows] of Object.entries(d.files)) writeFileSync(join(dir, `mt_bench_${lang}`, 'model_judgment', name), jsonl(rows));
  }
  return dir;
}
const single = (question_id: string, model: string, turn: number, score: number): SingleJudgment => ({
  question_id, model, judge: ['gpt-4', turn === 1 ? 'single-v1' : 'single-v1-multi-turn'], user_prompt: '', judgment: '', score, turn, tstamp: 0,
});

describe('summarizeResults', () => {
  it("matches FastChat's show_result on random pairwise and single records (no both-bad)", async () => {
    const r = rng(7);
    const models = ['a', 'b', 'c'];
    const winners: PairWinner[] = ['model_1', 'model_2', 'tie', 'error'];
    const questions = Array.from({ length: 20 }, (_, i) => ({ id: `${81 + i}_XX`, category: ['writing', 'math'][i % 2] }));
    const pairs: PairJudgment[] = [];
    const singles: SingleJudgment[] = [];
    for (const q of questions) for (const turn of [1, 2]) {
      for (let i = 0; i < 3; i++) for (let k = i + 1; k < 3; k++) {
        pairs.push({ question_id: q.id, model_1: models[i], model_2: models[k], g1_winner: winners[Math.floor(r() * 4)], g2_winner: winners[Math.floor(r() * 4)], judge: ['gpt-4', 'pair-v2'], g1_user_prompt: '', g1_judgment: '', g2_user_prompt: '', g2_judgment: '', turn, tstamp: 0 });
      }
      for (const m of models) singles.push(single(q.id, m, turn, r() < 0.1 ? -1 : 1 + Math.floor(r() * 10)));
    }
    const s = await summarizeResults(bench({ XX: { questions, files: { 'gpt-4_pair.jsonl': pairs, 'gpt-4_single.jsonl': singles } } }));

    // FastChat show_result.display_result_pairwise (pairwise-all), transcribed.
    const fc = new Map<string, { win: number; loss: number; tie: number }>();
    const add = (m: string, k: 'win' | 'loss' | 'tie') => { const e = fc.get(m) ?? { win: 0, loss: 0, tie: 0 }; e[k]++; fc.set(m, e); };
    for (const row of pairs.filter((p) => p.g1_winner !== 'error' && p.g2_winner !== 'error')) {
      if (row.g1_winner === 'tie' || row.g1_winner !== row.g2_winner) { add(row.model_1, 'tie'); add(row.model_2, 'tie'); }
      else if (row.g1_winner === 'model_1') { add(row.model_1, 'win'); add(row.model_2, 'loss'); }
      else { add(row.model_2, 'win'); add(row.model_1, 'loss'); }
    }
    for (const m of models) {
      const e = fc.get(m)!;
      const total = e.win + e.loss + e.tie;
      const ours = s.pairwise.find((x) => x.model === m && x.opponent === 'all' && x.category === 'all' && x.turn === 'all')!;
      expect({ win: ours.win, loss: ours.loss, tie: ours.tie + ours.inconsistent, bothBad: ours.bothBad }).toEqual({ ...e, bothBad: 0 });
      expect(ours.winRate).toBeCloseTo(e.win / total, 12);
      expect(ours.lossRate).toBeCloseTo(e.loss / total, 12);
      expect(ours.adjustedWinRate).toBeCloseTo((e.win + 0.5 * e.tie) / total, 12);
    }
    // FastChat show_result.display_result_single: -1 dropped, mean per model and turn, and pooled.
    for (const m of models) {
      const valid = singles.filter((x) => x.model === m && x.score !== -1);
      const avg = (xs: number[]) => xs.reduce((p, q) => p + q, 0) / xs.length;
      const ours = s.single.find((x) => x.model === m && x.category === 'all')!;
      expect(ours.turn1.mean).toBeCloseTo(avg(valid.filter((x) => x.turn === 1).map((x) => x.score)), 12);
      expect(ours.turn2.mean).toBeCloseTo(avg(valid.filter((x) => x.turn === 2).map((x) => x.score)), 12);
      expect(ours.average.mean).toBeCloseTo(avg(valid.map((x) => x.score)), 12);
      expect(ours.average.invalid).toBe(singles.filter((x) => x.model === m && x.score === -1).length);
    }
  });

  it('the mixture against the monolingual model of each language, averaged across languages', async () => {
    const qs = (lang: string) => [{ id: `81_${lang}`, category: 'writing' }, { id: `111_${lang}`, category: 'math' }];
    const scores = (lang: string, model: string, s: number[]) => [single(`81_${lang}`, model, 1, s[0]), single(`81_${lang}`, model, 2, s[1]), single(`111_${lang}`, model, 1, s[2]), single(`111_${lang}`, model, 2, s[3])];
    const dir = bench({
      DE: { questions: qs('DE'), files: { 'gpt-4_single.jsonl': [...scores('DE', 'sft-DE', [6, 4, 2, -1]), ...scores('DE', 'mix-ENDEFRITES', [7, 5, 3, 3]), ...scores('DE', 'sft-FR', [1, 1, 1, 1])] } },
      FR: { questions: qs('FR'), files: { 'gpt-4_single.jsonl': [...scores('FR', 'sft-FR', [8, 8, 4, 4]), ...scores('FR', 'mix-ENDEFRITES', [5, 5, 5, 5])] } },
    });
    // DE: mixture 18/4 = 4.5, monolingual 12/3 = 4 -> +0.5; FR: 5 - 6 = -1; mean -0.25.
    // writing: DE 6 - 5 = +1, FR 5 - 8 = -3 -> -1; math: DE 3 - 2 = +1, FR 5 - 4 = +1 -> +1.
    const expected = {
      monolingual: { DE: 'sft-DE', FR: 'sft-FR' },
      rows: [{
        judge: 'gpt-4', mixture: 'mix-ENDEFRITES', meanDelta: -0.25, languages: 2, perCategory: { writing: -1, math: 1 },
        perLang: [
          { lang: 'DE', monolingual: 'sft-DE', mixture: 4.5, monolingualScore: 4, delta: 0.5 },
          { lang: 'FR', monolingual: 'sft-FR', mixture: 5, monolingualScore: 6, delta: -1 },
        ],
      }],
    };
    expect((await summarizeResults(dir)).comparison).toEqual(expected);
    expect((await summarizeResults(dir, { monolingual: 'sft-{LANG}' })).comparison).toEqual(expected);
    expect((await summarizeResults(dir, { monolingual: 'nobody-{lang}' })).comparison).toBeNull();
    const de = await summarizeResults(dir, { lang: 'DE' });
    expect(de.languages).toEqual(['DE']);
    expect(de.comparison!.rows[0].meanDelta).toBe(0.5);
  });

  it('one judge model in two files of a kind (v1 and v2 prompts) stays two judges, named by file', async () => {
    const pair = (g: PairWinner): PairJudgment => ({ question_id: '81_XX', model_1: 'a', model_2: 'b', g1_winner: g, g2_winner: g, judge: ['gpt-4', 'pair-v2'], g1_user_prompt: '', g1_judgment: '', g2_user_prompt: '', g2_judgment: '', turn: 1, tstamp: 0 });
    const dir = bench({ XX: { questions: [{ id: '81_XX', category: 'writing' }], files: { 'gpt-4_pair.jsonl': [pair('model_1')], 'gpt-4_pair_v2.jsonl': [pair('tie (bothbad)')], 'gpt-4_single.jsonl': [single('81_XX', 'a', 1, 7)] } } });
    const s = await summarizeResults(dir);
    expect(s.judges).toEqual(['gpt-4', 'gpt-4 (gpt-4_pair.jsonl)', 'gpt-4 (gpt-4_pair_v2.jsonl)']);
    const a = (judge: string) => s.pairwise.find((x) => x.judge === judge && x.model === 'a' && x.opponent === 'all' && x.category === 'all' && x.turn === 'all');
    expect(a('gpt-4 (gpt-4_pair.jsonl)')).toMatchObject({ win: 1, bothBad: 0 });
    expect(a('gpt-4 (gpt-4_pair_v2.jsonl)')).toMatchObject({ win: 0, bothBad: 1 });
    expect(s.single[0].judge).toBe('gpt-4');
  });

  it('a judgment of a question the question file lacks is a named error', async () => {
    const dir = bench({ XX: { questions: [{ id: '81_XX', category: 'writing' }], files: { 'j_single.jsonl': [single('99_XX', 'm', 1, 5)] } } });
    await expect(summarizeResults(dir)).rejects.toThrow(`${join(dir, 'mt_bench_XX/model_judgment/j_single.jsonl')}: a judgment of question "99_XX", which is not in ${join(dir, 'mt_bench_XX/question.jsonl')}`);
    const bad = bench({ XX: { questions: [{ id: '81_XX', category: 'writing' }], files: { 'j_single.jsonl': [single('81_XX', 'm', 1, 5), { question_id: '81_XX', model: 'm', judge: 'gpt-4', turn: 1 }] } } });
    await expect(summarizeResults(bad)).rejects.toThrow(`${join(bad, 'mt_bench_XX/model_judgment/j_single.jsonl')}:2: field "judge" must be [judge_model, prompt_name]`);
  });
});

const realDe = join(import.meta.dirname, '../../../shared/data/mt-bench-x');
const haveReal = existsSync(join(realDe, 'mt_bench_DE/model_judgment/gpt-4_single.jsonl'));
describe.skipIf(!haveReal)(`on the real German judgment sample${haveReal ? '' : ` (skipped: ${realDe} is absent)`}`, () => {
  it("counts repeated records and $ERROR$ rows as FastChat's show_result does", async () => {
    const rows = readFileSync(join(realDe, 'mt_bench_DE/model_judgment/gpt-4_single.jsonl'), 'utf8')
      .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { score: number; model: string });
    // show_result.py: df[df.score != -1].groupby("model").mean(), no deduplication.
    const valid = rows.filter((r) => r.score !== -1).map((r) => r.score);
    const sum = await summarizeResults(realDe, { lang: 'DE' });
    const all = sum.single.find((x) => x.category === 'all')!;
    expect(all.average.n).toBe(valid.length);
    expect(all.average.invalid).toBe(rows.length - valid.length);
    expect(all.average.mean).toBeCloseTo(valid.reduce((a, b) => a + b, 0) / valid.length, 12);
    expect(rows.length - valid.length).toBeGreaterThan(0);
  });
});
