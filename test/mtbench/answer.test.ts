// `polytune mtbench answer`: FastChat's semantics, the answer-file schema on the real MT-Bench-X
// questions, and a kill -9 in the middle of a file followed by a rerun.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeConversation, readMtBenchQuestions } from '../../src/data/index.js';
import { Generator } from '../../src/generate/engine.js';
import { loadModel, type LoadedModel } from '../../src/generate/load.js';
import { answerQuestions, cleanAnswer, readExistingAnswers, reorgAnswerFile, temperatureFor } from '../../src/mtbench/answer.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { makeTinyChatCheckpoint } from '../helpers/tiny-checkpoint.js';

const shared = resolve(import.meta.dirname, '../../../shared/data/mt-bench-x');
const LANGS = ['EN', 'DE', 'FR', 'IT', 'ES'];
const haveBench = LANGS.every((l) => existsSync(join(shared, `mt_bench_${l}`, 'question.jsonl')));

let tmp: string;
let modelDir: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'polytune-mtb-'));
  modelDir = await makeTinyChatCheckpoint(join(tmp, 'ck'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('FastChat semantics', () => {
  it('temperature by category, 0.7 for any other', () => {
    expect(['writing', 'roleplay', 'extraction', 'math', 'coding', 'reasoning', 'stem', 'humanities', 'other'].map(temperatureFor)).toEqual([0.7, 0.7, 0, 0, 0, 0, 0.1, 0.1, 0.7]);
  });

  it('cleans answers: stop strings only after position 0, special-token strings removed, stripped', () => {
    expect(cleanAnswer('  Hallo</s> Welt\nUser: x', ['\nUser:'], ['<s>', '</s>'])).toBe('Hallo Welt');
    expect(cleanAnswer('\nUser: at 0 stays', ['\nUser:'], [])).toBe('User: at 0 stays');
  });

  it('reorg sorts ids numerically first (MT-Bench-X order), keeps the last line per id; a torn last line is dropped', () => {
    const f = join(tmp, 'reorg.jsonl');
    const line = (id: number | string, t: string) => JSON.stringify({ question_id: id, answer_id: 'a', model_id: 'm', choices: [{ index: 0, turns: [t] }], tstamp: 1 }) + '\n';
    writeFileSync(f, line('100_DE', 'x') + line('81_DE', 'old') + line('9_DE', 'y') + line('81_DE', 'new') + '{"question_id": "82_D');
    expect([...readExistingAnswers(f).keys()]).toEqual(['100_DE', '81_DE', '9_DE']);
    reorgAnswerFile(f);
    const lines = readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.question_id)).toEqual(['9_DE', '81_DE', '100_DE']);
    expect(lines[1].choices[0].turns).toEqual(['new']);
    writeFileSync(f, 'not json\n');
    expect(() => readExistingAnswers(f)).toThrow(/reorg.jsonl:1: not valid JSON/);
  });
});

