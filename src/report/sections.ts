// The report's tables, straight from summarizeResults / computeAgreement (the numbers `mtbench show`
// and `mtbench agreement` print), so the page and the terminal never disagree.
import type { AgreementCell, AgreementPair, AgreementResult, ResultsSummary, ScoreMean } from '../mtbench/index.js';
import { esc, fixed, pct, table, type Cell } from './html.js';

const none = (what: string) => `<p class="none">${esc(what)}</p>`;
const mean = (m: ScoreMean | undefined) => fixed(m?.mean ?? null);
const groups = <T>(rows: T[], key: (r: T) => string) => {
  const m = new Map<string, T[]>();
  for (const r of rows) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
  return m;
};

/** Mean single-answer score of each model per category; -1 grades are counted apart, never averaged. */
export function scoreTable(s: ResultsSummary): string {
  if (s.single.length === 0) return '';
  const out: string[] = [];
  for (const [k, rows] of groups(s.single, (r) => `${r.lang}\u0000${r.judge}`)) {
    const [lang, judge] = k.split('\u0000');
    const cats = s.categories.filter((c) => rows.some((r) => r.category === c));
    const models = [...new Set(rows.map((r) => r.model))];
    const body = models.map((m) => {
      const of = (c: string) => rows.find((r) => r.model === m && r.category === c);
      const all = of('all');
      return [m, ...cats.map((c) => mean(of(c)?.average)), mean(all?.average), mean(all?.turn1), mean(all?.turn2), all ? all.average.invalid : null] as Cell[];
    });
    out.push(`<h3>${esc(lang)} · judge ${esc(judge)}</h3>` + table(['model', ...cats, 'average', 'turn 1', 'turn 2', 'no score (-1)'], body, `class="scores" data-lang="${esc(lang)}"`));
  }
  return out.join('');
}

export function winRateTable(s: ResultsSummary): string {
  const order = (m: string) => s.models.indexOf(m);
  const rows = s.pairwise.filter((r) => r.category === 'all' && r.turn === 'all' && r.opponent !== 'all' && order(r.model) < order(r.opponent));
  if (rows.length === 0) return '';
  return table(
    ['language', 'judge', 'model', 'opponent', 'win', 'loss', 'tie', 'both bad', 'inconsistent', 'errors', 'games', 'win rate', 'adjusted win rate'],
    rows.map((r) => [r.lang, r.judge, r.model, r.opponent, r.win, r.loss, r.tie, r.bothBad, r.inconsistent, r.errors, r.total, pct(r.winRate), pct(r.adjustedWinRate)]),
    'class="win-rates"',
  ) + '<p class="note">A game is one question and turn judged in both orders. Win, loss, tie and both bad need both orders to agree; "inconsistent" games are the orders disagreeing. Adjusted win rate = (win + 0.5 × (tie + inconsistent)) / games, as FastChat; both bad earns nothing. Errors (no verdict in an order) are not games.</p>';
}

export function positionBiasSection(s: ResultsSummary): string {
  if (s.positionBias.length === 0) return none('No pairwise judgments yet: position bias needs each game judged in both orders.');
  const out: string[] = [];
  for (const [k, rows] of groups(s.positionBias, (r) => `${r.lang}\u0000${r.judge}`)) {
    const [lang, judge] = k.split('\u0000');
    const sorted = [...rows].sort((a, b) => (a.category === 'all' ? 1 : 0) - (b.category === 'all' ? 1 : 0));
    out.push(`<h3>${esc(lang)} · judge ${esc(judge)}</h3>` + table(
      ['category', 'games', 'consistent', 'inconsistent', 'inconsistent rate', 'both orders chose first (A)', 'both orders chose second (B)', 'errors'],
      sorted.map((r) => [r.category, r.games, r.consistent, r.inconsistent, pct(r.inconsistentRate), r.biasedFirst, r.biasedSecond, r.errors]),
      `class="position-bias" data-lang="${esc(lang)}"`,
    ));
  }
  return out.join('') + '<p class="note">The judge sees every pair twice, the answers swapped. A game is inconsistent when the two verdicts disagree; "chose first" counts the inconsistent games where the judge preferred whichever answer was shown first both times (position bias), "chose second" the opposite.</p>';
}

