// The vote file is the only state of the annotation server: every vote is one FastChat
// human-judgment line, appended and fsynced before the browser hears "saved", so a refresh, a
// crash or a restart loses nothing and the server rebuilds each annotator's progress from it.
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncPath } from '../../util/durable.js';
import { DataFileError } from '../../data/jsonRecords.js';

export const WINNERS = ['model_a', 'model_b', 'tie', 'tie (bothbad)'] as const;
export type Winner = (typeof WINNERS)[number];

/** One line of the vote file: FastChat's human-judgment fields plus what the annotator saw. */
export interface HumanVote {
  question_id: number | string;
  model_a: string;
  model_b: string;
  winner: Winner;
  /** The annotator's pseudonym (see pseudonym.ts), never the name. */
  judge: string;
  turn: number;
  /** The model whose answer was shown in the left column ("A" on the page), and the right one. */
  shown_left: string;
  shown_right: string;
  lang: string;
  /** Unix time in seconds, as FastChat's tstamp. */
  tstamp: number;
}

function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

export function checkVote(v: unknown, file: string, line: number): HumanVote {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DataFileError(file, line, 'not a JSON object');
  const r = v as Record<string, unknown>;
  const need = (k: string, ok: boolean) => {
    if (!ok) throw new DataFileError(file, line, `field "${k}" is missing or has the wrong type`);
  };
  need('question_id', typeof r.question_id === 'string' || typeof r.question_id === 'number');
  for (const k of ['model_a', 'model_b', 'judge']) need(k, typeof r[k] === 'string' && r[k] !== '');
  need('turn', Number.isInteger(r.turn) && (r.turn as number) >= 1);
  if (!WINNERS.includes(r.winner as Winner)) throw new DataFileError(file, line, `field "winner" must be one of ${WINNERS.join(', ')}`);
  return r as unknown as HumanVote;
}

/**
 * An append-only JSONL file opened for durable appends. Lines already there are checked and kept
 * as they are; only a torn last line (a crash mid-write leaves one without its newline) is cut off,
 * since appending after it would merge two records into one unreadable line.
 */
export class AppendLog<T> {
  readonly records: T[] = [];
  private fd: number;

  constructor(
    readonly file: string,
    check: (v: unknown, file: string, line: number) => T,
    warn: (msg: string) => void = () => {},
  ) {
    mkdirSync(dirname(file), { recursive: true });
    const created = !existsSync(file);
    this.fd = openSync(file, 'a+');
    if (created) fsyncPath(dirname(file));
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    const tail = lines.pop()!; // '' when the file ends with a newline
    lines.forEach((l, i) => {
      if (l.trim() === '') return;
      let v: unknown;
      try {
        v = JSON.parse(l);
      } catch (e) {
        throw new DataFileError(file, i + 1, `malformed JSON: ${(e as Error).message}`);
      }
      this.records.push(check(v, file, i + 1));
    });
    if (tail.trim() !== '') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(tail);
      } catch {
        parsed = undefined;
      }
      if (parsed === undefined) {
        warn(`${file}:${lines.length + 1}: cut off a torn last line (${Buffer.byteLength(tail)} bytes, no newline) left by an interrupted write`);
        ftruncateSync(this.fd, Buffer.byteLength(text) - Buffer.byteLength(tail));
      } else {
        this.records.push(check(parsed, file, lines.length + 1));
        writeAll(this.fd, '\n');
      }
      fsyncSync(this.fd);
    }
  }

  /** Appends one record and returns once it is on disk. */
  append(v: T): void {
    writeAll(this.fd, JSON.stringify(v) + '\n');
    fsyncSync(this.fd);
    this.records.push(v);
  }

  close(): void {
    closeSync(this.fd);
  }
}

export const openVoteLog = (file: string, warn?: (msg: string) => void) => new AppendLog<HumanVote>(file, checkVote, warn);

/** A question an annotator chose to skip; kept beside the votes so it stays skipped after a restart. */
export interface SkipRecord {
  judge: string;
  question_id: number | string;
  turn: number;
  tstamp: number;
}

function checkSkip(v: unknown, file: string, line: number): SkipRecord {
  const r = v as Record<string, unknown>;
  if (typeof r !== 'object' || r === null || typeof r.judge !== 'string' || (typeof r.question_id !== 'string' && typeof r.question_id !== 'number')) {
    throw new DataFileError(file, line, 'a skip record needs "judge" and "question_id"');
  }
  return r as unknown as SkipRecord;
}

export const openSkipLog = (file: string, warn?: (msg: string) => void) => new AppendLog<SkipRecord>(file, checkSkip, warn);
