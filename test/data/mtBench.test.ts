import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { questionLanguage, readMtBenchAnswers, readMtBenchQuestions } from '../../src/data/index.js';
import { sharedData, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

describe('MT-Bench readers on small fixtures', () => {
  it('keeps MT-Bench-X string ids, the language suffix and an empty reference list', async () => {
    const f = join(tmp.dir, 'question.jsonl');
    writeFileSync(f, [
      { question_id: '81_DE', category: 'writing', turns: ['Schreibe.', 'Nochmal.'], reference: [] },
      { question_id: '101_DE', category: 'reasoning', turns: ['Rate.', 'Und jetzt?'], reference: ['Zweiter.', 'Letzter.'] },
    ].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const qs = await readMtBenchQuestions(f);
    expect(qs).toEqual([
      { questionId: '81_DE', category: 'writing', turns: ['Schreibe.', 'Nochmal.'], reference: [] },
      { questionId: '101_DE', category: 'reasoning', turns: ['Rate.', 'Und jetzt?'], reference: ['Zweiter.', 'Letzter.'] },
    ]);
    expect(qs.map((q) => questionLanguage(q.questionId))).toEqual(['DE', 'DE']);
  });
  it('keeps numeric MT-Bench ids as numbers; reference answers by id', async () => {
    const f = join(tmp.dir, 'q2.jsonl');
    writeFileSync(f, JSON.stringify({ question_id: 81, category: 'writing', turns: ['a', 'b'] }) + '\n');
    expect(await readMtBenchQuestions(f)).toEqual([{ questionId: 81, category: 'writing', turns: ['a', 'b'] }]);
    expect(questionLanguage(81)).toBeUndefined();
    const r = join(tmp.dir, 'gpt-4.jsonl');
    writeFileSync(r, JSON.stringify({ question_id: '101_FR', answer_id: 'x', model_id: 'gpt-4', choices: [{ index: 0, turns: ['t1', 't2'] }], tstamp: 1 }) + '\n');
    expect((await readMtBenchAnswers(r)).get('101_FR')).toEqual({ questionId: '101_FR', answerId: 'x', modelId: 'gpt-4', turns: ['t1', 't2'] });
  });
  it('names the line of a bad record', async () => {
    const f = join(tmp.dir, 'q3.jsonl');
    writeFileSync(f, JSON.stringify({ question_id: 1, category: 'x', turns: ['a'] }) + '\n' + JSON.stringify({ question_id: 2, category: 'x', turns: 'a' }) + '\n');
    await expect(readMtBenchQuestions(f)).rejects.toThrow(`${f}:2: field "turns" must be a list`);
    writeFileSync(f, JSON.stringify({ question_id: 1, category: 'x', turns: ['a'] }) + '\n' + JSON.stringify({ question_id: 1, category: 'x', turns: ['a'] }) + '\n');
    await expect(readMtBenchQuestions(f)).rejects.toThrow(`${f}:2: duplicate question_id 1`);
  });
});

const haveShared = existsSync(sharedData);
describe.skipIf(!haveShared)('MT-Bench files in ../shared/data (skipped: ../shared is absent)', () => {
  it('reads FastChat MT-Bench: 80 questions, ids 81..160, two turns each', async () => {
    const qs = await readMtBenchQuestions(join(sharedData, 'fastchat-mt_bench/question.jsonl'));
    expect(qs.map((q) => q.questionId)).toEqual(Array.from({ length: 80 }, (_, i) => 81 + i));
    expect(qs.every((q) => q.turns.length === 2)).toBe(true);
  });
  it.each(['EN', 'DE', 'FR', 'IT', 'ES'])('reads MT-Bench-X %s: ids "N_%s", same categories as MT-Bench, reference answers', async (lang) => {
    const dir = join(sharedData, `mt-bench-x/mt_bench_${lang}`);
    const qs = await readMtBenchQuestions(join(dir, 'question.jsonl'));
    const base = await readMtBenchQuestions(join(sharedData, 'fastchat-mt_bench/question.jsonl'));
    expect(qs.map((q) => q.questionId)).toEqual(base.map((q) => `${q.questionId}_${lang}`));
    expect(qs.map((q) => q.category)).toEqual(base.map((q) => q.category));
    expect(qs.every((q) => questionLanguage(q.questionId) === lang && q.turns.length === 2)).toBe(true);
    const refs = await readMtBenchAnswers(join(dir, 'reference_answer/gpt-4.jsonl'));
    expect(refs.size).toBe(30);
    for (const [id, ans] of refs) {
      expect(qs.some((q) => q.questionId === id)).toBe(true);
      expect(ans.turns).toHaveLength(2);
    }
  });
});
