import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJudgmentFile } from '../../src/mtbench/index.js';
import { parseScore, parseVerdict } from '../../src/mtbench/parse.js';
import { buildUserPrompt } from '../../src/mtbench/judge.js';
import { formatPython, promptName, readJudgePrompts } from '../../src/mtbench/prompts.js';
import { readMtBenchQuestions } from '../../src/data/index.js';

const mtx = resolve(__dirname, '../../../shared/data/mt-bench-x');
const haveShared = existsSync(mtx);
const tmp = mkdtempSync(join(tmpdir(), 'polytune-parse-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('score and verdict parsing (FastChat rules)', () => {
  it('[[N]] first, then [N], else -1; fractions kept', () => {
    expect(parseScore('Rating: [[7]]')).toBe(7);
    expect(parseScore('Bewertung: [[10]]')).toBe(10);
    expect(parseScore('[[8.5]]')).toBe(8.5);
    expect(parseScore('see [3] and then [[6]]')).toBe(6); // the double-bracket pattern wins wherever it is
    expect(parseScore('Rating: [4]')).toBe(4);
    expect(parseScore('[[rating]] would be 5')).toBe(-1);
    expect(parseScore('$ERROR$')).toBe(-1);
    expect(parseScore('')).toBe(-1);
  });
  it('verdicts: [[A]] before [[B]] before [[C]] by priority, [[D]] only where offered, else error', () => {
    const v2 = { output_format: '[[A]]', offersBothBad: false };
    const v2d = { output_format: '[[A]]', offersBothBad: true };
    expect(parseVerdict('... [[B]]', v2)).toBe('B');
    expect(parseVerdict('[[B]] ... [[A]]', v2)).toBe('A');
    expect(parseVerdict('[[C]]', v2)).toBe('tie');
    expect(parseVerdict('[[D]]', v2)).toBe('error');
    expect(parseVerdict('[[D]]', v2d)).toBe('bothbad');
    expect(parseVerdict('[[C]] or maybe [[D]]', v2d)).toBe('tie');
    expect(parseVerdict('A is better', v2d)).toBe('error');
    expect(parseVerdict('[A]', v2)).toBe('error');
    const two = { output_format: '[[rating_a,rating_b]]', offersBothBad: false };
    expect(parseVerdict('[[7, 3]]', two)).toBe('A');
    expect(parseVerdict('[[7.0,7.05]]', two)).toBe('tie');
    expect(parseVerdict('[2,9]', two)).toBe('B');
    expect(parseVerdict('none', two)).toBe('error');
  });
  it('prompt names by category and turn', () => {
    expect(['writing', 'math', 'reasoning', 'coding', 'stem'].map((c) => promptName('single', c, 1))).toEqual(['single-v1', 'single-math-v1', 'single-math-v1', 'single-math-v1', 'single-v1']);
    expect(promptName('single', 'roleplay', 2)).toBe('single-v1-multi-turn');
    expect(promptName('pairwise', 'coding', 2)).toBe('pair-math-v1-multi-turn');
    expect(promptName('pairwise', 'humanities', 1)).toBe('pair-v2');
  });
  it('Python str.format: fields, {{ }}, no re-scan of values, named errors', () => {
    expect(formatPython('{a} {{x}} {b}', { a: '{b}', b: 'B' }, 'f:1')).toBe('{b} {x} B');
    expect(() => formatPython('{c}', { a: '' }, 'f:1')).toThrow('f:1: prompt_template needs {c}');
    expect(() => formatPython('x } y', {}, 'f:2')).toThrow('f:2: prompt_template has a single "}" at offset 2');
    expect(() => formatPython('{0}', {}, 'f:3')).toThrow('f:3: prompt_template has an unsupported field "{0"');
  });
  it('judge prompts: garbage lines and bad fields are named by file:line', async () => {
    const f = join(tmp, 'jp.jsonl');
    const ok = { name: 'single-v1', type: 'single', system_prompt: 's', prompt_template: '{question} {answer}', output_format: '[[rating]]' };
    writeFileSync(f, JSON.stringify(ok) + '\n\n{not json}\n');
    await expect(readJudgePrompts(f)).rejects.toThrow(`${f}:3: not a JSON judge prompt record`);
    writeFileSync(f, JSON.stringify(ok) + '\n' + JSON.stringify({ ...ok, name: 'x', output_format: '[[score]]' }) + '\n');
    await expect(readJudgePrompts(f)).rejects.toThrow(`${f}:2: judge prompt "x": output_format "[[score]]" is not one of "[[rating]]"`);
    writeFileSync(f, JSON.stringify(ok) + '\n' + JSON.stringify(ok) + '\n');
    await expect(readJudgePrompts(f)).rejects.toThrow(`${f}:2: duplicate judge prompt name "single-v1"`);
    writeFileSync(f, 'xx "quoted" {' + JSON.stringify(ok).slice(1) + '\n');
    await expect(readJudgePrompts(f)).rejects.toThrow(`${f}:1: not a JSON judge prompt record`);
  });
});

