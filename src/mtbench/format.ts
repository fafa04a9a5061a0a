import type { AgreementCell, AgreementResult, ResultsSummary, ScoreMean } from './types.js';

/** A plain left/right aligned text table (numbers right-aligned). */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const width = head.map((_, j) => Math.max(...cells.map((r) => r[j]?.length ?? 0)));
  const numeric = head.map((_, j) => rows.length > 0 && rows.every((r) => typeof r[j] === 'number' || /^[-+]?[\d.]+%?$|^-$/.test(String(r[j]))));
  const line = (r: string[]) => r.map((c, j) => (numeric[j] ? c.padStart(width[j]) : c.padEnd(width[j]))).join('  ').trimEnd();
  return [line(head), line(width.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

const f2 = (x: number | null) => (x === null ? '-' : x.toFixed(2));
const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const sm = (m: ScoreMean) => f2(m.mean);
const signed = (x: number | null) => (x === null ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(2)}`);

/** The terminal view of `mtbench show`. */
export function formatSummary(s: ResultsSummary): string {
  const parts: string[] = [];
  for (const judge of s.judges) {
    const single = s.single.filter((r) => r.judge === judge);
    if (single.length) {
      const overall = single.filter((r) => r.category === 'all');
      parts.push(`Single-answer grading, judge ${judge}: mean score 1-10 (-1 = no score parsed; counted, not averaged)\n` + table(
        ['lang', 'model', 'turn 1', 'turn 2', 'average', 'scored', '-1'],
        overall.map((r) => [r.lang, r.model, sm(r.turn1), sm(r.turn2), sm(r.average), r.average.n, r.average.invalid]),
      ));
      parts.push(`Average score per category, judge ${judge}\n` + table(
        ['lang', 'model', ...s.categories],
        overall.map((o) => [o.lang, o.model, ...s.categories.map((c) => sm(single.find((r) => r.lang === o.lang && r.model === o.model && r.category === c)?.average ?? { mean: null, n: 0, invalid: 0 }))]),
      ));
    }
    const pw = s.pairwise.filter((r) => r.judge === judge && r.category === 'all' && r.turn === 'all');
    if (pw.length) {
      // Per-opponent rows only add something where a model met more than one opponent.
      const opponents = (r: { lang: string; model: string }) => pw.filter((x) => x.lang === r.lang && x.model === r.model && x.opponent !== 'all').length;
      const ordered = [...pw.filter((r) => r.opponent === 'all'), ...pw.filter((r) => r.opponent !== 'all' && opponents(r) > 1)];
      parts.push(`Pairwise, judge ${judge}: games judged in both orders (inconsistent = the orders disagree; error = no verdict, not in total)\n` + table(
        ['lang', 'model', 'vs', 'win', 'loss', 'tie', 'both bad', 'inconsistent', 'error', 'win rate', 'adjusted'],
        ordered.map((r) => [r.lang, r.model, r.opponent, r.win, r.loss, r.tie, r.bothBad, r.inconsistent, r.errors, pct(r.winRate), pct(r.adjustedWinRate)]),
      ));
    }
    const pb = s.positionBias.filter((r) => r.judge === judge);
    if (pb.length) {
      parts.push(`Position bias, judge ${judge}: games whose two orders disagree, per category\n` + table(
        ['lang', 'category', 'games', 'consistent', 'inconsistent', 'rate', 'favours 1st', 'favours 2nd', 'error'],
        pb.map((r) => [r.lang, r.category, r.games, r.consistent, r.inconsistent, pct(r.inconsistentRate), r.biasedFirst, r.biasedSecond, r.errors]),
      ));
    }
  }
  if (s.comparison && s.comparison.rows.length) {
    const langs = Object.keys(s.comparison.monolingual);
    parts.push(`Mixtures against the monolingual model of each language (${langs.map((l) => `${l}: ${s.comparison!.monolingual[l]}`).join(', ')}): change of the average score\n` + table(
      ['judge', 'mixture', ...langs, 'mean', 'languages'],
      s.comparison.rows.map((r) => [r.judge, r.mixture, ...langs.map((l) => signed(r.perLang.find((p) => p.lang === l)?.delta ?? null)), signed(r.meanDelta), r.languages]),
    ));
  }
  if (parts.length === 0) parts.push(`no judgments under ${s.benchDir} (${s.languages.map((l) => `mt_bench_${l}/model_judgment/`).join(', ')})`);
  return parts.join('\n\n') + '\n';
}

const ac = (c: AgreementCell | undefined) => (c ? `${pct(c.ratio)} (${c.agree}/${c.total})` : '-');

/** The terminal view of `mtbench agreement`. */
export function formatAgreement(r: AgreementResult): string {
  const withJudge = r.rows.some((x) => x.judgeHuman !== null);
  const head = ['turn', 'scope', ...(withJudge ? ['judge-human', 'judge-human w/o ties', 'upper bound', 'upper bound w/o ties'] : []), 'human-human', 'human-human w/o ties'];
  const rows = r.rows.filter((x) => x.humanHuman.withTies.total > 0 || (x.judgeHuman?.withTies.total ?? 0) > 0).map((x) => [
    String(x.turn), x.scope,
    ...(withJudge ? [ac(x.judgeHuman?.withTies), ac(x.judgeHuman?.withoutTies), ac(x.upperBound.withTies), ac(x.upperBound.withoutTies)] : []),
    ac(x.humanHuman.withTies), ac(x.humanHuman.withoutTies),
  ]);
  const c = r.counts;
  const out = [
    `${c.humanVotes} human votes by ${c.humans} annotator(s), ${c.judgeVotes} judge votes${c.judgeErrorsSkipped ? ` (${c.judgeErrorsSkipped} judgments with an error verdict skipped)` : ''}, ${c.items} items (question, turn, model pair)`,
    table(head, rows),
    'Fleiss\' kappa over the human raters (items every rater voted on; categories model_a, model_b, tie, both bad)',
    table(['turn', 'kappa', 'z', 'p', 'items', 'raters', 'note'], r.fleiss.map(({ turn, result: k }) => [
      String(turn), k.kappa === null ? '-' : k.kappa.toFixed(3), k.z === null ? '-' : k.z.toFixed(2), k.pValue === null ? '-' : k.pValue < 1e-4 ? k.pValue.toExponential(1) : k.pValue.toFixed(4), k.items, k.raters, k.reason ?? '',
    ])),
  ];
  return out.join('\n\n') + '\n';
}
