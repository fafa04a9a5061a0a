// `polytune report`: one self-contained HTML page (charts as inline SVG images, the answer
// browser's data and script inlined, a CSP that forbids every network request) and each chart
// again as an SVG file beside it.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { replaceFileAtomic } from '../util/durable.js';
import {
  computeAgreement, langDir, listBenchLanguages, loadBenchLanguage, readVotes, summarizeResults,
  type AgreementResult, type BenchLanguage, type ResultsSummary, type Vote,
} from '../mtbench/index.js';
import { packageRoot } from '../tensor/root.js';
import { radarSpec, trainingCurveSpec, winRateSpec, type WinRateBar } from './charts.js';
import { browserData } from './browser-data.js';
import { agreementSection, comparisonSection, positionBiasSection, scoreTable, winRateTable } from './sections.js';
import { esc, scriptJson } from './html.js';
import { readRunCurves, type RunCurves } from './runs.js';
import { renderSvg, renderVegaSvg } from './vega.js';

export interface ReportOptions {
  benchDir: string;
  /** Run folders (the training config's `out`) whose metrics.jsonl become training curves. */
  runs?: string[];
  /** The HTML file; the SVGs go beside it as <stem>-<chart>.svg. */
  out: string;
  /** Languages to include; default every mt_bench_XX folder of benchDir. */
  langs?: string[];
  warn?: (msg: string) => void;
}

export interface ReportChart {
  id: string;
  title: string;
  file: string;
  svg: string;
}

export interface ReportResult {
  out: string;
  charts: ReportChart[];
  languages: string[];
}

