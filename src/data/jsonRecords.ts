import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { countNewlines, decodeUtf8, formatMB, InvalidUtf8, startsWithBom, UTF8_BOM } from './strictUtf8.js';

/** One top-level record of a data file and the line it starts on, for error messages. */
export interface JsonRecord {
  value: Record<string, unknown>;
  line: number;
}

/** An error in an input file; the message always starts with `file:line:`. */
export class DataFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'DataFileError';
  }
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fh.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** The file's bytes (gunzipped when it is gzip), in chunks of about 1 MiB. */
async function* byteChunks(file: string): AsyncGenerator<Buffer> {
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  const stream = (await isGzip(file)) ? raw.pipe(createGunzip({ chunkSize: 1 << 20 })) : raw;
  // A gunzip error would otherwise surface without the file name.
  raw.on('error', (e) => stream.destroy(e));
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
  } finally {
    // A reader that stops early (a bad record) leaves the file stream open under gunzip otherwise.
    raw.destroy();
    stream.destroy();
  }
}

/** Where JSON.parse says it failed, as a line number counted from `startLine`. */
function parseOrThrow(text: string, file: string, startLine: number): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    let line = startLine;
    if (pos) for (let i = 0, end = Number(pos[1]); i < end && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
    throw new DataFileError(file, line, `malformed JSON${pos ? '' : ' in the record starting on this line'}: ${msg}`);
  }
}

function asObject(v: unknown, file: string, line: number): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new DataFileError(file, line, `expected a JSON object as record, found ${Array.isArray(v) ? 'an array' : typeof v}`);
  }
  return v as Record<string, unknown>;
}

const NL = 10, QUOTE = 34, BACKSLASH = 92, OPEN_OBJ = 123, CLOSE_OBJ = 125, OPEN_ARR = 91, CLOSE_ARR = 93, COMMA = 44;
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13;

/**
 * Records larger than this are refused before they are decoded: a few hundred MB in one string
 * would take V8 past its limits (a fatal "invalid size", not an exception) once tokenized.
 */
export const DEFAULT_MAX_RECORD_MB = 16;

export interface JsonRecordOptions {
  /** Largest record (one JSON-lines line, or one element of the top-level array), in MB (10^6 bytes). */
  maxRecordMB?: number;
  /** The setting to name in the size error, e.g. `data.maxRecordMB`. */
  limitName?: string;
}

/**
 * One record's bytes as they arrive: slices of the read chunks (a record rarely spans two), or only
 * its size once it is over the limit, so an oversized record is measured without being held.
 */
class RecordBytes {
  parts: Buffer[] = [];
  size = 0;
  line = 0;
  offset = 0;
  constructor(private readonly limit: number) {}
  start(line: number, offset: number): void {
    this.parts = [];
    this.size = 0;
    this.line = line;
    this.offset = offset;
  }
  add(b: Buffer): void {
    this.size += b.length;
    if (this.size <= this.limit) this.parts.push(b);
    else this.parts = [];
  }
  get oversized(): boolean {
    return this.size > this.limit;
  }
  bytes(): Buffer {
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
  }
}

/**
 * Streams the records of a JSON-array or JSON-lines file, gzipped or not (detected from the bytes,
 * not the name). The scanner works on bytes: each record is cut out (a multi-GB array is never held
 * as one string), checked against the size limit, decoded as strict UTF-8 and parsed on its own.
 * Bytes that are not UTF-8 are an error naming the line and byte offset (of the decompressed data,
 * for gzip); a UTF-8 byte-order mark at the start is skipped.
 */
