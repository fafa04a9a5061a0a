import { DataFileError, readJsonRecords } from './jsonRecords.js';
import type { Conversation, Message, Role } from './types.js';

export type DataFormat = 'bactrian' | 'lima' | 'chat';
export const DATA_FORMATS: readonly DataFormat[] = ['bactrian', 'lima', 'chat'];

/** Counts of what a reader read and what it left out, so nothing is dropped silently. */
export interface ReadStats {
  read: number;
  skipped: number;
  /** `file:line: reason` of the first few skipped records, for the run log. */
  skippedExamples: string[];
  /** Records of a multi-language file that belong to another language. */
  otherLanguage: number;
}

export const newReadStats = (): ReadStats => ({ read: 0, skipped: 0, skippedExamples: [], otherLanguage: 0 });

export interface ReaderOptions {
  /** The language these records are in; a record's own `lang`/`language` field must match it. */
  lang: string;
  /** 'skip' leaves out records with a missing or empty field and counts them; 'error' (default) throws. */
  onInvalid?: 'error' | 'skip';
  /** The file holds several languages, so every record must say which one it is in. */
  sharedFile?: boolean;
  stats?: ReadStats;
  /** Largest record in MB (default DEFAULT_MAX_RECORD_MB); a larger one is an error naming file:line. */
  maxRecordMB?: number;
}

/** Thrown for a record that is well-formed JSON but not a valid item; may be skipped by config. */
class InvalidRecord extends Error {}

function str(rec: Record<string, unknown>, field: string, opts: { optional?: boolean; allowEmpty?: boolean } = {}): string {
  const v = rec[field];
  if (v === undefined || v === null) {
    if (opts.optional) return '';
    throw new InvalidRecord(`field "${field}" is missing`);
  }
  if (typeof v !== 'string') throw new InvalidRecord(`field "${field}" must be a string, found ${Array.isArray(v) ? 'array' : typeof v}`);
  if (!opts.allowEmpty && v.trim() === '') throw new InvalidRecord(`field "${field}" is empty`);
  return v;
}

function idOf(rec: Record<string, unknown>, fallback: number | undefined): string {
  const v = rec.id;
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (v === undefined && fallback !== undefined) return String(fallback);
  throw new InvalidRecord(v === undefined ? 'field "id" is missing' : 'field "id" must be a non-empty string or a number');
}

/** Checks the shape every template relies on: optional system first, then user/assistant alternating, ending on assistant. */
export function checkTurns(messages: Message[], where = 'messages'): void {
  let i = 0;
  if (messages[0]?.role === 'system') i = 1;
  if (messages.length - i < 2) throw new InvalidRecord(`${where}: needs at least one user and one assistant turn`);
  for (let k = i; k < messages.length; k++) {
    const want: Role = (k - i) % 2 === 0 ? 'user' : 'assistant';
    if (messages[k].role !== want) throw new InvalidRecord(`${where}[${k}]: expected role "${want}", found "${messages[k].role}"`);
  }
  if (messages[messages.length - 1].role !== 'assistant') throw new InvalidRecord(`${where}: the last turn must be the assistant's`);
}

function bactrian(rec: Record<string, unknown>): Omit<Conversation, 'lang'> {
  const id = idOf(rec, undefined);
  const instruction = str(rec, 'instruction');
  const input = str(rec, 'input', { optional: true, allowEmpty: true });
  const output = str(rec, 'output');
  // Alpaca-style join: the input is context for the instruction, after a blank line.
  const user = input.trim() === '' ? instruction : `${instruction}\n\n${input}`;
  return { id, messages: [{ role: 'user', content: user }, { role: 'assistant', content: output }] };
}

function lima(rec: Record<string, unknown>, row: number): Omit<Conversation, 'lang'> {
  const conv = rec.conversations;
  if (!Array.isArray(conv)) throw new InvalidRecord(conv === undefined ? 'field "conversations" is missing' : 'field "conversations" must be an array of strings');
  if (conv.length < 2 || conv.length % 2 !== 0) {
    throw new InvalidRecord(`field "conversations" must hold user/assistant pairs, found ${conv.length} turns`);
  }
  const messages = conv.map((t, k): Message => {
    if (typeof t !== 'string' || t.trim() === '') throw new InvalidRecord(`field "conversations[${k}]" must be a non-empty string`);
    return { role: k % 2 === 0 ? 'user' : 'assistant', content: t };
  });
  return { id: idOf(rec, row), messages };
}

const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

function chat(rec: Record<string, unknown>, row: number): Omit<Conversation, 'lang'> {
  const msgs = rec.messages;
  if (!Array.isArray(msgs)) throw new InvalidRecord(msgs === undefined ? 'field "messages" is missing' : 'field "messages" must be an array');
  const messages = msgs.map((m, k): Message => {
    if (typeof m !== 'object' || m === null) throw new InvalidRecord(`field "messages[${k}]" must be an object {role, content}`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || !ROLES.includes(role as Role)) {
      throw new InvalidRecord(`field "messages[${k}].role" must be one of ${ROLES.join(', ')}, found ${JSON.stringify(role)}`);
    }
    if (typeof content !== 'string' || content.trim() === '') throw new InvalidRecord(`field "messages[${k}].content" is missing or empty`);
    return { role: role as Role, content };
  });
  checkTurns(messages, 'field "messages"');
  return { id: idOf(rec, row), messages };
}

function recordLang(rec: Record<string, unknown>): string | undefined {
  const v = rec.lang ?? rec.language;
  return typeof v === 'string' ? v : undefined;
}

/**
 * Streams the conversations of one data file in one language. Records with their own
 * `lang`/`language` field that names another language are counted and passed over, so one
 * file may hold several languages. Rows without an `id` get their row number among the
 * records of this language (parallel LIMA files are aligned by row).
 */
export async function* readConversations(file: string, format: DataFormat, opts: ReaderOptions): AsyncGenerator<Conversation> {
  const stats = opts.stats ?? newReadStats();
  let row = 0;
  for await (const { value, line } of readJsonRecords(file, { maxRecordMB: opts.maxRecordMB, limitName: 'data.maxRecordMB' })) {
    const own = recordLang(value);
    if (own === undefined && opts.sharedFile) {
      throw new DataFileError(file, line, 'field "lang" is missing; the file is configured for several languages, so each record must name its own');
    }
    if (own !== undefined && own.toUpperCase() !== opts.lang.toUpperCase()) {
      stats.otherLanguage++;
      continue;
    }
    try {
      const item = format === 'bactrian' ? bactrian(value) : format === 'lima' ? lima(value, row) : chat(value, row);
      row++;
      stats.read++;
      yield { ...item, lang: opts.lang };
    } catch (e) {
      if (!(e instanceof InvalidRecord)) throw e;
      row++;
      if (opts.onInvalid !== 'skip') throw new DataFileError(file, line, e.message);
      stats.skipped++;
      if (stats.skippedExamples.length < 10) stats.skippedExamples.push(`${file}:${line}: ${e.message}`);
    }
  }
}

/** Reads a whole file into memory; see readConversations. */
export async function readAllConversations(file: string, format: DataFormat, opts: ReaderOptions): Promise<Conversation[]> {
  const out: Conversation[] = [];
  for await (const c of readConversations(file, format, opts)) out.push(c);
  return out;
}
