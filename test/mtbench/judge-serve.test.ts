import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runJudge, summarizeResults, type PairJudgment, type SingleJudgment } from '../../src/mtbench/index.js';
import { answerText } from './helpers/fixture-bench.js';

// The generation lane's `polytune serve` and its tiny checkpoint helper; this test runs once they are merged.
const serveModule = resolve(__dirname, '../../src/serve/index.ts');
const checkpointHelper = resolve(__dirname, '../helpers/tiny-checkpoint.ts');
const mtx = resolve(__dirname, '../../../shared/data/mt-bench-x/mt_bench_DE');
const missing = [serveModule, checkpointHelper, mtx].filter((p) => !existsSync(p));

interface Served { url: string; port: number; close(): Promise<void> | void }
type StartServer = (o: { model: string; host: string; port: number; maxNewTokens?: number }) => Promise<Served>;
type MakeCheckpoint = (dir: string, opts?: { maxPositions?: number }) => Promise<string | void> | string | void;

const root = mkdtempSync(join(tmpdir(), 'polytune-judge-serve-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.skipIf(missing.length > 0)(`judging with a local model through polytune serve${missing.length ? ` (skipped: ${missing.join(', ')} absent)` : ''}`, () => {
  it('single and pairwise runs over real German questions, prompts (v2 with [[D]]) and references: every record complete and consistent', async () => {
    // Specifiers built at run time, so the typecheck does not need the modules before the merge.
    const { startServer } = (await import(pathToFileURL(serveModule).href)) as { startServer: StartServer };
    const { makeTinyChatCheckpoint } = (await import(pathToFileURL(checkpointHelper).href)) as { makeTinyChatCheckpoint: MakeCheckpoint };
    const ckptDir = join(root, 'ckpt');
    mkdirSync(ckptDir, { recursive: true });
    // Judge prompts hold two whole answers; byte-fallback German needs a long context.
    const model = (await makeTinyChatCheckpoint(ckptDir, { maxPositions: 16384 })) || ckptDir;
    // The judge asks for 2048 tokens; a random tiny model would talk until then, which proves nothing more.
    const server = await startServer({ model, host: '127.0.0.1', port: 0, maxNewTokens: 48 });
    try {
      const base = server.url.replace(/\/+$/, '');
      const judgeUrl = base.endsWith('/v1') ? base : `${base}/v1`;
      // A writing question and a math question (reference-based prompts) of the real German set.
      const bench = join(root, 'bench'), dir = join(bench, 'mt_bench_DE');
      mkdirSync(join(dir, 'model_answer'), { recursive: true });
      const keep = ['81_DE', '111_DE'];
      const questions = readFileSync(join(mtx, 'question.jsonl'), 'utf8').split('\n').filter((l) => keep.some((id) => l.includes(`"${id}"`)));
      writeFileSync(join(dir, 'question.jsonl'), questions.join('\n') + '\n');
      cpSync(join(mtx, 'reference_answer'), join(dir, 'reference_answer'), { recursive: true });
      for (const m of ['alpha', 'beta']) {
        writeFileSync(join(dir, 'model_answer', `${m}.jsonl`), keep.map((id) => JSON.stringify({ question_id: id, answer_id: id, model_id: m, choices: [{ index: 0, turns: [answerText(m, id, 1), answerText(m, id, 2)] }], tstamp: 0 })).join('\n') + '\n');
      }
      // The served model's id where the server lists it (OpenAI's GET /v1/models), else any name.
      const listed = await fetch(`${judgeUrl}/models`).then((r) => (r.ok ? r.json() : null)).catch(() => null) as { data?: { id?: string }[] } | null;
      const judgeModel = listed?.data?.[0]?.id ?? 'tiny';
      const common = { benchDir: bench, lang: 'DE', models: ['alpha', 'beta'], judgeUrl, judgeModel, apiKey: '', progress: false, onWarning: () => {}, maxRetries: 2, retryBaseMs: 10 };
      const single = await runJudge({ ...common, mode: 'single', judgePrompts: join(mtx, 'judge_prompts.jsonl') });
      expect(single).toMatchObject({ planned: 8, skipped: 0, written: 8, failed: [] });
      const sRecs = readFileSync(single.outFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SingleJudgment);
      expect(sRecs.map((r) => r.judge[1]).sort()).toEqual(['single-math-v1', 'single-math-v1', 'single-math-v1-multi-turn', 'single-math-v1-multi-turn', 'single-v1', 'single-v1', 'single-v1-multi-turn', 'single-v1-multi-turn']);
      for (const r of sRecs) {
        expect(r.user_prompt).toContain(answerText(r.model, String(r.question_id), r.turn));
        expect(typeof r.judgment).toBe('string');
        expect(Number.isFinite(r.score)).toBe(true);
      }
      expect(single.invalidScores).toBe(sRecs.filter((r) => r.score === -1).length);
      expect(sRecs.find((r) => r.question_id === '111_DE' && r.turn === 1)!.user_prompt).toContain('[Der Beginn der Referenzantwort]');

      const pair = await runJudge({ ...common, mode: 'pairwise', judgePrompts: join(mtx, 'judge_prompts_v2.jsonl') });
      expect(pair).toMatchObject({ planned: 4, written: 4, failed: [] });
      const pRecs = readFileSync(pair.outFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as PairJudgment);
      const allowed = ['model_1', 'model_2', 'tie', 'tie (bothbad)', 'error'];
      for (const r of pRecs) {
        expect(allowed).toContain(r.g1_winner);
        expect(allowed).toContain(r.g2_winner);
        expect(r.g1_user_prompt.indexOf(answerText('alpha', String(r.question_id), 1))).toBeLessThan(r.g1_user_prompt.indexOf(answerText('beta', String(r.question_id), 1)));
        expect(r.g2_user_prompt.indexOf(answerText('beta', String(r.question_id), 1))).toBeLessThan(r.g2_user_prompt.indexOf(answerText('alpha', String(r.question_id), 1)));
      }
      expect(pair.errorVerdicts).toBe(pRecs.reduce((n, r) => n + Number(r.g1_winner === 'error') + Number(r.g2_winner === 'error'), 0));

      const s = await summarizeResults(bench);
      const alpha = s.pairwise.find((r) => r.model === 'alpha' && r.opponent === 'all' && r.category === 'all' && r.turn === 'all')!;
      expect(alpha.total + alpha.errors).toBe(4);
      const bias = s.positionBias.find((r) => r.category === 'all')!;
      expect(bias.games + bias.errors).toBe(4);
      expect(bias.consistent + bias.inconsistent).toBe(bias.games);

      const again = await runJudge({ ...common, mode: 'pairwise', judgePrompts: join(mtx, 'judge_prompts_v2.jsonl') });
      expect(again).toMatchObject({ skipped: 4, written: 0 });
    } finally {
      await server.close();
    }
  }, 600_000); // 16 judge replies of up to 2048 tokens from a CPU model
});