describe.skipIf(!haveBench)(`answers to the real MT-Bench-X questions${haveBench ? '' : ` (skipped: ${shared} is absent)`}`, () => {
  let m: LoadedModel;
  beforeAll(async () => {
    m = await loadModel(modelDir, { dtype: 'f32' });
  });
  afterAll(() => m?.dispose());

  it('--bench-dir answers all five languages: 80 questions each, two turns, ids and order preserved', () => {
    const bench = join(tmp, 'bench');
    for (const l of LANGS) {
      mkdirSync(join(bench, `mt_bench_${l}`), { recursive: true });
      copyFileSync(join(shared, `mt_bench_${l}`, 'question.jsonl'), join(bench, `mt_bench_${l}`, 'question.jsonl'));
    }
    const r = runCli(['mtbench', 'answer', '--model', modelDir, '--bench-dir', bench, '--model-id', 'tiny', '--max-new-tokens', '4', '--batch', '8'], { timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    for (const l of LANGS) {
      const qs = readFileSync(join(bench, `mt_bench_${l}`, 'question.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x));
      const ans = readFileSync(join(bench, `mt_bench_${l}`, 'model_answer', 'tiny.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x));
      expect(qs).toHaveLength(80);
      expect(ans.map((a) => a.question_id)).toEqual(qs.map((q) => q.question_id));
      for (const a of ans) {
        expect(Object.keys(a).sort()).toEqual(['answer_id', 'choices', 'model_id', 'question_id', 'tstamp']);
        expect(a.question_id).toMatch(new RegExp(`^\\d+_${l}$`));
        expect(a.model_id).toBe('tiny');
        expect(a.answer_id).toMatch(/^[2-9A-HJ-NP-Za-km-z]{22}$/);
        expect(typeof a.tstamp).toBe('number');
        expect(a.choices).toHaveLength(1);
        expect(a.choices[0].index).toBe(0);
        expect(a.choices[0].turns).toHaveLength(2);
        for (const t of a.choices[0].turns) expect(typeof t === 'string' && t === t.trim()).toBe(true);
      }
    }
  }, 300_000);

  it("the second turn sees the model's own cleaned first answer; greedy categories are reproducible", async () => {
    const questions = (await readMtBenchQuestions(join(shared, 'mt_bench_FR', 'question.jsonl'))).filter((q) => q.category === 'math').slice(0, 2);
    const out = join(tmp, 'fr-math.jsonl');
    const gen = new Generator(m.model, m.tokenizer, { slots: 2, maxLen: 2048, eos: m.generation.eos });
    await answerQuestions(m, gen, [{ questions, out }], { modelId: 'tiny', maxNewTokens: 12, concurrency: 2 });
    const got = readExistingAnswers(out);
    for (const q of questions) {
      // Recompute by hand: greedy (math: temperature 0), French system message from the id suffix.
      const conv = (msgs: { role: 'user' | 'assistant'; content: string }[]) => encodeConversation(m.tokenizer, m.template!, { id: 'x', lang: 'FR', messages: msgs }, { generationPrompt: true }).ids;
      const clean = (t: string) => cleanAnswer(t, [], ['<s>', '</s>', '<unk>', '<pad>']);
      const a1 = clean((await gen.generate({ prompt: conv([{ role: 'user', content: q.turns[0] }]), maxNewTokens: 12, sampling: { temperature: 0 } })).text);
      const a2 = clean((await gen.generate({ prompt: conv([{ role: 'user', content: q.turns[0] }, { role: 'assistant', content: a1 }, { role: 'user', content: q.turns[1] }]), maxNewTokens: 12, sampling: { temperature: 0 } })).text);
      expect(got.get(String(q.questionId))!.choices[0].turns).toEqual([a1, a2]);
    }
    gen.dispose();
  });

  it('kill -9 in the middle of a file, then rerun: the file completes with every question once', async () => {
    const qfile = join(shared, 'mt_bench_DE', 'question.jsonl');
    const out = join(tmp, 'killed', 'answers.jsonl');
    const args = ['mtbench', 'answer', '--model', modelDir, '--questions', qfile, '--out', out, '--model-id', 'tiny', '--max-new-tokens', '24', '--batch', '1'];
    const child = spawnCli(args);
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    // Kill as soon as a few answers are on disk (bounded wait).
    const t0 = Date.now();
    let lines = 0;
    while (Date.now() - t0 < 60_000) {
      lines = existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean).length : 0;
      if (lines >= 3) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    await exited;
    const before = readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
    expect(before).toBeGreaterThanOrEqual(3);
    expect(before).toBeLessThan(80);
    const r = runCli(args, { timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`answered ${80 - before} questions \\(${before} already in the output\\)`));
    const ids = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l).question_id);
    const qids = readFileSync(qfile, 'utf8').trim().split('\n').map((l) => JSON.parse(l).question_id);
    expect(ids).toEqual(qids);
  }, 300_000);
});
