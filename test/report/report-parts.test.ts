// The report's pieces without a browser: the radar geometry, metrics.jsonl reading, escaping, and
// a bench dir with nothing judged yet.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/index.js';
import { buildReport } from '../../src/report/build.js';
import { radarSpec } from '../../src/report/charts.js';
import { esc, scriptJson } from '../../src/report/html.js';
import { readRunCurves } from '../../src/report/runs.js';
import { renderVegaSvg } from '../../src/report/vega.js';
import { buildBench, tempDir } from './fixture.js';

const tmp = tempDir('polytune-report-parts-');
afterAll(tmp.cleanup);

describe('radar plot', () => {
  it('puts each category on its own spoke, clockwise from the top, at score/10 of the radius', async () => {
    const cats = ['writing', 'roleplay', 'reasoning', 'math', 'coding'];
    const scores = [10, 5, 2.5, 7.5, 1];
    const svg = await renderVegaSvg(radarSpec('t', cats, cats.map((c, i) => ({ category: c, model: 'm', score: scores[i] })), 300));
    const d = /<path d="([^"]+)" fill="#4c78a8" fill-opacity="0.08"/.exec(svg)![1];
    const pts = d.replace(/Z$/, '').slice(1).split('L').map((p) => p.split(',').map(Number));
    const want = scores.map((s, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / cats.length;
      return [(s / 10) * 150 * Math.cos(a), (s / 10) * 150 * Math.sin(a)];
    });
    expect(pts).toHaveLength(cats.length);
    pts.forEach(([x, y], i) => {
      expect(x).toBeCloseTo(want[i][0], 2);
      expect(y).toBeCloseTo(want[i][1], 2);
    });
    for (const c of cats) expect(svg).toContain(`>${c}</text>`);
  });
  it('gives a model the same colour on every language\'s radar', async () => {
    const fillOf = (svg: string) => /<path d="[^"]+" fill="(#[0-9a-f]{6})" fill-opacity="0.08"/.exec(svg)![1];
    const both = await renderVegaSvg(radarSpec('t', ['x', 'y', 'z'], ['x', 'y', 'z'].flatMap((c) => ['a', 'b'].map((m) => ({ category: c, model: m, score: 5 }))), 200, ['a', 'b']));
    const onlyB = await renderVegaSvg(radarSpec('t', ['x', 'y', 'z'], ['x', 'y', 'z'].map((c) => ({ category: c, model: 'b', score: 5 })), 200, ['a', 'b']));
    const fills = [...both.matchAll(/<path d="[^"]+" fill="(#[0-9a-f]{6})" fill-opacity="0.08"/g)].map((m) => m[1]);
    expect(fills).toHaveLength(2);
    expect(fillOf(onlyB)).toBe(fills[1]);
    expect(fills[0]).not.toBe(fills[1]);
  });
});

describe('training curves from metrics.jsonl', () => {
  const run = join(tmp.dir, 'run-a');
  mkdirSync(run, { recursive: true });
  const line = (o: unknown) => JSON.stringify(o) + '\n';
  it('keeps the later record of a step a resume repeated, every validation language, and drops a torn last line', () => {
    writeFileSync(join(run, 'metrics.jsonl'),
      [1, 2, 3, 4].map((s) => line({ step: s, epoch: 1, loss: 10 - s, lr: 0, gradNorm: 1, tokens: 9, ms: 1 })).join('') +
      line({ step: 4, epoch: 1, validation: { DE: 3, EN: 2, all: 2.5 } }) +
      // resumed from step 2: steps 3 and 4 again, with other losses
      [3, 4, 5].map((s) => line({ step: s, epoch: 2, loss: 20 - s, lr: 0, gradNorm: 1, tokens: 9, ms: 1 })).join('') +
      '{"step": 6, "epo');
    const warnings: string[] = [];
    const r = readRunCurves(run, (m) => warnings.push(m));
    expect(r.name).toBe('run-a');
    expect(r.points.filter((p) => p.series === 'train').map((p) => [p.step, p.loss])).toEqual([[1, 9], [2, 8], [3, 17], [4, 16], [5, 15]]);
    expect(r.points.filter((p) => p.series !== 'train')).toEqual([
      { step: 4, series: 'validation DE', loss: 3 },
      { step: 4, series: 'validation EN', loss: 2 },
      { step: 4, series: 'validation all', loss: 2.5 },
    ]);
    expect(r.lastValidation).toEqual({ DE: 3, EN: 2, all: 2.5 });
    expect(warnings).toEqual([`${join(run, 'metrics.jsonl')}:9: ignored a torn last line`]);
  });
  it('names the file and line of a bad record, and a folder without metrics', () => {
    const f = join(run, 'metrics.jsonl');
    writeFileSync(f, line({ step: 1, loss: 1 }) + '{"step": 2,\n' + line({ step: 3, loss: 1 }));
    expect(() => readRunCurves(run)).toThrow(`${f}:2: malformed JSON`);
    writeFileSync(f, line({ step: 1, loss: 1 }) + line({ step: 2, validation: { DE: 'x' } }));
    expect(() => readRunCurves(run)).toThrow(`${f}:2: field "validation" must map languages to losses`);
    writeFileSync(f, line({ step: 1.5, loss: 1 }));
    expect(() => readRunCurves(run)).toThrow(`${f}:1: a metrics record needs an integer "step"`);
    expect(() => readRunCurves(tmp.dir)).toThrow(`${join(tmp.dir, 'metrics.jsonl')}: no metrics.jsonl in this run folder`);
  });
});

