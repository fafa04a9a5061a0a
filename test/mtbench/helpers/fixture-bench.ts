import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Short judge prompts with FastChat's names, types, placeholders and output formats. */
export function fixturePrompts(bothBad: boolean): Record<string, unknown>[] {
  const verdict = `Output "[[A]]", "[[B]]", "[[C]]" for a tie${bothBad ? ' or "[[D]]" if both are bad' : ''}.`;
  const conv = (who: string, a: string) => `<${who}>\nUser: {question_1}\n${who}: {${a}_1}\nUser: {question_2}\n${who}: {${a}_2}\n</${who}>`;
  const refConv = 'REF\nUser: {question_1}\nRef: {ref_answer_1}\nUser: {question_2}\nRef: {ref_answer_2}\n/REF\n';
  return [
    { name: 'pair-v2', type: 'pairwise', system_prompt: `Compare. ${verdict}`, prompt_template: 'Q: {question}\nA: {answer_a}\nB: {answer_b}', output_format: '[[A]]' },
    { name: 'pair-v2-multi-turn', type: 'pairwise', system_prompt: `Compare turn 2. ${verdict}`, prompt_template: `${conv('A', 'answer_a')}\n${conv('B', 'answer_b')}`, output_format: '[[A]]' },
    { name: 'pair-math-v1', type: 'pairwise', system_prompt: `Compare with the reference. ${verdict}`, prompt_template: 'Q: {question}\nREF: {ref_answer_1}\nA: {answer_a}\nB: {answer_b}', output_format: '[[A]]' },
    { name: 'pair-math-v1-multi-turn', type: 'pairwise', system_prompt: `Compare turn 2 with the reference. ${verdict}`, prompt_template: `${refConv}${conv('A', 'answer_a')}\n${conv('B', 'answer_b')}`, output_format: '[[A]]' },
    { name: 'single-v1', type: 'single', system_prompt: 'You are a helpful assistant.', prompt_template: 'Rate {{1-10}} as "[[rating]]".\nQ: {question}\nA: {answer}', output_format: '[[rating]]' },
    { name: 'single-math-v1', type: 'single', system_prompt: 'You are a helpful assistant.', prompt_template: 'Rate against the reference.\nQ: {question}\nREF: {ref_answer_1}\nA: {answer}', output_format: '[[rating]]' },
    { name: 'single-v1-multi-turn', type: 'single', system_prompt: 'Rate the second answer as "[[rating]]".', prompt_template: conv('Assistant', 'answer'), output_format: '[[rating]]' },
    { name: 'single-math-v1-multi-turn', type: 'single', system_prompt: 'Rate the second answer against the reference.', prompt_template: `${refConv}${conv('Assistant', 'answer')}`, output_format: '[[rating]]' },
  ];
}

export const FIXTURE_QUESTIONS = [
  { question_id: '81_XX', category: 'writing', turns: ['Write a poem.', 'Now shorter.'] },
  { question_id: '82_XX', category: 'writing', turns: ['Write a letter.', 'Now formal.'] },
  { question_id: '111_XX', category: 'math', turns: ['What is 2+3?', 'And times 4?'] },
  { question_id: '91_XX', category: 'roleplay', turns: ['Be a pirate.', 'Say goodbye.'] },
];

export const answerText = (model: string, qid: string, turn: number) => `answer of ${model} <<${model}|${qid}|${turn}>>`;

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** A bench dir with mt_bench_<lang>/: questions, judge prompts, reference answers and answers of `models`. */
export function writeFixtureBench(root: string, lang = 'XX', models = ['alpha', 'beta'], bothBad = true): string {
  const dir = join(root, `mt_bench_${lang}`);
  mkdirSync(join(dir, 'model_answer'), { recursive: true });
  mkdirSync(join(dir, 'reference_answer'), { recursive: true });
  const qs = FIXTURE_QUESTIONS.map((q) => ({ ...q, question_id: q.question_id.replace('XX', lang) }));
  writeFileSync(join(dir, 'question.jsonl'), jsonl(qs));
  writeFileSync(join(dir, 'judge_prompts.jsonl'), jsonl(fixturePrompts(bothBad)));
  writeFileSync(join(dir, 'reference_answer', 'gpt-4.jsonl'), jsonl(qs.filter((q) => q.category === 'math').map((q) => ({
    question_id: q.question_id, answer_id: 'r', model_id: 'gpt-4', choices: [{ index: 0, turns: ['5', '20'] }], tstamp: 0,
  }))));
  for (const m of models) {
    writeFileSync(join(dir, 'model_answer', `${m}.jsonl`), jsonl(qs.map((q) => ({
      question_id: q.question_id, answer_id: `${m}-${q.question_id}`, model_id: m, choices: [{ index: 0, turns: [1, 2].map((t) => answerText(m, q.question_id, t)) }], tstamp: 0,
    }))));
  }
  return dir;
}
