// The study's grid: one dataset trained under each language mixture (mono per language, all
// languages at once, sampled), one run folder per variant, one table and chart to compare them.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { replaceFileAtomic } from '../util/durable.js';
import type { Mixture } from '../data/index.js';
import { renderSvg, type VegaLiteSpec } from '../report/vega.js';
import { loadRunConfig, readConfigFile, type RunConfig } from './config.js';
import { configFingerprint, configPart, fingerprintDiff } from './fingerprint.js';
import { runTraining, type TrainOptions } from './loop.js';
import { readMetrics } from './metrics.js';
import { SUMMARY_FILE, type RunStatus, type RunSummary } from './summary.js';

/** A study file (YAML or JSON), checked, with paths resolved against its folder. */
export interface GridSpec {
  /** The study file, for messages. */
  file: string;
  /** The run config every variant starts from. */
  run: string;
  /** Folder holding one sub-folder per variant and the grid's table and chart. */
  out: string;
  /** Variant names to run, in order; default: every one the run's languages allow. */
  variants?: string[];
  /** `--set`-style overrides applied to every variant, before its own mixture and folder. */
  set: string[];
}

export interface GridVariant {
  name: string;
  mixture: Mixture;
  /** What the variant trains on, for the table. */
  description: string;
}

/**
 * The seven variants of the study for five languages: each language alone, all of them (every
 * item in every language: "ENDEFRITES"), and sampled (every item once, in one language).
 * A mono variant is the weights mixture with all weight on its language: it trains on that language
 * only, but keeps every configured language for validation, so all variants are scored on the same
 * validation items in the same languages and the table compares like with like.
 */
export function gridVariants(languages: readonly string[]): GridVariant[] {
  const mono = languages.map((lang) => ({
    name: lang,
    mixture: { weights: Object.fromEntries(languages.map((l) => [l, l === lang ? 1 : 0])) },
    description: `${lang} only`,
  }));
  if (languages.length === 1) return mono;
  return [
    ...mono,
    { name: languages.join(''), mixture: 'all', description: `every item in all of ${languages.join(', ')}` },
    { name: 'sampled', mixture: 'sampled', description: 'every item once, in a language drawn evenly' },
  ];
}

const specSchema = z.strictObject({
  run: z.string().min(1, 'must be a non-empty path to a run config'),
  out: z.string().min(1).optional(),
  variants: z.array(z.string().min(1)).min(1).optional(),
  set: z.array(z.string().includes('=', { message: 'must be a list of key.path=value overrides' })).optional(),
});

/** Reads a study file: `run` (a run config), optional `out`, `variants` and `set`. */
export function loadGridSpec(file: string): GridSpec {
  const raw = readConfigFile(file);
  const r = specSchema.safeParse(raw, { reportInput: true });
  if (!r.success) {
    const lines = r.error.issues.map((iss) => {
      const path = iss.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '');
      if (iss.code === 'unrecognized_keys') return `${file}: field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')} not a grid setting (known: run, out, variants, set)`;
      return `${file}: field "${path}" ${iss.message}`;
    });
    throw new Error(lines.join('\n'));
  }
  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  return {
    file,
    run: abs(r.data.run),
    out: abs(r.data.out ?? `runs/${basename(file, extname(file))}`),
    variants: r.data.variants,
    set: r.data.set ?? [],
  };
}

/** The `--set` overrides that make the study's run config into one variant's. */
export function variantOverrides(spec: GridSpec, v: GridVariant): string[] {
  return [...spec.set, `data.mixture=${JSON.stringify(v.mixture)}`, `out=${join(spec.out, v.name)}`];
}

/** The run config of one variant: the study's run with its overrides, this mixture, and its own folder. */
export function variantConfig(spec: GridSpec, v: GridVariant): RunConfig {
  return loadRunConfig(spec.run, variantOverrides(spec, v));
}

/** How one variant is trained: its name, the run config file and the overrides that make it the variant's. */
export interface VariantJob {
  name: string;
  run: string;
  overrides: string[];
  config: RunConfig;
}

