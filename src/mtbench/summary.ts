import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readMtBenchQuestions } from '../data/mtBench.js';
import { judgmentFiles, langDir, listBenchLanguages, readJudgmentFile } from './bench-files.js';
import type {
  MixtureComparisonRow, PairJudgment, PairwiseRow, PositionBiasRow, ResultsSummary, ScoreMean, SingleJudgment, SingleScoreRow, SummarizeOptions,
} from './types.js';

const ALL = 'all';

function mean(scores: number[]): ScoreMean {
  const valid = scores.filter((s) => s !== -1);
  return { mean: valid.length ? valid.reduce((a, b) => a + b, 0) / valid.length : null, n: valid.length, invalid: scores.length - valid.length };
}

/** Outcome of a pairwise game for model_1 (both orders already mapped to models). */
export type GameOutcome = 'win' | 'loss' | 'tie' | 'bothBad' | 'inconsistent' | 'error';

export function gameOutcome(p: Pick<PairJudgment, 'g1_winner' | 'g2_winner'>): GameOutcome {
  if (p.g1_winner === 'error' || p.g2_winner === 'error') return 'error';
  if (p.g1_winner !== p.g2_winner) return 'inconsistent';
  return p.g1_winner === 'model_1' ? 'win' : p.g1_winner === 'model_2' ? 'loss' : p.g1_winner === 'tie' ? 'tie' : 'bothBad';
}

const flip: Record<GameOutcome, GameOutcome> = { win: 'loss', loss: 'win', tie: 'tie', bothBad: 'bothBad', inconsistent: 'inconsistent', error: 'error' };

type Counts = Pick<PairwiseRow, 'win' | 'loss' | 'tie' | 'bothBad' | 'inconsistent' | 'errors'>;

function rates(c: Counts): Pick<PairwiseRow, 'total' | 'winRate' | 'lossRate' | 'adjustedWinRate'> {
  const total = c.win + c.loss + c.tie + c.bothBad + c.inconsistent;
  return {
    total,
    winRate: total ? c.win / total : null,
    lossRate: total ? c.loss / total : null,
    adjustedWinRate: total ? (c.win + 0.5 * (c.tie + c.inconsistent)) / total : null,
  };
}

interface LangData {
  lang: string;
  category: Map<string, string>;
  categories: string[];
  single: SingleJudgment[];
  pairwise: PairJudgment[];
  files: string[];
}

async function readLang(benchDir: string, lang: string): Promise<LangData> {
  const dir = langDir(benchDir, lang);
  const qFile = join(dir, 'question.jsonl');
  if (!existsSync(qFile)) throw new Error(`${qFile}: no question file for language ${lang}`);
  const questions = await readMtBenchQuestions(qFile);
  const category = new Map(questions.map((q) => [String(q.questionId), q.category]));
  const categories = [...new Set(questions.map((q) => q.category))];
  const files = await judgmentFiles(dir);
  const perFile = [];
  for (const f of files) {
    const r = await readJudgmentFile(f, { inProgress: true });
    for (const rec of [...r.single, ...r.pairwise]) {
      if (!category.has(String(rec.question_id))) throw new Error(`${f}: a judgment of question ${JSON.stringify(rec.question_id)}, which is not in ${qFile}`);
    }
    perFile.push({ f, ...r });
  }
  // One judge model in two files of a kind (say pair-v2 prompts with and without [[D]], written
  // with --out) would otherwise be merged record by record: each file becomes its own judge then.
  const filesOf = new Map<string, Set<string>>();
  for (const { f, single: s1, pairwise: p1 } of perFile) {
    for (const [kind, recs] of [['single', s1], ['pair', p1]] as const) {
      for (const r of recs) {
        const k = `${kind}\t${r.judge[0]}`;
        if (!filesOf.has(k)) filesOf.set(k, new Set());
        filesOf.get(k)!.add(f);
      }
    }
  }
  const relabel = <T extends SingleJudgment | PairJudgment>(kind: string, f: string, r: T): T =>
    filesOf.get(`${kind}\t${r.judge[0]}`)!.size > 1 ? { ...r, judge: [`${r.judge[0]} (${basename(f)})`, r.judge[1]] } : r;
  const single = perFile.flatMap(({ f, single: s1 }) => s1.map((r) => relabel('single', f, r)));
  const pairwise = perFile.flatMap(({ f, pairwise: p1 }) => p1.map((r) => relabel('pair', f, r)));
  return {
    lang,
    category,
    categories,
    // Every record counts, repeats included, as in FastChat's show_result.py (which reads the files
    // with pandas and groups them): published means come from it, and a file judged twice by
    // FastChat (its gen_judgment appends) then gives the same numbers here. Our judge never repeats
    // a finished record, so its own files have no repeats to count.
    single,
    pairwise,
    files,
  };
}