describe('escaping', () => {
  it('keeps model output inert in the page', () => {
    const nasty = '</script><script>alert(1)</script><!-- \u2028 & "q"';
    const json = scriptJson({ a: nasty });
    expect(json).not.toMatch(/<\/script|<!--/i);
    expect(JSON.parse(json)).toEqual({ a: nasty });
    expect(esc(`<b a="x">'&`)).toBe('&lt;b a=&quot;x&quot;&gt;&#39;&amp;');
  });
});

describe('a bench dir with nothing judged yet', () => {
  it('still writes the page: notes instead of charts, and the answers to browse', async () => {
    const fx = buildBench(join(tmp.dir, 'bench'), { langs: ['IT', 'ES'], models: ['a', 'b'], real: false, judgments: false });
    const out = join(tmp.dir, 'out', 'page.html');
    const r = await buildReport({ benchDir: fx.benchDir, out, langs: ['it'], warn: () => {} });
    expect(r.languages).toEqual(['IT']);
    expect(r.charts).toEqual([]);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('No single-answer judgments');
    expect(html).toContain('No pairwise judgments');
    expect(html).toContain('No human votes yet');
    const data = JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]);
    expect(data.map((d: { lang: string }) => d.lang)).toEqual(['IT']);
    expect(Object.keys(data[0].answers)).toEqual(['a', 'b']);
    expect(data[0].questions).toHaveLength(fx.questions.get('IT')!.length);
    expect(existsSync(join(tmp.dir, 'out', 'page-radar-IT.svg'))).toBe(false);
  });
  it('is the `polytune report` command, and tells apart two runs of one folder name', async () => {
    const fx = buildBench(join(tmp.dir, 'bench3'), { langs: ['EN'], models: ['a', 'b'], real: false });
    const runs = ['x', 'y'].map((p) => {
      const d = join(tmp.dir, p, 'run');
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'metrics.jsonl'), JSON.stringify({ step: 1, epoch: 1, loss: 2 }) + '\n' + JSON.stringify({ step: 1, epoch: 1, validation: { EN: 1.5 } }) + '\n');
      return d;
    });
    const out = join(tmp.dir, 'cli', 'r.html');
    await buildProgram().parseAsync(['node', 'polytune', 'report', '--bench-dir', fx.benchDir, '--runs', ...runs, '--out', out]);
    for (const f of ['r.html', 'r-radar-EN.svg', 'r-win-rates.svg', 'r-training-x-run.svg', 'r-training-y-run.svg']) expect(existsSync(join(tmp.dir, 'cli', f)), f).toBe(true);
  });
  it('names a folder that is not a bench dir', async () => {
    mkdirSync(join(tmp.dir, 'empty'));
    await expect(buildReport({ benchDir: join(tmp.dir, 'empty'), out: join(tmp.dir, 'x.html') })).rejects.toThrow(/no mt_bench_XX folders/);
  });
  it('names the line of a broken vote file', async () => {
    const fx = buildBench(join(tmp.dir, 'bench2'), { langs: ['EN'], models: ['a', 'b'], real: false });
    const f = join(fx.benchDir, 'mt_bench_EN', 'human_judgment', 'votes.jsonl');
    mkdirSync(join(fx.benchDir, 'mt_bench_EN', 'human_judgment'));
    appendFileSync(f, JSON.stringify({ question_id: '81_EN', model_a: 'a', model_b: 'b', winner: 'tie', judge: 'x', turn: 1 }) + '\n{oops\n');
    await expect(buildReport({ benchDir: fx.benchDir, out: join(tmp.dir, 'y.html') })).rejects.toThrow(`${f}:2`);
  });
});
