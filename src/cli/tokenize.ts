import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_MAX_RECORD_MB } from '../data/jsonRecords.js';
import { decodeUtf8, formatMB, InvalidUtf8, startsWithBom } from '../data/strictUtf8.js';
import { SentencePieceTokenizer } from '../tokenizer/index.js';

interface TokenizeOptions {
  model: string;
  pieces: boolean;
  decode: boolean;
  /** Longest stdin line, in MB (10^6 bytes). */
  maxLineMb: number;
}

/** `tokenize`: stdin line by line to one JSON array per line (or back, with --decode). */
export function registerTokenize(program: Command): void {
  program
    .command('tokenize')
    .description('Encode stdin lines to JSON id arrays with a SentencePiece model (or decode them)')
    .requiredOption('--model <file>', 'SentencePiece .model file')
    .option('--pieces', 'print pieces instead of ids', false)
    .option('--decode', 'read JSON id arrays, one per line, and print text', false)
    .option('--max-line-mb <mb>', 'refuse longer stdin lines (MB)', parseMb, DEFAULT_MAX_RECORD_MB)
    .action(async (opts: TokenizeOptions) => {
      if (opts.pieces && opts.decode) throw new Error('tokenize: --pieces and --decode cannot be combined');
      const tok = SentencePieceTokenizer.load(opts.model);
      await tokenizeStream(tok, opts, process.stdin, process.stdout);
    });
}

function parseMb(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 500)) throw new InvalidArgumentError('must be a number of MB in (0, 500]');
  return n;
}

export async function tokenizeStream(
  tok: SentencePieceTokenizer,
  opts: Pick<TokenizeOptions, 'pieces' | 'decode'> & { maxLineMb?: number },
  input: AsyncIterable<Buffer | string>,
  output: NodeJS.WritableStream,
): Promise<void> {
  const maxMb = opts.maxLineMb ?? DEFAULT_MAX_RECORD_MB;
  const limit = Math.floor(maxMb * 1e6);
  let lineNo = 0;
  let batch = '';
  const emit = async (bytes: Buffer, offset: number) => {
    lineNo++;
    let line: string;
    try {
      line = decodeUtf8(lineNo === 1 && startsWithBom(bytes) ? bytes.subarray(3) : bytes);
    } catch (e) {
      if (!(e instanceof InvalidUtf8)) throw e;
      const at = e.index + (lineNo === 1 && startsWithBom(bytes) ? 3 : 0);
      throw new Error(`stdin line ${lineNo}: invalid UTF-8 at byte offset ${offset + at} (${e.detail})`);
    }
    if (opts.decode) {
      const ids = parseIds(line, lineNo);
      try {
        batch += tok.decode(ids).replace(/\n/g, ' ') + '\n';
      } catch (e) {
        throw new Error(`stdin line ${lineNo}: ${(e as Error).message}`);
      }
    } else {
      batch += JSON.stringify(opts.pieces ? tok.encodeAsPieces(line) : tok.encode(line)) + '\n';
    }
    if (batch.length > 1 << 16) {
      if (!output.write(batch)) await new Promise((r) => output.once('drain', r));
      batch = '';
    }
  };
  // Lines end at "\n" only, as spm_encode reads them: a "\r" is part of the text. A line is cut
  // from the bytes before it is decoded, so an over-long one is measured, never held.
  let parts: Buffer[] = [];
  let size = 0;
  let offset = 0; // of the current chunk
  let lineStart = 0;
  const tooLong = () => new Error(`stdin line ${lineNo + 1} is ${formatMB(size)}; the limit is ${maxMb} MB (--max-line-mb)`);
  const add = (b: Buffer) => {
    size += b.length;
    if (size <= limit) parts.push(b);
    else parts = [];
  };
  for await (const raw of input) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    let from = 0, nl: number;
    while ((nl = chunk.indexOf(10, from)) >= 0) {
      add(chunk.subarray(from, nl));
      if (size > limit) throw tooLong();
      await emit(parts.length === 1 ? parts[0] : Buffer.concat(parts), lineStart);
      parts = [];
      size = 0;
      from = nl + 1;
      lineStart = offset + from;
    }
    add(chunk.subarray(from));
    offset += chunk.length;
  }
  if (size > limit) throw tooLong();
  if (size > 0) await emit(Buffer.concat(parts), lineStart);
  if (batch) output.write(batch);
}
function parseIds(line: string, lineNo: number): number[] {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`stdin line ${lineNo}: expected a JSON array of token ids, got ${JSON.stringify(line.slice(0, 60))}`);
  }
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) {
    throw new Error(`stdin line ${lineNo}: expected a JSON array of integer token ids`);
  }
  return v as number[];
}