const cellText = (c: AgreementCell | undefined): Cell => (c && c.total > 0 ? `${pct(c.ratio)} (${c.agree}/${c.total})` : null);
const pairCells = (p: AgreementPair | null | undefined): Cell[] => [cellText(p?.withTies), cellText(p?.withoutTies)];

export function agreementSection(list: { lang: string; files: string[]; result: AgreementResult }[]): string {
  if (list.length === 0) return none('No human votes yet (mt_bench_XX/human_judgment/*.jsonl, written by `polytune mtbench annotate`).');
  return list.map(({ lang, files, result }) => {
    const c = result.counts;
    return `<h3>${esc(lang)}</h3><p class="meta">${esc(files.join(', '))}: ${c.humanVotes} human votes by ${c.humans} annotators, ${c.judgeVotes} judge verdicts (${c.judgeErrorsSkipped} errors left out), ${c.items} items</p>` +
      table(
        ['turn', 'scope', 'judge–human (with ties)', 'judge–human (without ties)', 'human–human (with ties)', 'human–human (without ties)', 'upper bound (with ties)', 'upper bound (without ties)'],
        // Categories nobody voted on would only add rows of dashes.
        result.rows
          .filter((r) => (r.judgeHuman?.withTies.total ?? 0) + r.humanHuman.withTies.total + r.upperBound.withTies.total > 0)
          .map((r) => [String(r.turn), r.scope, ...pairCells(r.judgeHuman), ...pairCells(r.humanHuman), ...pairCells(r.upperBound)]),
        `class="agreement" data-lang="${esc(lang)}"`,
      ) +
      table(
        ['turn', "Fleiss' kappa", 'z', 'p-value', 'items', 'raters', 'note'],
        result.fleiss.map(({ turn, result: f }) => [String(turn), fixed(f.kappa, 3), fixed(f.z, 2), f.pValue === null ? null : f.pValue.toExponential(2), f.items, f.raters, f.reason ?? '']),
        `class="fleiss" data-lang="${esc(lang)}"`,
      );
  }).join('') + '<p class="note">Pairs of votes on the same question, turn and model pair (the verdict flipped where the pair was shown the other way round). "Without ties" drops pairs where either vote is a tie or both bad. The upper bound is the agreement of the human majority with the individual humans: no judge can agree with humans more than they agree among themselves. Kappa is over the items every counted annotator voted on.</p>';
}

export function comparisonSection(s: ResultsSummary): string {
  const c = s.comparison;
  if (!c || c.rows.length === 0) return none('No comparison: it needs single-answer scores of a monolingual model (one language in its name) and of mixtures in each language.');
  const langs = [...new Set(c.rows.flatMap((r) => r.perLang.map((p) => p.lang)))].sort();
  const cats = [...new Set(c.rows.flatMap((r) => Object.keys(r.perCategory)))];
  const sign = (x: number | null | undefined) => (x === null || x === undefined ? null : (x >= 0 ? '+' : '') + x.toFixed(2));
  return `<p class="meta">Monolingual models: ${esc(Object.entries(c.monolingual).map(([l, m]) => `${l} ${m}`).join(', '))}</p>` +
    table(
      ['mixture', 'judge', 'mean change', 'languages', ...langs.map((l) => `Δ ${l}`), ...cats.map((k) => `Δ ${k}`)],
      c.rows.map((r) => [r.mixture, r.judge, sign(r.meanDelta), r.languages, ...langs.map((l) => sign(r.perLang.find((p) => p.lang === l)?.delta)), ...cats.map((k) => sign(r.perCategory[k]))]),
      'class="comparison"',
    ) + '<p class="note">Change of the average judge score of each multilingual mixture over the monolingual model of the same language, averaged across languages.</p>';
}
