// The annotation app as an annotator uses it: real clicks in Debian's chromium, a server restart
// while a vote is in flight, a page refresh between the two turns of a pair; then the vote file is
// checked against what the page showed on each side.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/data/random.js';
import { startAnnotationServer, type AnnotationServer } from '../../src/mtbench/annotate/server.js';
import type { HumanVote } from '../../src/mtbench/annotate/votes.js';
import { haveChromium, launchChromium, noChromium, watchErrors } from '../report/browser.js';
import { answerMark, buildBench, projectRoot, tempDir } from '../report/fixture.js';

const MODELS = ['sft-DE', 'sft-ENDEFRITES'];
const tmp = tempDir('polytune-annotate-');
const fx = buildBench(tmp.dir, { langs: ['DE'], models: MODELS, judgments: false, perCategory: 2 });
const voteFile = join(tmp.dir, 'votes.jsonl');
const rand = seededRandom('annotate-browser');
const shots = join(projectRoot, 'test', 'report', 'output');

interface Expected {
  q: string;
  turn: number;
  left: string;
  right: string;
  winner: HumanVote['winner'];
}

describe.skipIf(!haveChromium)(`annotation app in chromium (${fx.real ? 'real MT-Bench-X DE questions' : 'generated questions: ../shared/data/mt-bench-x is absent'}) ${haveChromium ? '' : noChromium}`, () => {
  let browser: Browser;
  let context: BrowserContext;
  let server: AnnotationServer;
  let port = 0;
  const start = async () => {
    server = await startAnnotationServer({ benchDir: fx.benchDir, lang: 'DE', models: MODELS, out: voteFile, port, rand, log: () => {} });
    port = Number(new URL(server.url).port);
  };
  beforeAll(async () => {
    await start();
    browser = await launchChromium();
    context = await browser.newContext();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    tmp.cleanup();
  });

  const modelOf = (text: string) => {
    const m = MODELS.filter((x) => text.startsWith(answerMark(x)));
    expect(m, `answer text "${text.slice(0, 60)}" names exactly one model`).toHaveLength(1);
    return m[0];
  };
  const current = async (page: Page) => {
    await page.waitForSelector('#task', { timeout: 10_000 });
    const task = page.locator('#task');
    return {
      q: (await task.getAttribute('data-question'))!,
      turn: Number(await task.getAttribute('data-turn')),
      left: modelOf(await page.locator('#left-answer').innerText()),
      right: modelOf(await page.locator('#right-answer').innerText()),
      question: await page.locator('#question').innerText(),
    };
  };
  // Waits until the page shows another task than `key` (q/turn).
  const nextShown = (page: Page, key: string) =>
    page.waitForFunction((k) => {
      const t = document.getElementById('task');
      return t !== null && `${t.dataset.question}/${t.dataset.turn}` !== k;
    }, key, { timeout: 15_000 });

  it('records every clicked vote with the right models, across a restart and a refresh', async () => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url);
    // German instructions and buttons, since the benchmark is German.
    await expect(page.locator('.instructions').innerText()).resolves.toContain('Bewerten Sie nur die markierte Runde');
    await page.fill('#name', 'Ada Lovelace');
    await page.click('#start');

    const expected: Expected[] = [];
    const choices = ['A', 'B', 'tie', 'bothbad'] as const;
    const winnerOf = (choice: (typeof choices)[number], left: string) =>
      choice === 'tie' ? 'tie' : choice === 'bothbad' ? 'tie (bothbad)' : (choice === 'A' ? left : left === MODELS[0] ? MODELS[1] : MODELS[0]) === MODELS[0] ? 'model_a' : 'model_b';
    const questionsText = new Map(fx.questions.get('DE')!.map((q) => [q.question_id, q.turns]));
    let skippedQ: string | undefined;
    let refreshedAt: string | undefined;
    let restartedAt: string | undefined;
    let reconnectErrors = 0;

    for (let step = 0; step < 16; step++) {
      const t = await current(page);
      expect(t.question).toBe(questionsText.get(t.q)![t.turn - 1]);
      const key = `${t.q}/${t.turn}`;
      if (step === 3) {
        // A refresh between turn 1 and turn 2 resumes the same pair at turn 2.
        expect(t.turn).toBe(2);
        await page.reload();
        const again = await current(page);
        expect([again.q, again.turn]).toEqual([t.q, 2]);
        refreshedAt = key;
        Object.assign(t, again);
        mkdirSync(shots, { recursive: true });
        await page.screenshot({ path: join(shots, 'annotate-turn2.png'), fullPage: true });
      }
      if (!skippedQ && step >= 9 && t.turn === 1) {
        await page.click('[data-choice="skip"]');
        skippedQ = t.q;
        await nextShown(page, key);
        continue;
      }
      const choice = choices[step % 4];
      if (step === 6) {
        // The server goes down, the annotator clicks, the page keeps the vote and delivers it once a
        // new server is up on the same port with the same vote file.
        await server.close();
        await page.click(`[data-choice="${choice}"]`);
        await page.waitForSelector('#offline:not([hidden])', { timeout: 10_000 });
        reconnectErrors = errors.length;
        await start();
        restartedAt = key;
      } else {
        await page.click(`[data-choice="${choice}"]`);
      }
      expected.push({ q: t.q, turn: t.turn, left: t.left, right: t.right, winner: winnerOf(choice, t.left) });
      await nextShown(page, key);
    }
    expect(refreshedAt).toBeDefined();
    expect(restartedAt).toBeDefined();
    expect(skippedQ).toBeDefined();
    // Only the refused connections while the server was down may be logged.
    expect(errors.filter((e) => !/ERR_CONNECTION_REFUSED/.test(e))).toEqual([]);
    expect(reconnectErrors).toBeGreaterThan(0);

    const votes = readFileSync(voteFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as HumanVote);
    expect(votes.map((v) => ({ q: String(v.question_id), turn: v.turn, left: v.shown_left, right: v.shown_right, winner: v.winner }))).toEqual(expected);
    for (const v of votes) {
      expect([v.model_a, v.model_b]).toEqual(MODELS);
      expect(v.lang).toBe('DE');
      expect(v.judge).toMatch(/^anno_[0-9a-f]{12}$/);
      expect(typeof v.tstamp).toBe('number');
    }
    expect(new Set(votes.map((v) => v.judge)).size).toBe(1);
    expect(readFileSync(voteFile, 'utf8')).not.toMatch(/ada|lovelace/i);
    // Both display orders occurred, and each turn 2 follows its turn 1 with the same pair.
    expect(new Set(votes.map((v) => v.shown_left))).toEqual(new Set(MODELS));
    const t1 = new Set(votes.filter((v) => v.turn === 1).map((v) => String(v.question_id)));
    for (const v of votes.filter((x) => x.turn === 2)) expect(t1.has(String(v.question_id))).toBe(true);
    expect(votes.some((v) => String(v.question_id) === skippedQ)).toBe(false);
    await page.close();
  });

  it('shows the reference solution of the current turn where the benchmark has one', async () => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url);
    // The stored pseudonym survives in the page, so a new tab continues for the same annotator.
    await page.waitForSelector('#task');
    await expect(page.locator('#who').innerText()).resolves.toMatch(/anno_[0-9a-f]{12}/);
    // The reference answers of reference_answer/gpt-4.jsonl, else the question's own "reference" list.
    const refs = new Map<string, string[]>();
    for (const l of readFileSync(join(fx.benchDir, 'mt_bench_DE/question.jsonl'), 'utf8').trim().split('\n')) {
      const q = JSON.parse(l) as { question_id: string; reference?: string[] };
      if (q.reference?.length) refs.set(q.question_id, q.reference);
    }
    for (const l of readFileSync(join(fx.benchDir, 'mt_bench_DE/reference_answer/gpt-4.jsonl'), 'utf8').trim().split('\n')) {
      const r = JSON.parse(l) as { question_id: string; choices: { turns: string[] }[] };
      refs.set(r.question_id, r.choices[0].turns);
    }
    let seenWith = 0, seenWithout = 0;
    for (let step = 0; step < 40 && (seenWith === 0 || seenWithout === 0); step++) {
      const t = await current(page);
      const ref = refs.get(t.q);
      if (ref) {
        await page.click('#reference summary');
        await expect(page.locator('#reference .text').innerText()).resolves.toBe(ref[t.turn - 1]);
        seenWith++;
      } else {
        await expect(page.locator('#reference').count()).resolves.toBe(0);
        seenWithout++;
      }
      await page.click('[data-choice="tie"]');
      await nextShown(page, `${t.q}/${t.turn}`);
    }
    expect([seenWith > 0, seenWithout > 0]).toEqual([true, true]);
    expect(errors).toEqual([]);
    // Another study (another vote file, so another salt) on the same port asks for the name again
    // rather than reusing a pseudonym that means nothing under its salt.
    await server.close();
    server = await startAnnotationServer({ benchDir: fx.benchDir, lang: 'DE', models: MODELS, out: join(tmp.dir, 'other.jsonl'), port, rand, log: () => {} });
    await page.reload();
    await page.waitForSelector('#name', { timeout: 10_000 });
    await expect(page.locator('#task').count()).resolves.toBe(0);
    await page.close();
  });
});
