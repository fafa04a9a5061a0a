import { PieceType, defaultNormalizerSpec, defaultTrainerSpec, type ModelSpec, type Piece } from './model-proto.js';

/**
 * A small unigram model built from word and character counts of some text, for runs that have no
 * trained tokenizer (the embedded default of train.js): whole frequent words as "▁word" pieces,
 * every seen character, and byte fallback for anything else. Scores are log relative frequencies,
 * which is what unigram Viterbi expects; no EM pass, so it is a plain but valid SentencePiece model.
 */
export function buildWordUnigramModel(texts: Iterable<string>, opts: { vocabSize: number }): ModelSpec {
  const words = new Map<string, number>();
  const chars = new Map<string, number>();
  for (const text of texts) {
    for (const w of text.split(/\s+/u)) {
      if (!w) continue;
      const piece = '\u2581' + w;
      words.set(piece, (words.get(piece) ?? 0) + 1);
      for (const ch of w) chars.set(ch, (chars.get(ch) ?? 0) + 1);
    }
  }
  chars.set('\u2581', [...words.values()].reduce((a, b) => a + b, 0));
  const special: Piece[] = [
    { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
    { piece: '<s>', score: 0, type: PieceType.CONTROL },
    { piece: '</s>', score: 0, type: PieceType.CONTROL },
    { piece: '<pad>', score: 0, type: PieceType.CONTROL },
  ];
  const bytes: Piece[] = Array.from({ length: 256 }, (_, b) => ({
    piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`,
    score: 0,
    type: PieceType.BYTE,
  }));
  const room = opts.vocabSize - special.length - bytes.length;
  if (room < chars.size) {
    throw new Error(`tokenizer: vocabSize ${opts.vocabSize} leaves no room for the ${chars.size} characters of the text`);
  }
  const total = [...words.values(), ...chars.values()].reduce((a, b) => a + b, 0);
  const score = (n: number) => Math.log(n / total);
  // Words of one character are already character pieces.
  const topWords = [...words]
    .filter(([w]) => [...w].length > 2)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, room - chars.size);
  const normal: Piece[] = [...chars, ...topWords]
    .map(([piece, n]) => ({ piece, score: score(n), type: PieceType.NORMAL }))
    .sort((a, b) => b.score - a.score || (a.piece < b.piece ? -1 : 1));
  const pieces = [...special, ...normal, ...bytes];
  return {
    pieces,
    trainerSpec: { ...defaultTrainerSpec(), modelType: 'unigram', vocabSize: pieces.length, byteFallback: true, padId: 3 },
    normalizerSpec: defaultNormalizerSpec(),
  };
}
