import type { BenchLanguage, PairJudgment, SingleJudgment } from './types.js';

/** `<benchDir>/mt_bench_<LANG>`. */
export function langDir(benchDir: string, lang: string): string {
  return `${benchDir}/mt_bench_${lang}`;
}

/** The languages of a bench dir: its mt_bench_XX folders, sorted. */
export async function listBenchLanguages(_benchDir: string): Promise<string[]> {
  throw new Error('listBenchLanguages: landing shortly');
}

/** Questions, model answers, reference answers and judgments of one language; named errors (file:line) on bad input. */
export async function loadBenchLanguage(_benchDir: string, _lang: string): Promise<BenchLanguage> {
  throw new Error('loadBenchLanguage: landing shortly');
}

/** Reads a judgment JSONL (single and pairwise records may be mixed). */
export async function readJudgmentFile(_file: string): Promise<{ single: SingleJudgment[]; pairwise: PairJudgment[] }> {
  throw new Error('readJudgmentFile: landing shortly');
}