export interface VariantResult {
  name: string;
  description: string;
  dir: string;
  status: RunStatus | 'not started';
  /** What this invocation did with it. */
  action: 'trained' | 'resumed' | 'skipped (finished)' | 'not run';
  steps: number;
  totalSteps: number;
  best: { epoch: number | null; step: number; checkpoint: string; validation: Record<string, number> } | null;
}

const FINISHED: readonly RunStatus[] = ['completed', 'early-stopped'];

/**
 * What a variant's run folder says about it: summary.json when the run wrote one; otherwise its
 * best checkpoint (checkpoints/best.json) with the validation losses logged at that step.
 */
export function readVariant(name: string, description: string, dir: string): VariantResult {
  const result: VariantResult = { name, description, dir, status: 'not started', action: 'not run', steps: 0, totalSteps: 0, best: null };
  const summaryFile = join(dir, SUMMARY_FILE);
  if (existsSync(summaryFile)) {
    let s: RunSummary;
    try {
      s = JSON.parse(readFileSync(summaryFile, 'utf8'));
    } catch (e) {
      throw new Error(`${summaryFile}: cannot read the run summary: ${(e as Error).message}`);
    }
    return { ...result, status: s.status, steps: s.steps, totalSteps: s.totalSteps, best: s.best && { ...s.best } };
  }
  const bestFile = join(dir, 'checkpoints', 'best.json');
  if (!existsSync(bestFile)) return result;
  const b = JSON.parse(readFileSync(bestFile, 'utf8')) as { checkpoint: string; step: number };
  const v = readMetrics(join(dir, 'metrics.jsonl')).validations.find((r) => r.step === b.step);
  return {
    ...result,
    status: 'interrupted',
    steps: b.step,
    best: v ? { epoch: v.epoch ?? null, step: b.step, checkpoint: join(dir, 'checkpoints', b.checkpoint), validation: v.validation } : null,
  };
}

export interface GridOptions {
  log?: (line: string) => void;
  /** Polled between variants (and passed to each run); true stops after the current step. */
  shouldStop?: () => boolean;
  /** Passed to every run (reporter, onPhase). */
  train?: Omit<TrainOptions, 'resume' | 'shouldStop' | 'source'>;
  /** Check every variant's config and say what would be done, without training. */
  dryRun?: boolean;
  /**
   * Trains one variant (resuming it if it has checkpoints) and says whether it was interrupted.
   * Default: runTraining in this process; the CLI passes the supervised worker of `polytune train`.
   */
  runVariant?: (job: VariantJob) => Promise<{ interrupted: boolean }>;
}

export interface GridResult {
  spec: GridSpec;
  languages: string[];
  variants: VariantResult[];
  /** True when a stop request ended the grid before every variant finished. */
  stopped: boolean;
  files: { json: string; markdown: string; csv: string; svg: string };
}

/**
 * Runs the variants one after another into `<out>/<variant>/`. A finished variant (its
 * summary.json says completed or early-stopped) is skipped; one with checkpoints resumes from its
 * latest; the rest start fresh. The table and chart are rewritten after every variant, so they
 * always show what is done so far.
 */
