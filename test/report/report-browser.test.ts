// `polytune report` end to end: real MT-Bench-X questions (where ../shared has them) with generated
// answers, judgments and votes, a real (tiny) training run; the page opened in Debian's chromium.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, type ReportResult } from '../../src/report/build.js';
import { embeddedDefault, runTraining } from '../../src/train/index.js';
import { haveChromium, launchChromium, noChromium, watchErrors } from './browser.js';
import { answerMark, buildBench, projectRoot, tempDir, writeVotes } from './fixture.js';

const MODELS = ['sft-DE', 'sft-EN', 'sft-ENDEFRITES'];
const tmp = tempDir('polytune-report-');
const fx = buildBench(join(tmp.dir, 'bench'), { langs: ['DE', 'EN'], models: MODELS });
writeVotes(join(fx.benchDir, 'mt_bench_DE'), fx.questions.get('DE')!, MODELS, 3, 12);
// Screenshots and the page stay after the run, for a person to look at.
const outDir = join(projectRoot, 'test', 'report', 'output');
const source = fx.real ? 'real MT-Bench-X DE/EN questions' : 'generated questions: ../shared/data/mt-bench-x is absent';

const jsonl = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe(`report page (${source})`, () => {
  let report: ReportResult;
  const runDir = join(tmp.dir, 'run-mix');
  beforeAll(async () => {
    // A few steps an epoch, two epochs: two validations of every language, in seconds.
    const cfg = await embeddedDefault(runDir, { items: 8 });
    await runTraining({ ...cfg, train: { ...cfg.train, epochs: 2, globalBatch: 16, microBatch: 8, maxSteps: 0, warmupSteps: 2 } }, { log: () => {} });
    mkdirSync(outDir, { recursive: true });
    report = await buildReport({ benchDir: fx.benchDir, runs: [runDir], out: join(outDir, 'report.html'), warn: () => {} });
  });
  afterAll(() => tmp.cleanup());

  it('writes every chart as an SVG beside the page, and the page references nothing outside itself', () => {
    expect(report.charts.map((c) => c.id).sort()).toEqual(['radar-DE', 'radar-EN', 'training-run-mix', 'win-rates']);
    for (const c of report.charts) {
      expect(c.file).toBe(join(outDir, `report-${c.id}.svg`));
      expect(readFileSync(c.file, 'utf8')).toBe(c.svg);
      expect(c.svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    }
    const html = readFileSync(report.out, 'utf8');
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    expect(html).toContain("default-src 'none'");
  });

  it('plots the training loss and the validation loss of every language the run evaluated', () => {
    const metrics = jsonl(join(runDir, 'metrics.jsonl'));
    const evals = metrics.filter((r) => r.validation);
    expect(evals.length).toBe(2);
    const svg = report.charts.find((c) => c.id === 'training-run-mix')!.svg;
    for (const series of ['train', ...Object.keys(evals[0].validation).map((l) => `validation ${l}`)]) expect(svg).toContain(`>${series}</text>`);
    // One point mark per evaluation and language.
    expect(svg.match(/aria-roledescription="point"/g)?.length).toBe(evals.length * Object.keys(evals[0].validation).length);
  });

  it('puts the numbers of the judgment files in its tables', () => {
    const html = readFileSync(report.out, 'utf8');
    // The DE mean score of each model, computed here from the fixture file, -1 left out.
    const single = jsonl(join(fx.benchDir, 'mt_bench_DE/model_judgment/gpt-4_single.jsonl'));
    for (const m of MODELS) {
      const s = single.filter((r) => r.model === m && r.score !== -1).map((r) => r.score as number);
      const invalid = single.filter((r) => r.model === m && r.score === -1).length;
      const avg = (s.reduce((a, b) => a + b, 0) / s.length).toFixed(2);
      expect(html, `DE ${m}`).toMatch(new RegExp(`<tr><td>${m}</td>(<td class="num">[^<]*</td>|<td>[^<]*</td>)+?<td>${avg.replace('.', '\\.')}</td>.*?<td class="num">${invalid}</td></tr>`));
    }
    // Position bias: inconsistent games of DE per the fixture (the two orders disagreeing, no error verdicts).
    const pair = jsonl(join(fx.benchDir, 'mt_bench_DE/model_judgment/gpt-4_pair.jsonl'));
    const inconsistent = pair.filter((r) => r.g1_winner !== r.g2_winner).length;
    expect(html).toMatch(new RegExp(`<table class="position-bias" data-lang="DE">.*?<tr><td>all</td><td class="num">${pair.length}</td><td class="num">${pair.length - inconsistent}</td><td class="num">${inconsistent}</td>`));
  });

  it('shows the human-human agreement of the vote file, counted here by hand', () => {
    // Every item (question, turn) has one vote by each of three annotators on the same pair:
    // three pairs of annotators per item; a tie and a both-bad vote count as equal.
    const votes = jsonl(join(fx.benchDir, 'mt_bench_DE/human_judgment/votes.jsonl'));
    const norm = (w: string) => (w === 'tie (bothbad)' ? 'tie' : w);
    let agree = 0, total = 0;
    const items = new Map<string, string[]>();
    for (const v of votes) items.set(`${v.question_id}/${v.turn}`, [...(items.get(`${v.question_id}/${v.turn}`) ?? []), norm(v.winner)]);
    for (const ws of items.values()) for (let i = 0; i < ws.length; i++) for (let j = i + 1; j < ws.length; j++, total++) if (ws[i] === ws[j]) agree++;
    expect(total).toBe(12 * 2 * 3);
    const html = readFileSync(report.out, 'utf8');
    const row = new RegExp(`<table class="agreement" data-lang="DE">.*?<tr><td>all</td><td>all</td><td>[^<]*</td><td>[^<]*</td><td>${(100 * agree / total).toFixed(1)}% \\(${agree}/${total}\\)</td>`);
    expect(html).toMatch(row);
  });

  it.skipIf(!haveChromium)(`renders in chromium with every chart, no errors and a working answer browser ${haveChromium ? '' : noChromium}`, async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const errors = watchErrors(page);
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      const url = pathToFileURL(report.out).href;
      await page.goto(url, { waitUntil: 'load' });
      // Nothing but the page itself and its inline data: images was asked for.
      expect(requests.filter((u) => u !== url && !u.startsWith('data:'))).toEqual([]);
      const figs = await page.$$eval('figure.chart img', (imgs) => imgs.map((i) => ({ alt: i.getAttribute('alt'), ok: (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 100 })));
      expect(figs).toHaveLength(report.charts.length);
      expect(figs.every((f) => f.ok)).toBe(true);
      for (const cls of ['scores', 'win-rates', 'position-bias', 'agreement', 'fleiss', 'comparison']) {
        expect(await page.locator(`table.${cls}`).count(), `table.${cls}`).toBeGreaterThan(0);
      }

      // The answer browser: DE, a question with a reference answer, two chosen models.
      const refQ = fx.questions.get('DE')!.find((q) => q.category === 'math')!.question_id;
      await page.selectOption('#browser-lang', 'DE');
      await page.selectOption('#browser-question', refQ);
      await page.selectOption('#browser-model-a', 'sft-ENDEFRITES');
      await page.selectOption('#browser-model-b', 'sft-DE');
      const single = jsonl(join(fx.benchDir, 'mt_bench_DE/model_judgment/gpt-4_single.jsonl'));
      const pair = jsonl(join(fx.benchDir, 'mt_bench_DE/model_judgment/gpt-4_pair.jsonl'));
      for (const turn of [1, 2]) {
        const t = page.locator(`#browser-view .turn[data-turn="${turn}"]`);
        const cols = t.locator('.col');
        await expect(cols.nth(0).locator('.answer').innerText()).resolves.toContain(`${answerMark('sft-ENDEFRITES')} answer to ${refQ}, turn ${turn}.`);
        await expect(cols.nth(1).locator('.answer').innerText()).resolves.toContain(`${answerMark('sft-DE')} answer to ${refQ}, turn ${turn}.`);
        // Answer text is shown as text, never as markup.
        await expect(cols.nth(0).locator('.answer b').count()).resolves.toBe(0);
        for (const [i, m] of [[0, 'sft-ENDEFRITES'], [1, 'sft-DE']] as const) {
          const want = single.find((r) => r.model === m && r.question_id === refQ && r.turn === turn).score;
          await expect(cols.nth(i).locator('.score').getAttribute('data-score')).resolves.toBe(String(want));
        }
        const g = pair.find((r) => r.question_id === refQ && r.turn === turn && r.model_2 === 'sft-ENDEFRITES');
        const name = (w: string) => ({ model_1: g.model_1, model_2: g.model_2, tie: 'tie', 'tie (bothbad)': 'both bad' })[w];
        await expect(t.locator('.verdict').allInnerTexts()).resolves.toEqual([name(g.g1_winner), name(g.g2_winner)]);
        await expect(t.locator('.reference').count()).resolves.toBe(1);
      }
      await page.selectOption('#browser-lang', 'EN');
      await expect(page.locator('#browser-question option').first().getAttribute('value')).resolves.toMatch(/_EN$/);
      await page.selectOption('#browser-lang', 'DE');
      await page.selectOption('#browser-question', refQ);
      await page.locator('#browser-view .turn[data-turn="1"] details').first().evaluate((d) => ((d as HTMLDetailsElement).open = true));
      await page.screenshot({ path: join(outDir, 'report.png'), fullPage: true });
      expect(existsSync(join(outDir, 'report.png'))).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
