// MT-Bench / MT-Bench-X answer files with FastChat's gen_model_answer.py semantics: temperature by
// category, greedy below 1e-4, the second turn seeing the model's own first answer, answers cut at
// the first stop token, special-token strings removed and whitespace stripped; one JSON line per
// question, appended and fsynced as soon as the question is done (resumable), sorted at the end.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { replaceFileAtomic } from '../util/durable.js';
import { encodeConversation, questionLanguage, type MtBenchQuestion, type Message } from '../data/index.js';
import type { Generator } from '../generate/engine.js';
import type { LoadedModel } from '../generate/load.js';
import type { SamplingParams } from '../generate/sampling.js';

/** FastChat's llm_judge/common.py temperature_config; any other category gets 0.7. */
export const TEMPERATURE_BY_CATEGORY: Readonly<Record<string, number>> = {
  writing: 0.7,
  roleplay: 0.7,
  extraction: 0.0,
  math: 0.0,
  coding: 0.0,
  reasoning: 0.0,
  stem: 0.1,
  humanities: 0.1,
};
export const temperatureFor = (category: string): number => TEMPERATURE_BY_CATEGORY[category] ?? 0.7;

export interface AnswerLine {
  question_id: number | string;
  answer_id: string;
  model_id: string;
  choices: { index: number; turns: string[] }[];
  tstamp: number;
}

export interface AnswerJob {
  questions: MtBenchQuestion[];
  out: string;
  /** Language for the system message when the id has no suffix. */
  lang?: string;
}

export interface AnswerOptions {
  modelId: string;
  maxNewTokens: number;
  /** Extra stop strings (FastChat's conv.stop_str: cut where found after position 0). */
  stop?: string[];
  /** Seed of the per-question generators (sampled categories). */
  seed?: number;
  /** Questions answered concurrently (the generator's slots bound the batch). */
  concurrency: number;
  /** Sampling besides the temperature (FastChat leaves HF's defaults: top_k 50, top_p 1). */
  sampling?: Omit<SamplingParams, 'temperature' | 'seed'>;
  onProgress?: (p: { done: number; total: number; skipped: number; tokens: number }) => void;
  shouldStop?: () => boolean;
}

const SHORTUUID_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
/** A 22-character id from shortuuid's alphabet, as FastChat's shortuuid.uuid() gives. */
export function shortUuid(): string {
  const b = randomBytes(22);
  let s = '';
  for (let i = 0; i < 22; i++) s += SHORTUUID_ALPHABET[b[i] % SHORTUUID_ALPHABET.length];
  return s;
}

/**
 * Reads the answers already in `file`, keyed by String(question_id). A torn last line (a crash in
 * the middle of an append) is cut off; any other malformed line is an error naming it.
 */
export function readExistingAnswers(file: string): Map<string, AnswerLine> {
  const out = new Map<string, AnswerLine>();
  if (!existsSync(file)) return out;
  const text = readFileSync(file, 'utf8');
  let pos = 0;
  let lineNo = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const line = text.slice(pos, nl < 0 ? text.length : nl);
    lineNo++;
    if (nl < 0) {
      // No newline: the write of this line never finished.
      truncateSync(file, Buffer.byteLength(text.slice(0, pos), 'utf8'));
      break;
    }
    pos = nl + 1;
    if (line.trim() === '') continue;
    let v: AnswerLine;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${lineNo}: not valid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== 'object' || (typeof v.question_id !== 'number' && typeof v.question_id !== 'string') || !Array.isArray(v.choices)) {
      throw new Error(`${file}:${lineNo}: not a model answer line (needs question_id and choices)`);
    }
    out.set(String(v.question_id), v);
  }
  return out;
}

