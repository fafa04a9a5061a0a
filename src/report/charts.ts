// The report's chart specs. Vega-Lite where it can express the chart; the radar plot is raw Vega
// (Vega-Lite has no polar line marks). All of them render to SVG through ./vega.ts.
import type * as vega from 'vega';
import type { VegaLiteSpec } from './vega.js';

export interface RadarPoint {
  category: string;
  model: string;
  /** Mean judge score (1-10) of the model in the category; null where nothing was graded. */
  score: number | null;
}

const SCHEME = 'tableau10';

/**
 * Mean scores per category, one closed polygon per model, on a fixed 0-10 scale so radars of
 * different languages compare at a glance. Categories keep the order given (the question file's).
 */
export function radarSpec(title: string, categories: string[], points: RadarPoint[], size = 360, models?: string[]): vega.Spec {
  // A fixed model list keeps each model's colour the same on every language's radar.
  const colorDomain = models ?? [...new Set(points.map((p) => p.model))].sort();
  const values = points.filter((p) => p.score !== null && categories.includes(p.category));
  const rings = [2, 4, 6, 8, 10].flatMap((level) => categories.map((key) => ({ level, key })));
  const angle = (field: string) => `scale('angular', ${field})`;
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    title: { text: title, anchor: 'start', fontSize: 14 },
    width: size,
    height: size,
    padding: { left: 90, right: 20, top: 30, bottom: 30 },
    autosize: { type: 'pad' },
    signals: [{ name: 'radius', update: 'width / 2' }],
    data: [
      { name: 'table', values },
      { name: 'keys', values: categories.map((key) => ({ key })) },
      { name: 'rings', values: rings },
    ],
    scales: [
      // Categories around the circle, the first at the top, clockwise.
      { name: 'angular', type: 'point', range: { signal: '[-PI / 2, 3 * PI / 2]' }, padding: 0, domain: categories.concat(['\u0000end']) },
      { name: 'radial', type: 'linear', range: { signal: '[0, radius]' }, zero: true, nice: false, domain: [0, 10] },
      { name: 'color', type: 'ordinal', domain: colorDomain, range: { scheme: SCHEME } },
    ],
    legends: [{ fill: 'color', stroke: 'color', title: 'model', orient: 'right', symbolType: 'circle', labelLimit: 360 }],
    marks: [
      {
        type: 'group',
        encode: { enter: { x: { signal: 'radius' }, y: { signal: 'radius' } } },
        marks: [
          {
            type: 'group',
            from: { facet: { data: 'rings', name: 'ring', groupby: ['level'] } },
            marks: [
              {
                type: 'line',
                from: { data: 'ring' },
                encode: {
                  enter: {
                    interpolate: { value: 'linear-closed' },
                    x: { signal: `scale('radial', datum.level) * cos(${angle('datum.key')})` },
                    y: { signal: `scale('radial', datum.level) * sin(${angle('datum.key')})` },
                    stroke: { value: '#d9d9d9' },
                    strokeWidth: { value: 1 },
                  },
                },
              },
            ],
          },
          {
            type: 'rule',
            from: { data: 'keys' },
            encode: {
              enter: {
                x: { value: 0 },
                y: { value: 0 },
                x2: { signal: `radius * cos(${angle('datum.key')})` },
                y2: { signal: `radius * sin(${angle('datum.key')})` },
                stroke: { value: '#d9d9d9' },
              },
            },
          },
          {
            type: 'text',
            from: { data: 'rings' },
            encode: {
              enter: {
                x: { value: 3 },
                y: { signal: `-scale('radial', datum.level)` },
                text: { signal: `datum.key === '${categories[0]?.replace(/'/g, "\\'") ?? ''}' ? datum.level : ''` },
                fill: { value: '#888' },
                fontSize: { value: 9 },
                baseline: { value: 'middle' },
              },
            },
          },
          {
            type: 'text',
            from: { data: 'keys' },
            encode: {
              enter: {
                x: { signal: `(radius + 8) * cos(${angle('datum.key')})` },
                y: { signal: `(radius + 8) * sin(${angle('datum.key')})` },
                text: { field: 'key' },
                align: [
                  { test: `abs(cos(${angle('datum.key')})) < 0.2`, value: 'center' },
                  { test: `cos(${angle('datum.key')}) < 0`, value: 'right' },
                  { value: 'left' },
                ],
                baseline: [
                  { test: `sin(${angle('datum.key')}) > 0.2`, value: 'top' },
                  { test: `sin(${angle('datum.key')}) < -0.2`, value: 'bottom' },
                  { value: 'middle' },
                ],
                fontSize: { value: 11 },
                fill: { value: '#333' },
              },
            },
          },
          {
            type: 'group',
            from: { facet: { data: 'table', name: 'series', groupby: ['model'] } },
            marks: [
              {
                type: 'line',
                from: { data: 'series' },
                encode: {
                  enter: {
                    interpolate: { value: 'linear-closed' },
                    x: { signal: `scale('radial', datum.score) * cos(${angle('datum.category')})` },
                    y: { signal: `scale('radial', datum.score) * sin(${angle('datum.category')})` },
                    stroke: { scale: 'color', field: 'model' },
                    strokeWidth: { value: 2 },
                    fill: { scale: 'color', field: 'model' },
                    fillOpacity: { value: 0.08 },
                  },
                },
              },
              {
                type: 'symbol',
                from: { data: 'series' },
                encode: {
                  enter: {
                    x: { signal: `scale('radial', datum.score) * cos(${angle('datum.category')})` },
                    y: { signal: `scale('radial', datum.score) * sin(${angle('datum.category')})` },
                    fill: { scale: 'color', field: 'model' },
                    size: { value: 24 },
                    tooltip: { signal: `datum.model + ', ' + datum.category + ': ' + format(datum.score, '.2f')` },
                  },
                },
              },
            ],
          },
        ],
      },
    ],
  } as vega.Spec;
}