export async function runGrid(spec: GridSpec, opts: GridOptions = {}): Promise<GridResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const first = loadRunConfig(spec.run, spec.set);
  const languages = first.data.languages;
  const all = gridVariants(languages);
  const chosen = spec.variants ?? all.map((v) => v.name);
  for (const name of chosen) {
    if (!all.some((v) => v.name === name)) {
      throw new Error(`${spec.file}: field "variants" names "${name}", which is not a variant of ${languages.join(', ')} (known: ${all.map((v) => v.name).join(', ')})`);
    }
  }
  const variants = chosen.map((name) => all.find((v) => v.name === name)!);
  // Every variant's config is checked before the first one trains: a typo fails now, not hours in.
  const configs = variants.map((v) => variantConfig(spec, v));

  const results = variants.map((v, i) => readVariant(v.name, v.description, configs[i].out));
  checkFinishedSettings(results, configs);
  const inProcess = async (job: VariantJob) => {
    // Without a log of its own, each run shows its progress bar (or periodic lines) on stdout.
    const train: TrainOptions = { ...(opts.log ? { log: opts.log } : {}), ...opts.train };
    const r = await runTraining(job.config, { ...train, resume: true, shouldStop: opts.shouldStop, source: `${spec.file} (grid variant ${job.name})` });
    return { interrupted: r.status === 'interrupted' };
  };
  let stopped = false;
  // A dry run writes nothing; a real one shows the plan in the table before the first variant.
  let files = opts.dryRun ? gridFiles(spec) : await writeGridReport(spec, languages, results);
  for (let i = 0; i < variants.length; i++) {
    const v = variants[i];
    const before = results[i];
    if (FINISHED.includes(before.status as RunStatus)) {
      before.action = 'skipped (finished)';
      log(`grid: ${v.name}: ${before.status} earlier (${join(before.dir, SUMMARY_FILE)}); skipped`);
      continue;
    }
    if (opts.shouldStop?.()) {
      stopped = true;
      break;
    }
    const resuming = existsSync(join(configs[i].out, 'checkpoints', 'latest'));
    log(`grid: ${v.name} (${i + 1}/${variants.length}): ${v.description}; ${opts.dryRun ? 'would be ' : ''}${resuming ? 'resuming' : 'training'} in ${configs[i].out}`);
    if (opts.dryRun) continue;
    const job: VariantJob = { name: v.name, run: spec.run, overrides: variantOverrides(spec, v), config: configs[i] };
    const r = await (opts.runVariant ?? inProcess)(job);
    results[i] = { ...readVariant(v.name, v.description, configs[i].out), action: resuming ? 'resumed' : 'trained' };
    files = await writeGridReport(spec, languages, results);
    // A variant paused by train.maxSteps lets the grid go on (a budget per variant); a stop request ends it.
    if (r.interrupted) {
      stopped = true;
      log(`grid: ${v.name} interrupted; run the grid again to resume it`);
      break;
    }
  }
  return { spec, languages, variants: results, stopped, files };
}

/**
 * A finished variant is skipped, so one finished under other settings (lr, epochs, mixture...)
 * would silently stand in the table for the study as it is now configured: refuse, naming each
 * difference. Only the config's own fields are compared (data files are not re-read to skip a run).
 */
function checkFinishedSettings(results: VariantResult[], configs: RunConfig[]): void {
  const stale: string[] = [];
  results.forEach((r, i) => {
    if (!FINISHED.includes(r.status as RunStatus)) return;
    const file = join(r.dir, SUMMARY_FILE);
    const saved = (JSON.parse(readFileSync(file, 'utf8')) as RunSummary).settings;
    if (!saved) return; // written before summaries recorded settings
    const diff = fingerprintDiff(configPart(saved), configFingerprint(configs[i]));
    if (diff.length) stale.push(`${r.name} (${file}), finished → now:\n    ${diff.join('\n    ')}`);
  });
  if (stale.length) {
    throw new Error(
      `grid: ${stale.length === 1 ? 'a variant' : `${stale.length} variants`} finished under other settings than the study has now:\n  ${stale.join('\n  ')}\n` +
        'Restore those settings, or move the variant folders away to train them again.',
    );
  }
}

const COLUMNS = (languages: string[]) => [...languages, 'all'];
const fmt = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(4));

/** The best validation loss per variant and language, as text columns for the terminal. */
export function gridTable(languages: string[], results: VariantResult[]): string {
  const cols = COLUMNS(languages);
  const w0 = Math.max(7, ...results.map((r) => r.name.length));
  const head = ['variant'.padEnd(w0), ...cols.map((c) => c.padStart(8)), '  epoch', '  status'].join(' ');
  const rows = results.map((r) =>
    [r.name.padEnd(w0), ...cols.map((c) => fmt(r.best?.validation[c]).padStart(8)), String(r.best?.epoch ?? '-').padStart(7), `  ${r.status}`].join(' '),
  );
  return [head, ...rows].join('\n');
}

