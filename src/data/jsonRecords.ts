import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';

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

async function* textChunks(file: string): AsyncGenerator<string> {
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  const stream = (await isGzip(file)) ? raw.pipe(createGunzip()) : raw;
  // A gunzip error would otherwise surface without the file name.
  raw.on('error', (e) => stream.destroy(e));
  stream.setEncoding('utf8');
  try {
    for await (const chunk of stream) yield chunk as string;
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
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
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 0xfeff;

/**
 * Streams the records of a JSON-array or JSON-lines file, gzipped or not (detected from
 * the bytes, not the name). Records of a JSON array are cut out by a small scanner and
 * parsed one at a time, so a multi-GB array never has to be held as one string.
 */
export async function* readJsonRecords(file: string): AsyncGenerator<JsonRecord> {
  let kind: 'unknown' | 'array' | 'lines' = 'unknown';
  let line = 1;
  // JSON lines state
  let pending = '';
  // JSON array state
  type Expect = 'open' | 'firstOrEnd' | 'value' | 'sepOrEnd' | 'eof';
  let expect: Expect = 'open';
  let depth = 0, inStr = false, esc = false, elemLine = 0;
  let parts: string[] = [];
  let sawAny = false;

  for await (const chunk of textChunks(file)) {
    if (kind === 'unknown') {
      const m = /[^\s\ufeff]/.exec(chunk);
      if (!m) { for (const ch of chunk) if (ch === '\n') line++; continue; }
      kind = m[0] === '[' ? 'array' : 'lines';
    }
    sawAny = true;
    if (kind === 'lines') {
      const buf = pending + chunk;
      let from = 0, nl: number;
      while ((nl = buf.indexOf('\n', from)) >= 0) {
        const text = buf.slice(from, nl);
        from = nl + 1;
        if (text.trim() !== '') yield { value: asObject(parseOrThrow(text, file, line), file, line), line };
        line++;
      }
      pending = buf.slice(from);
      continue;
    }
    let segStart = depth > 0 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
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
            parts.push(chunk.slice(segStart, i + 1));
            const text = parts.join('');
            parts = [];
            yield { value: asObject(parseOrThrow(text, file, elemLine), file, elemLine), line: elemLine };
          }
        } else if (c === NL) line++;
        continue;
      }
      if (isSpace(c)) { if (c === NL) line++; continue; }
      const found = () => JSON.stringify(String.fromCharCode(c));
      switch (expect) {
        case 'open':
          expect = 'firstOrEnd';
          break;
        case 'firstOrEnd':
        case 'value':
          if (c === CLOSE_ARR && expect === 'firstOrEnd') { expect = 'eof'; break; }
          if (c !== OPEN_OBJ) throw new DataFileError(file, line, `malformed JSON: expected a record '{' in the top-level array, found ${found()}`);
          depth = 1; elemLine = line; segStart = i; expect = 'sepOrEnd';
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
    if (depth > 0) parts.push(chunk.slice(segStart));
  }
  if (!sawAny) throw new DataFileError(file, line, 'the file is empty');
  if (kind === 'lines') {
    if (pending.trim() !== '') yield { value: asObject(parseOrThrow(pending, file, line), file, line), line };
    return;
  }
  if (depth > 0) throw new DataFileError(file, elemLine, 'malformed JSON: the record starting here is never closed');
  if (expect !== 'eof') throw new DataFileError(file, line, "malformed JSON: the top-level array is never closed with ']'");
}
