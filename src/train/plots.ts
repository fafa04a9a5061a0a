// loss.svg in the run folder: training loss per step and validation loss per language, redrawn
// after each validation from metrics.jsonl (so a resumed run's plot covers the whole run).
import { join } from 'node:path';
import { replaceFileAtomic } from '../util/durable.js';
import { renderSvg, type VegaLiteSpec } from '../report/vega.js';
import { readMetrics } from './metrics.js';
import { osError } from './run-folder.js';

export const LOSS_PLOT = 'loss.svg';

/**
 * The chart's spec. Training loss is one series over all languages: a step's loss is the mean
 * over a batch that mixes them, and the per-token losses that would split it are not kept.
 */
export function lossChartSpec(metricsFile: string, title: string): VegaLiteSpec {
  const m = readMetrics(metricsFile);
  const rows: { step: number; loss: number; series: string; kind: string }[] = [];
  for (const s of m.steps) if (s.loss !== null && Number.isFinite(s.loss)) rows.push({ step: s.step, loss: s.loss, series: 'train (all languages)', kind: 'train' });
  for (const v of m.validations) {
    for (const [lang, loss] of Object.entries(v.validation)) {
      rows.push({ step: v.step, loss, series: lang === 'all' ? 'validation (all)' : `validation ${lang}`, kind: 'validation' });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 640,
    height: 360,
    data: { values: rows },
    layer: [
      {
        transform: [{ filter: "datum.kind === 'train'" }],
        mark: { type: 'line', opacity: 0.5, strokeWidth: 1 },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
          y: { field: 'loss', type: 'quantitative', title: 'loss (nats per trained token)', scale: { zero: false } },
          color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 240 } },
        },
      },
      {
        transform: [{ filter: "datum.kind === 'validation'" }],
        mark: { type: 'line', point: true, strokeWidth: 2 },
        encoding: {
          x: { field: 'step', type: 'quantitative' },
          y: { field: 'loss', type: 'quantitative' },
          color: { field: 'series', type: 'nominal' },
        },
      },
    ],
  };
}

/** Redraws `<out>/loss.svg` (atomically: a reader never sees half a file). */
export async function writeLossPlot(out: string, title: string): Promise<string> {
  const svg = await renderSvg(lossChartSpec(join(out, 'metrics.jsonl'), title));
  const file = join(out, LOSS_PLOT);
  try {
    replaceFileAtomic(file, svg);
  } catch (e) {
    throw osError(`writing the loss plot ${file}`, e);
  }
  return file;
}
