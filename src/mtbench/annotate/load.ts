// The annotation set of one language: questions, each model's answers and the reference solutions.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readMtBenchAnswers, readMtBenchQuestions } from '../../data/mtBench.js';
import { langDir } from '../bench-files.js';
import type { AnnotationItem } from './tasks.js';


/** Where `annotate` writes votes unless --out says otherwise. */
export function defaultVoteFile(benchDir: string, lang: string): string {
  return join(langDir(benchDir, lang), 'human_judgment', 'votes.jsonl');
}

export interface AnnotationSet {
  items: AnnotationItem[];
  /** Per model, the questions its answer file lacks (those pairs are never shown). */
  missing: Map<string, string[]>;
}

export async function loadAnnotationSet(benchDir: string, lang: string, models: string[]): Promise<AnnotationSet> {
  const dir = langDir(benchDir, lang);
  const qFile = join(dir, 'question.jsonl');
  if (!existsSync(qFile)) throw new Error(`${qFile}: no such file (is --bench-dir the folder holding mt_bench_${lang.toUpperCase()}/?)`);
  const questions = await readMtBenchQuestions(qFile);
  const refFile = join(dir, 'reference_answer', 'gpt-4.jsonl');
  const refs = existsSync(refFile) ? await readMtBenchAnswers(refFile) : new Map();
  const answers = new Map<string, Map<string, string[]>>();
  for (const m of models) {
    const f = join(dir, 'model_answer', `${m}.jsonl`);
    if (!existsSync(f)) throw new Error(`${f}: no answer file for model "${m}" (generate answers first, or fix --models)`);
    const byQ = await readMtBenchAnswers(f);
    answers.set(m, new Map([...byQ].map(([q, a]) => [q, a.turns])));
  }
  const missing = new Map<string, string[]>();
  const items = questions.map((q) => {
    const id = String(q.questionId);
    const it: AnnotationItem = { questionId: q.questionId, category: q.category, turns: q.turns, answers: new Map() };
    const ref = refs.get(id)?.turns ?? (q.reference && q.reference.length > 0 ? q.reference : undefined);
    if (ref) it.reference = ref;
    for (const m of models) {
      const a = answers.get(m)!.get(id);
      if (a && a.length >= q.turns.length) it.answers.set(m, a);
      else missing.set(m, [...(missing.get(m) ?? []), id]);
    }
    return it;
  });
  return { items, missing };
}