/** Appends one line and fsyncs it, so a finished answer survives a crash. */
function appendDurable(file: string, line: string): void {
  const fd = openSync(file, 'a');
  try {
    const b = Buffer.from(line, 'utf8');
    let off = 0;
    while (off < b.byteLength) off += writeSync(fd, b, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Sorted by question id, one line per id (the last one written wins), like FastChat's
 * reorg_answer_file. String ids ("81_DE") sort by their number first, so MT-Bench-X files keep the
 * question file's order (Python's sorted() would put "100_DE" before "81_DE").
 */
export function reorgAnswerFile(file: string): void {
  const answers = readExistingAnswers(file);
  const key = (id: number | string): [number, string] => {
    if (typeof id === 'number') return [id, ''];
    const m = /^(\d+)(.*)$/.exec(id);
    return m ? [Number(m[1]), m[2]] : [Infinity, id];
  };
  const sorted = [...answers.values()].sort((a, b) => {
    const [an, as] = key(a.question_id), [bn, bs] = key(b.question_id);
    return an - bn || (as < bs ? -1 : as > bs ? 1 : 0);
  });
  replaceFileAtomic(file, sorted.map((a) => JSON.stringify(a) + '\n').join(''));
}

/** FastChat's post-processing of one decoded answer. */
export function cleanAnswer(text: string, stops: readonly string[], specialTokens: readonly string[]): string {
  let out = text;
  const at = stops.map((s) => out.indexOf(s)).filter((i) => i > 0).sort((a, b) => a - b);
  if (at.length) out = out.slice(0, at[0]);
  for (const s of specialTokens) if (s) out = out.split(s).join('');
  return out.trim();
}

/** A seed per (question, turn), so answers do not depend on batching or order. */
function seedFor(base: number, id: number | string, turn: number): number {
  let h = 2166136261;
  for (const ch of `${base}#${String(id)}#${turn}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

/**
 * Answers every question of every job not yet in its output file. Returns how many were answered
 * now and skipped as already done. Throws only for setup errors; a failed generation writes
 * "ERROR" as FastChat does.
 */
export async function answerQuestions(m: LoadedModel, gen: Generator, jobs: AnswerJob[], o: AnswerOptions): Promise<{ answered: number; skipped: number }> {
  if (!m.template) throw new Error(`${m.dir}: has no chat_template in tokenizer_config.json; pass --template teuken|llama2|<tokenizer_config.json>`);
  const template = m.template;
  const specials = [m.tokenizer.bosId, m.tokenizer.eosId, m.tokenizer.unkId, m.tokenizer.padId].filter((id) => id >= 0).map((id) => m.tokenizer.idToPiece(id));
  const todo: { q: MtBenchQuestion; out: string; lang: string }[] = [];
  let skipped = 0;
  for (const job of jobs) {
    mkdirSync(dirname(job.out), { recursive: true });
    const done = readExistingAnswers(job.out);
    for (const q of job.questions) {
      if (done.has(String(q.questionId))) skipped++;
      else {
        const lang = (questionLanguage(q.questionId) ?? job.lang ?? 'EN').toUpperCase();
        todo.push({ q, out: job.out, lang });
      }
    }
  }
  const total = todo.length;
  let done = 0;
  let tokens = 0;
  o.onProgress?.({ done, total, skipped, tokens });

  const answerOne = async ({ q, out, lang }: (typeof todo)[number]) => {
    const temperature = temperatureFor(q.category);
    const messages: Message[] = [];
    const turns: string[] = [];
    for (let j = 0; j < q.turns.length; j++) {
      messages.push({ role: 'user', content: q.turns[j] });
      let output: string;
      try {
        const prompt = encodeConversation(m.tokenizer, template, { id: String(q.questionId), lang, messages }, { generationPrompt: true }).ids;
        const r = await gen.generate({
          prompt,
          maxNewTokens: o.maxNewTokens,
          sampling: { topK: 50, topP: 1, ...o.sampling, temperature, seed: seedFor(o.seed ?? 0, q.questionId, j) },
        });
        tokens += r.ids.length;
        output = cleanAnswer(r.text, o.stop ?? [], specials);
      } catch (e) {
        process.stderr.write(`ERROR question ID: ${JSON.stringify(q.questionId)}: ${(e as Error).message}\n`);
        output = 'ERROR';
      }
      turns.push(output);
      messages.push({ role: 'assistant', content: output });
    }
    const line: AnswerLine = { question_id: q.questionId, answer_id: shortUuid(), model_id: o.modelId, choices: [{ index: 0, turns }], tstamp: Date.now() / 1000 };
    appendDurable(out, JSON.stringify(line) + '\n');
    done++;
    o.onProgress?.({ done, total, skipped, tokens });
  };

  // A pool of workers, each answering one question at a time; the generator batches their turns.
  let next = 0;
  const worker = async () => {
    while (next < todo.length && !o.shouldStop?.()) await answerOne(todo[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
  if (!o.shouldStop?.()) for (const job of jobs) if (existsSync(job.out)) reorgAnswerFile(job.out);
  return { answered: done, skipped };
}
