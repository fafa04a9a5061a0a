import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SentencePieceProcessor } from 'sentencepiece-js';
import {
  buildCharsMap,
  defaultNormalizerSpec,
  defaultTrainerSpec,
  nfkcRules,
  PieceType,
  SentencePieceTokenizer,
  writeModelProto,
  type Piece,
} from '../src/tokenizer/index.js';
import { printTable, writeReport } from './report.js';
import type { BenchSuite } from './types.js';

const SHARED = resolve(process.cwd(), '../shared/data');
const LANGS = ['EN', 'DE', 'FR', 'IT', 'ES'];

/** Used when ../shared is absent: a few lines per language, so the suite still runs. */
const FALLBACK = [
  'Write a persuasive email to convince your introverted friend to volunteer as a guest speaker.',
  'Schreiben Sie eine überzeugende E-Mail, um Ihren introvertierten Freund zu überzeugen, als Gastredner aufzutreten.',
  'Rédigez un courriel persuasif pour convaincre votre ami introverti de participer en tant que conférencier.',
  'Scrivi un’e-mail persuasiva per convincere il tuo amico introverso a partecipare come relatore ospite.',
  'Escribe un correo electrónico persuasivo para convencer a tu amigo introvertido de ser orador invitado.',
];

/** Multilingual text: the MT-Bench-X questions in EN/DE/FR/IT/ES when available. */
export function corpusLines(): { lines: string[]; source: string } {
  const lines: string[] = [];
  for (const lang of LANGS) {
    const file = join(SHARED, `mt-bench-x/mt_bench_${lang}/question.jsonl`);
    if (!existsSync(file)) continue;
    for (const row of readFileSync(file, 'utf8').split('\n')) {
      if (row.trim() === '') continue;
      const q = JSON.parse(row) as { turns?: string[] };
      for (const turn of q.turns ?? []) lines.push(...turn.split('\n').filter((l) => l.trim() !== ''));
    }
  }
  return lines.length > 0 ? { lines, source: 'MT-Bench-X questions EN/DE/FR/IT/ES' } : { lines: FALLBACK, source: 'built-in sample' };
}

/**
 * A unigram vocabulary of `size` pieces: the most frequent substrings (up to 10 characters)
 * of the normalized corpus, scored by log frequency, as a trained model's would roughly be.
 */
function unigramPieces(lines: string[], size: number): Piece[] {
  const counts = new Map<string, number>();
  for (const line of lines) {
    const chars = [...('\u2581' + line.normalize('NFKC').trim().replace(/\s+/g, '\u2581'))];
    for (let i = 0; i < chars.length; i++) {
      let s = '';
      for (let j = i; j < Math.min(chars.length, i + 10); j++) {
        s += chars[j];
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
    }
  }
  const specials: Piece[] = [
    { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
    { piece: '<s>', score: 0, type: PieceType.CONTROL },
    { piece: '</s>', score: 0, type: PieceType.CONTROL },
  ];
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  // Longer pieces pay a little per character so the Viterbi search has real choices to make.
  const ranked = [...counts.entries()]
    .map(([piece, c]) => ({ piece, score: Math.log(c / total) - 0.1 * [...piece].length, type: PieceType.NORMAL as PieceType }))
    .sort((a, b) => b.score - a.score || (a.piece < b.piece ? -1 : 1));
  let pieces = [...specials, ...ranked.slice(0, size - specials.length)];
  // A small corpus has fewer distinct substrings than the target: pad with rare synthetic pieces.
  for (let i = 0; pieces.length < size; i++) pieces.push({ piece: `\u2581zz${i.toString(36)}`, score: -30, type: PieceType.NORMAL });
  pieces = pieces.slice(0, size);
  return pieces;
}

/** The benchmark's unigram model: corpus-derived pieces and an NFKC charsmap. */
export function benchModel(lines: string[], vocab: number): Uint8Array {
  const pieces = unigramPieces(lines, vocab);
  return writeModelProto({
    pieces,
    trainerSpec: { ...defaultTrainerSpec(), modelType: 'unigram', vocabSize: pieces.length },
    normalizerSpec: { ...defaultNormalizerSpec(), name: 'nfkc', precompiledCharsmap: buildCharsMap(nfkcRules()) },
  });
}

/** Best time per call of fn over repeated runs; the minimum resists noise from other processes. */
function bestMs(fn: () => void, runs: number): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

export const run: BenchSuite = async (opts) => {
  const { lines, source } = corpusLines();
  const vocab = opts.quick ? 20_000 : 250_680;
  const rounds = opts.quick ? 2 : 8;
  const bytes = lines.reduce((a, l) => a + Buffer.byteLength(l), 0);
  const dir = mkdtempSync(join(tmpdir(), 'polytune-bench-tok-'));
  try {
    const model = benchModel(lines, vocab);
    const modelPath = join(dir, 'unigram-250k.model');
    writeFileSync(modelPath, model);

    const models: { name: string; path: string }[] = [{ name: `unigram ${vocab}`, path: modelPath }];
    const llama = join(SHARED, 'stories260k/tok512.model');
    if (existsSync(llama)) models.push({ name: 'bpe 512 (tok512, Llama-style)', path: llama });

    const rows: Record<string, string | number>[] = [];
    for (const m of models) {
      const buf = readFileSync(m.path);
      const loadMs = bestMs(() => SentencePieceTokenizer.fromBuffer(buf, m.path), opts.quick ? 2 : 5);
      const tok = SentencePieceTokenizer.fromBuffer(buf, m.path);
      const spp = new SentencePieceProcessor();
      const t0 = performance.now();
      await spp.load(m.path);
      const refLoadMs = performance.now() - t0;
      let mismatches = 0;
      for (const l of lines) if (tok.encode(l).join(' ') !== spp.encodeIds(l).join(' ')) mismatches++;
      const encodeAll = (f: (l: string) => unknown) => () => {
        for (const l of lines) f(l);
      };
      // Alternate the two so both see the same machine conditions.
      let ours = Infinity;
      let ref = Infinity;
      for (let r = 0; r < rounds; r++) {
        ours = Math.min(ours, bestMs(encodeAll((l) => tok.encode(l)), 2));
        ref = Math.min(ref, bestMs(encodeAll((l) => spp.encodeIds(l)), 2));
      }
      rows.push({
        model: m.name,
        'model MB': buf.length / 2 ** 20,
        'load ms': loadMs,
        'ref load ms (first)': refLoadMs,
        'MB/s': bytes / 2 ** 20 / (ours / 1000),
        'ref MB/s': bytes / 2 ** 20 / (ref / 1000),
        speedup: ref / ours,
        'id mismatches': mismatches,
      });
    }
    console.log(`tokenize: ${lines.length} lines, ${(bytes / 2 ** 20).toFixed(2)} MB of ${source}; ref = sentencepiece-js (WASM)`);
    printTable(rows);
    const report = { corpus: { source, lines: lines.length, bytes }, quick: opts.quick, results: rows };
    const path = writeReport('tokenize', opts.out, report);
    console.log(`wrote ${path}`);
    return report;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