function singleRows(d: LangData): SingleScoreRow[] {
  const groups = new Map<string, SingleJudgment[]>();
  for (const s of d.single) {
    for (const cat of [d.category.get(String(s.question_id))!, ALL]) {
      const k = JSON.stringify([s.judge[0], s.model, cat]);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = []));
      g.push(s);
    }
  }
  const rows: SingleScoreRow[] = [];
  for (const [k, g] of groups) {
    const [judge, model, category] = JSON.parse(k) as string[];
    rows.push({
      judge, lang: d.lang, model, category,
      turn1: mean(g.filter((s) => s.turn === 1).map((s) => s.score)),
      turn2: mean(g.filter((s) => s.turn === 2).map((s) => s.score)),
      average: mean(g.map((s) => s.score)),
    });
  }
  return rows;
}

function pairwiseRows(d: LangData): PairwiseRow[] {
  const groups = new Map<string, Counts>();
  const add = (key: unknown[], o: GameOutcome) => {
    const k = JSON.stringify(key);
    let c = groups.get(k);
    if (!c) groups.set(k, (c = { win: 0, loss: 0, tie: 0, bothBad: 0, inconsistent: 0, errors: 0 }));
    if (o === 'error') c.errors++;
    else c[o]++;
  };
  for (const p of d.pairwise) {
    const o = gameOutcome(p);
    const cat = d.category.get(String(p.question_id))!;
    for (const [model, opponent, out] of [[p.model_1, p.model_2, o], [p.model_2, p.model_1, flip[o]]] as const) {
      for (const opp of [opponent, ALL]) for (const c of [cat, ALL]) for (const t of [p.turn, ALL]) add([p.judge[0], model, opp, c, t], out);
    }
  }
  return [...groups].map(([k, c]) => {
    const [judge, model, opponent, category, turn] = JSON.parse(k) as [string, string, string, string, 1 | 2 | 'all'];
    return { judge, lang: d.lang, model, opponent, category, turn, ...c, ...rates(c) };
  });
}

function positionBiasRows(d: LangData): PositionBiasRow[] {
  const groups = new Map<string, Omit<PositionBiasRow, 'judge' | 'lang' | 'category' | 'inconsistentRate'>>();
  for (const p of d.pairwise) {
    for (const cat of [d.category.get(String(p.question_id))!, ALL]) {
      const k = JSON.stringify([p.judge[0], cat]);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { games: 0, consistent: 0, inconsistent: 0, biasedFirst: 0, biasedSecond: 0, errors: 0 }));
      const o = gameOutcome(p);
      if (o === 'error') { g.errors++; continue; }
      g.games++;
      if (o !== 'inconsistent') { g.consistent++; continue; }
      g.inconsistent++;
      // g1 shows model_1 as A, g2 shows model_2 as A.
      if (p.g1_winner === 'model_1' && p.g2_winner === 'model_2') g.biasedFirst++;
      else if (p.g1_winner === 'model_2' && p.g2_winner === 'model_1') g.biasedSecond++;
    }
  }
  return [...groups].map(([k, g]) => {
    const [judge, category] = JSON.parse(k) as string[];
    return { judge, lang: d.lang, category, ...g, inconsistentRate: g.games ? g.inconsistent / g.games : null };
  });
}

/** Language-code tokens of a model name (split on - _ . /), among the bench's languages. */
function langTokens(model: string, langs: string[]): string[] {
  const set = new Set(langs.map((l) => l.toUpperCase()));
  return model.split(/[-_./]/).map((t) => t.toUpperCase()).filter((t) => set.has(t));
}

