import type { Command } from 'commander';
import { SentencePieceTokenizer } from '../tokenizer/index.js';

interface TokenizeOptions {
  model: string;
  pieces: boolean;
  decode: boolean;
}

/** `tokenize`: stdin line by line to one JSON array per line (or back, with --decode). */
export function registerTokenize(program: Command): void {
  program
    .command('tokenize')
    .description('Encode stdin lines to JSON id arrays with a SentencePiece model (or decode them)')
    .requiredOption('--model <file>', 'SentencePiece .model file')
    .option('--pieces', 'print pieces instead of ids', false)
    .option('--decode', 'read JSON id arrays, one per line, and print text', false)
    .action(async (opts: TokenizeOptions) => {
      if (opts.pieces && opts.decode) throw new Error('tokenize: --pieces and --decode cannot be combined');
      const tok = SentencePieceTokenizer.load(opts.model);
      await tokenizeStream(tok, opts, process.stdin, process.stdout);
    });
}

export async function tokenizeStream(
  tok: SentencePieceTokenizer,
  opts: Pick<TokenizeOptions, 'pieces' | 'decode'>,
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
): Promise<void> {
  let lineNo = 0;
  let batch = '';
  const emit = async (line: string) => {
    lineNo++;
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
  // Lines end at "\n" only, as spm_encode reads them: a "\r" is part of the text.
  let rest = '';
  const decoder = new TextDecoder();
  for await (const chunk of input) {
    rest += typeof chunk === 'string' ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      await emit(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  }
  rest += decoder.decode();
  if (rest !== '') await emit(rest);
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