function gridMarkdown(spec: GridSpec, languages: string[], results: VariantResult[]): string {
  const cols = COLUMNS(languages);
  // The lowest loss of each column in bold: the variant that does best on that language.
  const bestOf = (c: string) => Math.min(...results.map((r) => r.best?.validation[c] ?? Infinity));
  const lines = [
    `# Grid: ${basename(spec.file)}`,
    '',
    `Validation loss (mean per trained token) of each variant's best checkpoint (lowest "all"), per language. Run config: \`${spec.run}\`.`,
    '',
    `| variant | trained on | ${cols.join(' | ')} | best epoch | status |`,
    `|---|---|${cols.map(() => '---:|').join('')}---:|---|`,
    ...results.map((r) => {
      const cells = cols.map((c) => {
        const x = r.best?.validation[c];
        return x !== undefined && x === bestOf(c) ? `**${fmt(x)}**` : fmt(x);
      });
      return `| ${r.name} | ${r.description} | ${cells.join(' | ')} | ${r.best?.epoch ?? '-'} | ${r.status} |`;
    }),
  ];
  return lines.join('\n') + '\n';
}

const csvCell = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

function gridCsv(languages: string[], results: VariantResult[]): string {
  const cols = COLUMNS(languages);
  const rows = [['variant', 'status', 'best_epoch', 'best_step', 'checkpoint', ...cols.map((c) => `val_loss_${c}`)]];
  for (const r of results) {
    rows.push([r.name, r.status, String(r.best?.epoch ?? ''), String(r.best?.step ?? ''), r.best?.checkpoint ?? '', ...cols.map((c) => (r.best?.validation[c] ?? '').toString())]);
  }
  return rows.map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}

/**
 * A heat map of the table: a row per variant, a column per language, each cell the best
 * checkpoint's validation loss, written in the cell and shaded by it (darker is lower).
 */
export function gridChartSpec(spec: GridSpec, languages: string[], results: VariantResult[]): VegaLiteSpec {
  const cols = COLUMNS(languages);
  const values = results.flatMap((r) => cols.flatMap((lang) => {
    const loss = r.best?.validation[lang];
    return loss === undefined ? [] : [{ variant: r.name, language: lang, loss, label: loss.toFixed(3) }];
  }));
  const x = { field: 'language', type: 'nominal', sort: cols, title: 'validated on', axis: { orient: 'top', labelAngle: 0 } } as const;
  const y = { field: 'variant', type: 'nominal', sort: results.map((r) => r.name), title: 'trained on' } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${basename(spec.file)}: best validation loss per variant and language`, subtitle: 'lower is better; "all" is the loss over every language, which picks the best checkpoint' },
    width: { step: 64 },
    height: { step: 28 },
    data: { values },
    encoding: { x, y },
    layer: [
      { mark: { type: 'rect', tooltip: true }, encoding: { color: { field: 'loss', type: 'quantitative', title: 'loss', scale: { scheme: 'blues', reverse: true } } } },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: {
          text: { field: 'label', type: 'nominal' },
          // Light text on the dark (low-loss) half of the scale.
          color: { condition: { test: `datum.loss < ${midpoint(values.map((v) => v.loss))}`, value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}

const midpoint = (xs: number[]) => (xs.length ? (Math.min(...xs) + Math.max(...xs)) / 2 : 0);

/** Writes grid.json, grid.md, grid.csv and grid.svg into the grid's folder (each replaced atomically). */
const gridFiles = (spec: GridSpec): GridResult['files'] =>
  ({ json: join(spec.out, 'grid.json'), markdown: join(spec.out, 'grid.md'), csv: join(spec.out, 'grid.csv'), svg: join(spec.out, 'grid.svg') });

export async function writeGridReport(spec: GridSpec, languages: string[], results: VariantResult[]): Promise<GridResult['files']> {
  const files = gridFiles(spec);
  mkdirSync(spec.out, { recursive: true });
  const json = { study: spec.file, run: spec.run, languages, columns: COLUMNS(languages), variants: results };
  replaceFileAtomic(files.json, JSON.stringify(json, null, 2) + '\n');
  replaceFileAtomic(files.markdown, gridMarkdown(spec, languages, results));
  replaceFileAtomic(files.csv, gridCsv(languages, results));
  replaceFileAtomic(files.svg, await renderSvg(gridChartSpec(spec, languages, results)));
  return files;
}