function comparison(single: SingleScoreRow[], langs: string[], categories: string[], template?: string): ResultsSummary['comparison'] {
  const judges = [...new Set(single.map((r) => r.judge))];
  const modelsIn = (lang: string) => [...new Set(single.filter((r) => r.lang === lang).map((r) => r.model))];
  const mono: Record<string, string> = {};
  for (const lang of langs) {
    const models = modelsIn(lang);
    let found: string[];
    if (template) {
      const name = template.replaceAll('{lang}', lang.toLowerCase()).replaceAll('{LANG}', lang.toUpperCase());
      found = models.includes(name) ? [name] : [];
    } else {
      found = models.filter((m) => { const t = langTokens(m, langs); return t.length === 1 && t[0] === lang.toUpperCase(); });
    }
    if (found.length === 1) mono[lang] = found[0];
  }
  const used = Object.keys(mono);
  if (used.length === 0) return null;
  const monoNames = new Set(Object.values(mono));
  const isMixture = (m: string) => !monoNames.has(m) && (template ? true : langTokens(m, langs).length !== 1);
  const mixtures = [...new Set(single.map((r) => r.model))].filter(isMixture).sort();
  const score = (judge: string, lang: string, model: string, cat: string) => single.find((r) => r.judge === judge && r.lang === lang && r.model === model && r.category === cat)?.average.mean ?? null;
  const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const rows: MixtureComparisonRow[] = [];
  for (const judge of judges) {
    for (const mixture of mixtures) {
      const perLang = used.map((lang) => {
        const mix = score(judge, lang, mixture, ALL), mo = score(judge, lang, mono[lang], ALL);
        return { lang, monolingual: mono[lang], mixture: mix, monolingualScore: mo, delta: mix !== null && mo !== null ? mix - mo : null };
      });
      if (perLang.every((p) => p.mixture === null)) continue;
      const deltas = perLang.map((p) => p.delta).filter((x): x is number => x !== null);
      const perCategory: Record<string, number | null> = {};
      for (const cat of categories) {
        const ds = used.map((lang) => {
          const a = score(judge, lang, mixture, cat), b = score(judge, lang, mono[lang], cat);
          return a !== null && b !== null ? a - b : null;
        }).filter((x): x is number => x !== null);
        perCategory[cat] = avg(ds);
      }
      rows.push({ judge, mixture, perLang, meanDelta: avg(deltas), languages: deltas.length, perCategory });
    }
  }
  return { monolingual: mono, rows };
}

/**
 * What `mtbench show --json` prints: single-answer means per judge, language, model, category
 * and turn (-1 counted, excluded); pairwise outcomes, win rates and adjusted win rates; the
 * judge's position bias per category; the mixtures against the monolingual models.
 */
export async function summarizeResults(benchDir: string, opts: SummarizeOptions = {}): Promise<ResultsSummary> {
  const langs = opts.lang ? [opts.lang] : await listBenchLanguages(benchDir);
  if (langs.length === 0) throw new Error(`${benchDir}: no mt_bench_XX folders`);
  const data = await Promise.all(langs.map((l) => readLang(benchDir, l)));
  const categories = data[0].categories;
  // Categories in question order with "all" last; turns 1, 2, all; models in order of appearance.
  const catRank = (c: string) => (c === ALL ? Number.MAX_SAFE_INTEGER : categories.indexOf(c) >= 0 ? categories.indexOf(c) : categories.length);
  const turnRank = (t: 1 | 2 | 'all') => (t === ALL ? 3 : t);
  const byCat = <T extends { category: string }>(rows: T[]) => rows.map((r, i) => [r, i] as const).sort((a, b) => catRank(a[0].category) - catRank(b[0].category) || a[1] - b[1]).map(([r]) => r);
  const single = data.flatMap((d) => byCat(singleRows(d)));
  const pairwise = data.flatMap((d) => byCat(pairwiseRows(d)).sort((a, b) => turnRank(a.turn) - turnRank(b.turn)));
  const positionBias = data.flatMap((d) => byCat(positionBiasRows(d)));
  const cmp = comparison(single, langs, categories, opts.monolingual);
  return {
    benchDir,
    languages: langs,
    categories,
    judges: [...new Set([...single, ...pairwise, ...positionBias].map((r) => r.judge))].sort(),
    models: [...new Set([...single.map((r) => r.model), ...pairwise.map((r) => r.model)])].sort(),
    single: single,
    pairwise: pairwise,
    positionBias: positionBias,
    comparison: cmp,
    files: data.flatMap((d) => d.files),
  };
}