export async function* readJsonRecords(file: string, opts: JsonRecordOptions = {}): AsyncGenerator<JsonRecord> {
  const maxMB = opts.maxRecordMB ?? DEFAULT_MAX_RECORD_MB;
  const limit = Math.floor(maxMB * 1e6);
  const rec = new RecordBytes(limit);
  let kind: 'unknown' | 'array' | 'lines' = 'unknown';
  let line = 1;
  let offset = 0; // of the current chunk's first byte in the (decompressed) file
  let bomChecked = false;
  let pendingBom: Buffer | undefined;
  // JSON array state
  type Expect = 'open' | 'firstOrEnd' | 'value' | 'sepOrEnd' | 'eof';
  let expect: Expect = 'open';
  let depth = 0, inStr = false, esc = false;
  let inRecord = false;

  const tooBig = (what: string) =>
    new DataFileError(file, rec.line, `the record starting here is ${formatMB(rec.size)}${what}; the limit is ${maxMB} MB` +
      (opts.limitName ? ` (${opts.limitName})` : ''));
  const finish = (): JsonRecord => {
    if (rec.oversized) throw tooBig('');
    const bytes = rec.bytes();
    let text: string;
    try {
      text = decodeUtf8(bytes);
    } catch (e) {
      if (!(e instanceof InvalidUtf8)) throw e;
      throw new DataFileError(file, rec.line + countNewlines(bytes, 0, e.index), `invalid UTF-8 at byte offset ${rec.offset + e.index} (${e.detail})`);
    }
    return { value: asObject(parseOrThrow(text, file, rec.line), file, rec.line), line: rec.line };
  };

  for await (let chunk of byteChunks(file)) {
    if (!bomChecked) {
      // The mark may be split across the first chunks of a gunzip stream.
      if (pendingBom) chunk = Buffer.concat([pendingBom, chunk]);
      if (chunk.length < 3 && chunk.every((b, i) => b === UTF8_BOM[i])) { pendingBom = chunk; continue; }
      pendingBom = undefined;
      bomChecked = true;
      if (startsWithBom(chunk)) { chunk = chunk.subarray(3); offset = 3; }
    }
    if (kind === 'unknown') {
      let i = 0;
      while (i < chunk.length && isSpace(chunk[i])) if (chunk[i++] === NL) line++;
      if (i === chunk.length) { offset += chunk.length; continue; }
      kind = chunk[i] === OPEN_ARR ? 'array' : 'lines';
      if (kind === 'lines') rec.start(line, offset + i);
      chunk = chunk.subarray(i);
      offset += i;
    }
    if (kind === 'lines') {
      let from = 0, nl: number;
      while ((nl = chunk.indexOf(NL, from)) >= 0) {
        rec.add(chunk.subarray(from, nl));
        if (!isBlank(rec)) yield finish();
        line++;
        from = nl + 1;
        rec.start(line, offset + from);
      }
      rec.add(chunk.subarray(from));
      offset += chunk.length;
      continue;
    }
    let segStart = inRecord ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (depth > 0) {
        if (inStr) {
          if (esc) esc = false;
          else if (c === BACKSLASH) esc = true;
          else if (c === QUOTE) inStr = false;
          else if (c === NL) line++;
          continue;
        }
        if (c === QUOTE) inStr = true;
        else if (c === OPEN_OBJ || c === OPEN_ARR) depth++;
        else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
          if (--depth === 0) {
            rec.add(chunk.subarray(segStart, i + 1));
            inRecord = false;
            yield finish();
          }
        } else if (c === NL) line++;
        continue;
      }
      if (isSpace(c)) { if (c === NL) line++; continue; }
      const found = () => JSON.stringify(c < 0x80 ? String.fromCharCode(c) : `\\x${c.toString(16)}`);
      switch (expect) {
        case 'open':
          expect = 'firstOrEnd';
          break;
        case 'firstOrEnd':
        case 'value':
          if (c === CLOSE_ARR && expect === 'firstOrEnd') { expect = 'eof'; break; }
          if (c !== OPEN_OBJ) throw new DataFileError(file, line, `malformed JSON: expected a record '{' in the top-level array, found ${found()}`);
          depth = 1; segStart = i; inRecord = true; expect = 'sepOrEnd';
          rec.start(line, offset + i);
          break;
        case 'sepOrEnd':
          if (c === COMMA) expect = 'value';
          else if (c === CLOSE_ARR) expect = 'eof';
          else throw new DataFileError(file, line, `malformed JSON: expected ',' or ']' after the record, found ${found()}`);
          break;
        case 'eof':
          throw new DataFileError(file, line, `malformed JSON: unexpected ${found()} after the end of the top-level array`);
      }
    }
    if (inRecord) rec.add(chunk.subarray(segStart));
    offset += chunk.length;
  }
  if (kind === 'unknown') throw new DataFileError(file, line, 'the file is empty');
  if (kind === 'lines') {
    if (!isBlank(rec)) yield finish();
    return;
  }
  if (inRecord) {
    if (rec.oversized) throw tooBig(' and never closed');
    throw new DataFileError(file, rec.line, 'malformed JSON: the record starting here is never closed');
  }
  if (expect !== 'eof') throw new DataFileError(file, line, "malformed JSON: the top-level array is never closed with ']'");
}

/** A JSON-lines line of only whitespace (an empty line, a trailing "\r") holds no record. */
function isBlank(rec: RecordBytes): boolean {
  if (rec.oversized) return false;
  for (const p of rec.parts) for (let i = 0; i < p.length; i++) if (!isSpace(p[i])) return false;
  return true;
}