/** The human vote files of a language: mt_bench_XX/human_judgment/*.jsonl (what `mtbench annotate` writes). */
export function voteFiles(benchDir: string, lang: string): string[] {
  const dir = join(langDir(benchDir, lang), 'human_judgment');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.jsonl') && !f.startsWith('.')).sort().map((f) => join(dir, f));
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

/** Win-rate bars: each pairing once (the first model of summary.models as `model`), every judge. */
function winRateBars(summary: ResultsSummary): WinRateBar[] {
  const order = (m: string) => summary.models.indexOf(m);
  const bars: WinRateBar[] = [];
  for (const r of summary.pairwise) {
    if (r.category !== 'all' || r.turn !== 'all' || r.opponent === 'all' || order(r.model) > order(r.opponent) || r.total === 0) continue;
    const pair = `${r.model} vs ${r.opponent}${summary.judges.length > 1 ? ` (${r.judge})` : ''}`;
    const counts: [WinRateBar['outcome'], number][] = [['win', r.win], ['tie', r.tie], ['both bad', r.bothBad], ['inconsistent', r.inconsistent], ['loss', r.loss]];
    for (const [outcome, count] of counts) bars.push({ lang: r.lang, pair, outcome, count, share: count / r.total });
  }
  return bars;
}

/** Per-language summaries as one (without the cross-language comparison, which needs them all). */
function mergeSummaries(parts: ResultsSummary[], langs: string[]): ResultsSummary {
  return {
    ...parts[0],
    languages: langs,
    judges: [...new Set(parts.flatMap((s) => s.judges))],
    models: [...new Set(parts.flatMap((s) => s.models))],
    single: parts.flatMap((s) => s.single),
    pairwise: parts.flatMap((s) => s.pairwise),
    positionBias: parts.flatMap((s) => s.positionBias),
    comparison: null,
    files: parts.flatMap((s) => s.files),
  };
}

export async function buildReport(o: ReportOptions): Promise<ReportResult> {
  const warn = o.warn ?? ((m: string) => process.stderr.write(m + '\n'));
  const langs = o.langs?.map((l) => l.toUpperCase()) ?? (await listBenchLanguages(o.benchDir));
  if (langs.length === 0) throw new Error(`${o.benchDir}: no mt_bench_XX folders (the bench dir holds mt_bench_EN/, mt_bench_DE/, ...)`);
  const benches: BenchLanguage[] = [];
  for (const lang of langs) benches.push(await loadBenchLanguage(o.benchDir, lang));
  const full = o.langs ? null : await summarizeResults(o.benchDir);
  const summary = full ?? mergeSummaries(await Promise.all(langs.map((lang) => summarizeResults(o.benchDir, { lang }))), langs);
  const runs: RunCurves[] = (o.runs ?? []).map((d) => readRunCurves(d, warn));
  // Runs are named by their folder; two folders of one name (a/run, b/run) get their parent too.
  const shared = new Set(runs.map((r) => r.name).filter((n, i, a) => a.indexOf(n) !== i));
  for (const r of runs) if (shared.has(r.name)) r.name = `${basename(dirname(resolve(r.dir)))}-${r.name}`;

  const agreement: { lang: string; files: string[]; result: AgreementResult }[] = [];
  for (const b of benches) {
    const files = voteFiles(o.benchDir, b.lang);
    if (files.length === 0) continue;
    const votes: Vote[] = [];
    for (const f of files) votes.push(...(await readVotes(f)));
    const categories = new Map(b.questions.map((q) => [String(q.questionId), q.category]));
    agreement.push({ lang: b.lang, files, result: computeAgreement(votes, b.pairwise, { categories }) });
  }

  const out = resolve(o.out);
  const stem = basename(out, extname(out));
  const charts: ReportChart[] = [];
  const chart = async (id: string, title: string, svg: Promise<string>) => {
    charts.push({ id, title, file: join(dirname(out), `${stem}-${slug(id)}.svg`), svg: await svg });
  };
  const radarModels = [...new Set(summary.single.map((r) => r.model))].sort();
  for (const b of benches) {
    const categories = b.questions.map((q) => q.category).filter((c, i, a) => a.indexOf(c) === i);
    for (const judge of summary.judges) {
      const rows = summary.single.filter((r) => r.lang === b.lang && r.judge === judge && r.category !== 'all');
      if (rows.length === 0) continue;
      const suffix = summary.judges.length > 1 ? ` (${judge})` : '';
      const points = rows.map((r) => ({ category: r.category, model: r.model, score: r.average.mean }));
      await chart(`radar-${b.lang}${suffix ? '-' + judge : ''}`, `${b.lang}: mean score per category${suffix}`, renderVegaSvg(radarSpec(`${b.lang}: mean score per category${suffix}`, categories, points, 360, radarModels)));
    }
  }
  const bars = winRateBars(summary);
  if (bars.length > 0) await chart('win-rates', 'Pairwise outcomes per language', renderSvg(winRateSpec('Pairwise outcomes (both orders agreeing; disagreeing orders are "inconsistent")', bars)));
  for (const r of runs) {
    if (r.points.length === 0) {
      warn(`${r.dir}: metrics.jsonl has no steps yet; no training curve`);
      continue;
    }
    await chart(`training-${r.name}`, `Training: ${r.name}`, renderSvg(trainingCurveSpec(`${r.name}: training loss per step, validation loss per language`, r.points)));
  }

  const html = page({ o, summary, benches, runs, agreement, charts });
  mkdirSync(dirname(out), { recursive: true });
  for (const c of charts) replaceFileAtomic(c.file, c.svg);
  replaceFileAtomic(out, html);
  return { out, charts, languages: langs };
}

interface PageInput {
  o: ReportOptions;
  summary: ResultsSummary;
  benches: BenchLanguage[];
  runs: RunCurves[];
  agreement: { lang: string; files: string[]; result: AgreementResult }[];
  charts: ReportChart[];
}

function figure(c: ReportChart): string {
  const src = `data:image/svg+xml;base64,${Buffer.from(c.svg, 'utf8').toString('base64')}`;
  return `<figure class="chart" id="chart-${esc(slug(c.id))}" data-chart="${esc(c.id)}"><img alt="${esc(c.title)}" src="${src}"><figcaption><a download="${esc(basename(c.file))}" href="${src}">${esc(basename(c.file))}</a></figcaption></figure>`;
}

function page(p: PageInput): string {
  const dir = join(packageRoot(), 'src', 'report', 'static');
  const css = readFileSync(join(dir, 'report.css'), 'utf8');
  const js = readFileSync(join(dir, 'report.js'), 'utf8');
  const byPrefix = (prefix: string) => p.charts.filter((c) => c.id.startsWith(prefix));
  const none = (what: string) => `<p class="none">${what}</p>`;
  const sections: [id: string, title: string, body: string][] = [
    ['scores', 'Scores per category', (byPrefix('radar-').length ? `<div class="charts">${byPrefix('radar-').map(figure).join('')}</div>` : none('No single-answer judgments (model_judgment/*_single.jsonl) yet.')) + scoreTable(p.summary)],
    ['pairwise', 'Pairwise win rates', (byPrefix('win-rates').length ? byPrefix('win-rates').map(figure).join('') : none('No pairwise judgments (model_judgment/*_pair.jsonl) yet.')) + winRateTable(p.summary)],
    ['position-bias', 'Position bias of the judge', positionBiasSection(p.summary)],
    ['agreement', 'Agreement with human votes', agreementSection(p.agreement)],
    ['comparison', 'Mixtures against the monolingual models', comparisonSection(p.summary)],
    ['training', 'Training curves', byPrefix('training-').length ? `<div class="charts">${byPrefix('training-').map(figure).join('')}</div>` : none('No run folders given (--runs DIR...).')],
    ['browser', 'Answer browser', '<div id="answer-browser"></div>'],
  ];
  const generated = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MT-Bench-X report</title>
<style>${css}</style>
</head>
<body>
<header><h1>MT-Bench-X report</h1><p class="meta">${esc(resolve(p.o.benchDir))} · languages ${esc(p.benches.map((b) => b.lang).join(', '))} · judges ${esc(p.summary.judges.join(', ') || 'none')} · generated ${esc(generated)}</p>
<nav>${sections.map(([id, title]) => `<a href="#${id}">${esc(title)}</a>`).join('')}</nav></header>
<main>
${sections.map(([id, title, body]) => `<section id="${id}"><h2>${esc(title)}</h2>${body}</section>`).join('\n')}
</main>
<script type="application/json" id="report-data">${scriptJson(browserData(p.benches))}</script>
<script>${js.replace(/<\/script/gi, '<\\/script')}</script>
</body>
</html>
`;
}