describe.skipIf(!haveShared)(`real MT-Bench-X files${haveShared ? '' : ` (skipped: ${mtx} is absent)`}`, () => {
  it.each(['DE', 'EN'])('mt_bench_%s/model_judgment/gpt-4_single.jsonl: our parser gives every stored score, $ERROR$ rows as -1', async (lang) => {
    const file = join(mtx, `mt_bench_${lang}/model_judgment/gpt-4_single.jsonl`);
    const { single, pairwise } = await readJudgmentFile(file);
    const raw = readFileSync(file, 'utf8').trim().split('\n');
    expect(single).toHaveLength(raw.length);
    expect(pairwise).toHaveLength(0);
    for (const j of single) expect(parseScore(j.judgment)).toBe(j.score);
    const errors = single.filter((j) => j.judgment === '$ERROR$');
    expect(errors.every((j) => j.score === -1)).toBe(true);
    expect({ rows: single.length, errors: errors.length, minus1: single.filter((j) => j.score === -1).length }).toEqual(
      lang === 'DE' ? { rows: 24, errors: 4, minus1: 4 } : { rows: 12, errors: 0, minus1: 0 },
    );
  });

  it('mt_bench_DE/judge_prompts_v2.jsonl: the stray "gewählt un" before line 1 is dropped with a warning naming the line; [[D]] offered', async () => {
    const file = join(mtx, 'mt_bench_DE/judge_prompts_v2.jsonl');
    expect(readFileSync(file, 'utf8').slice(0, 11)).toBe('gewählt un{');
    const warnings: string[] = [];
    const prompts = await readJudgePrompts(file, (m) => warnings.push(m));
    expect(warnings).toEqual([`${file}:1: ignored 10 stray characters "gewählt un" before the record`]);
    expect([...prompts.keys()]).toEqual(['pair-v2', 'pair-v2-multi-turn', 'pair-math-v1', 'pair-math-v1-multi-turn']);
    expect([...prompts.values()].every((p) => p.offersBothBad && p.type === 'pairwise')).toBe(true);
    expect(prompts.get('pair-v2')!.source).toBe(`${file}:1`);
    expect(prompts.get('pair-v2')!.system_prompt.startsWith('Bitte beurteilen Sie als unparteiischer Richter')).toBe(true);
  });

  it.each(['DE', 'EN', 'FR', 'IT', 'ES'])('mt_bench_%s/judge_prompts.jsonl: the eight FastChat prompts, no [[D]]', async (lang) => {
    const prompts = await readJudgePrompts(join(mtx, `mt_bench_${lang}/judge_prompts.jsonl`));
    expect([...prompts.keys()].sort()).toEqual(['pair-math-v1', 'pair-math-v1-multi-turn', 'pair-v2', 'pair-v2-multi-turn', 'single-math-v1', 'single-math-v1-multi-turn', 'single-v1', 'single-v1-multi-turn']);
    expect([...prompts.values()].some((p) => p.offersBothBad)).toBe(false);
  });

  it.each(['DE', 'EN'])('mt_bench_%s: our prompt filling reproduces every stored user_prompt from the question file and judge_prompts.jsonl', async (lang) => {
    const dir = join(mtx, `mt_bench_${lang}`);
    const prompts = await readJudgePrompts(join(dir, 'judge_prompts.jsonl'));
    const questions = new Map((await readMtBenchQuestions(join(dir, 'question.jsonl'))).map((q) => [String(q.questionId), q]));
    const { single } = await readJudgmentFile(join(dir, 'model_judgment/gpt-4_single.jsonl'));
    for (const j of single) {
      const q = questions.get(String(j.question_id))!;
      const prompt = prompts.get(j.judge[1])!;
      expect(j.judge[1]).toBe(promptName('single', q.category, j.turn));
      // The stored prompt with the question texts fixed and the answers free: the answers it held.
      const fixed: Record<string, string> = { question: q.turns[0], question_1: q.turns[0], question_2: q.turns[1] };
      const names: string[] = [];
      const pattern = prompt.prompt_template.split(/(\{\w+\})/).map((part) => {
        const name = /^\{(\w+)\}$/.exec(part)?.[1];
        if (!name) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        if (name in fixed) return fixed[name].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(name);
        return '([\\s\\S]*)';
      }).join('');
      const m = new RegExp(`^${pattern}$`).exec(j.user_prompt);
      expect(m, `${j.question_id} turn ${j.turn}`).not.toBeNull();
      const got = Object.fromEntries(names.map((n, i) => [n, m![i + 1]]));
      const turns = j.turn === 1 ? [got.answer] : [got.answer_1, got.answer_2];
      const rebuilt = buildUserPrompt({ question: q, turn: j.turn as 1 | 2, prompt }, { questionId: q.questionId, modelId: j.model, turns }, undefined, undefined);
      expect(rebuilt).toBe(j.user_prompt);
    }
  });
});