export interface WinRateBar {
  lang: string;
  /** "model vs opponent" */
  pair: string;
  outcome: 'win' | 'tie' | 'both bad' | 'inconsistent' | 'loss';
  share: number;
  count: number;
}

export const OUTCOME_ORDER: WinRateBar['outcome'][] = ['win', 'tie', 'both bad', 'inconsistent', 'loss'];

/** Outcome shares of each pairing, stacked to 100%, one row of bars per language. */
export function winRateSpec(title: string, bars: WinRateBar[]): VegaLiteSpec {
  const withOrder = bars.map((b) => ({ ...b, order: OUTCOME_ORDER.indexOf(b.outcome) }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start' },
    data: { values: withOrder },
    facet: { row: { field: 'lang', type: 'nominal', title: null, header: { labelAngle: 0, labelFontWeight: 'bold' } } },
    spec: {
      width: 460,
      height: { step: 22 },
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'pair', type: 'nominal', title: null, sort: null, axis: { labelLimit: 320 } },
        x: { field: 'share', type: 'quantitative', stack: 'normalize', title: 'share of games', axis: { format: '%' } },
        color: {
          field: 'outcome',
          type: 'nominal',
          sort: OUTCOME_ORDER,
          scale: { domain: OUTCOME_ORDER, range: ['#4c9a2a', '#b8b8b8', '#7a5195', '#f2b134', '#d1495b'] },
          title: 'outcome',
          legend: { labelLimit: 300 },
        },
        order: { field: 'order', type: 'quantitative' },
        tooltip: [
          { field: 'pair', type: 'nominal' },
          { field: 'outcome', type: 'nominal' },
          { field: 'count', type: 'quantitative' },
          { field: 'share', type: 'quantitative', format: '.1%' },
        ],
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as VegaLiteSpec;
}

export interface LossPoint {
  step: number;
  /** "train" or the validation language ("DE", ..., "all"). */
  series: string;
  loss: number;
}

/** Training loss per step and validation loss per language after each evaluation. */
export function trainingCurveSpec(title: string, points: LossPoint[]): VegaLiteSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start' },
    width: 520,
    height: 260,
    data: { values: points },
    layer: [
      {
        transform: [{ filter: "datum.series === 'train'" }],
        mark: { type: 'line', strokeWidth: 1, opacity: 0.85 },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'step', axis: { tickMinStep: 1, format: 'd' } },
          y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
          color: { field: 'series', type: 'nominal', title: 'loss', scale: { scheme: SCHEME }, legend: { labelLimit: 300 } },
        },
      },
      {
        transform: [{ filter: "datum.series !== 'train'" }],
        mark: { type: 'line', point: true, strokeWidth: 2 },
        encoding: {
          x: { field: 'step', type: 'quantitative' },
          y: { field: 'loss', type: 'quantitative' },
          color: { field: 'series', type: 'nominal' },
          strokeDash: { condition: { test: "datum.series === 'validation all'", value: [4, 3] }, value: [1, 0] },
          tooltip: [{ field: 'series' }, { field: 'step' }, { field: 'loss', format: '.4f' }],
        },
      },
    ],
  } as VegaLiteSpec;
}
