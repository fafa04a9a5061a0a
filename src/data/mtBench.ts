import { DataFileError, readJsonRecords } from './jsonRecords.js';

/** An MT-Bench or MT-Bench-X question; `questionId` is kept exactly as the file gives it (81 or "81_DE"). */
export interface MtBenchQuestion {
  questionId: number | string;
  category: string;
  turns: string[];
  /** Reference answers per turn where the file has them; may be an empty list, as in MT-Bench-X. */
  reference?: string[];
}

/** A model's answers to one question, as FastChat writes them (reference_answer/gpt-4.jsonl). */
export interface MtBenchAnswer {
  questionId: number | string;
  answerId?: string;
  modelId: string;
  /** choices[0].turns: one answer per question turn. */
  turns: string[];
}

function strings(v: unknown, field: string, file: string, line: number, minLen: number): string[] {
  if (!Array.isArray(v) || v.length < minLen || v.some((t) => typeof t !== 'string')) {
    throw new DataFileError(file, line, `field "${field}" must be a list of ${minLen ? 'at least ' + minLen + ' ' : ''}strings`);
  }
  return v as string[];
}

function questionId(v: unknown, file: string, line: number): number | string {
  if ((typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && v !== '')) return v;
  throw new DataFileError(file, line, 'field "question_id" must be an integer or a non-empty string');
}

/** The language suffix of an MT-Bench-X id ("81_DE" -> "DE"); undefined for plain MT-Bench ids. */
export function questionLanguage(id: number | string): string | undefined {
  return typeof id === 'string' ? /_([A-Za-z]{2,3})$/.exec(id)?.[1] : undefined;
}

/** Reads question.jsonl of MT-Bench (FastChat) or MT-Bench-X; ids must be unique. */
export async function readMtBenchQuestions(file: string): Promise<MtBenchQuestion[]> {
  const out: MtBenchQuestion[] = [];
  const seen = new Set<string>();
  for await (const { value: r, line } of readJsonRecords(file)) {
    const id = questionId(r.question_id, file, line);
    if (seen.has(String(id))) throw new DataFileError(file, line, `duplicate question_id ${JSON.stringify(id)}`);
    seen.add(String(id));
    if (typeof r.category !== 'string' || r.category === '') throw new DataFileError(file, line, 'field "category" is missing or empty');
    const q: MtBenchQuestion = { questionId: id, category: r.category, turns: strings(r.turns, 'turns', file, line, 1) };
    if (r.reference !== undefined) q.reference = strings(r.reference, 'reference', file, line, 0);
    out.push(q);
  }
  return out;
}

/** Reads a FastChat answer file (reference answers or model answers), keyed by String(question_id). */
export async function readMtBenchAnswers(file: string): Promise<Map<string, MtBenchAnswer>> {
  const out = new Map<string, MtBenchAnswer>();
  for await (const { value: r, line } of readJsonRecords(file)) {
    const id = questionId(r.question_id, file, line);
    if (out.has(String(id))) throw new DataFileError(file, line, `duplicate question_id ${JSON.stringify(id)}`);
    const choices = r.choices;
    if (!Array.isArray(choices) || choices.length === 0 || typeof choices[0] !== 'object' || choices[0] === null) {
      throw new DataFileError(file, line, 'field "choices" must be a non-empty list of {index, turns}');
    }
    const turns = strings((choices[0] as Record<string, unknown>).turns, 'choices[0].turns', file, line, 1);
    if (typeof r.model_id !== 'string') throw new DataFileError(file, line, 'field "model_id" is missing');
    out.set(String(id), {
      questionId: id,
      answerId: typeof r.answer_id === 'string' ? r.answer_id : undefined,
      modelId: r.model_id,
      turns,
    });
  }
  return out;
}
