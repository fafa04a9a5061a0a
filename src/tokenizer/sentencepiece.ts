import { readFileSync } from 'node:fs';
import { BpeEncoder } from './bpe.js';
import { buildDoubleArray, exactMatch, longestPrefix, trieToDoubleArray, trieToValueArray, type PrefixMatch } from './darts.js';
import { parseModelProto, PieceType, type ModelSpec, type ParsedModel } from './model-proto.js';
import { Normalizer, type SymbolMatcher } from './normalizer.js';
import { PieceTrie } from './piece-trie.js';
import { UnigramEncoder } from './unigram.js';
import { ByteBuilder, oneCharLen, REPLACEMENT_CHAR, SPACE_SYMBOL, validCharLen } from './utf8.js';
import { pieceIdOf, Segments, symbolLen, type Vocab } from './vocab.js';

interface SegmentEncoder {
  encode(norm: Uint8Array, size: number, out: Segments): void;
}

const textEncoder = new TextEncoder();
// ignoreBOM: a U+FEFF in the text is content, not a byte-order mark to drop.
const textDecoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * A SentencePiece model (unigram, BPE, word or char) that encodes and decodes exactly as
 * the reference library does: same normalization, same segmentation, same ids.
 */
export class SentencePieceTokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  /** The parsed model; writeModelProto(spec) serializes it again. */
  readonly spec: ModelSpec;

  /** Whether encode() puts "▁" before its text, which chat templates need to know at chunk seams. */
  get addDummyPrefix(): boolean {
    return this.spec.normalizerSpec.addDummyPrefix;
  }

  private readonly vocab: Vocab;
  private readonly pieces: string[];
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly normalizer: Normalizer;
  private readonly denormalizer: Normalizer | null;
  private readonly encoder: SegmentEncoder;
  private readonly byteFallback: boolean;
  private shadowed: Map<number, number> | null = null;
  // Scratch buffers reused across calls.
  private input = new Uint8Array(1024);
  private readonly norm = new ByteBuilder(1024);
  private readonly segs = new Segments();

  static load(path: string): SentencePieceTokenizer {
    let buf: Buffer;
    try {
      buf = readFileSync(path);
    } catch (err) {
      throw new Error(`${path}: cannot read SentencePiece model: ${(err as Error).message}`);
    }
    return SentencePieceTokenizer.fromBuffer(buf, path);
  }

  static fromBuffer(buf: Uint8Array, name = '<buffer>'): SentencePieceTokenizer {
    return new SentencePieceTokenizer(parseModelProto(buf, name), name);
  }

  private constructor(model: ParsedModel, name: string) {
    this.spec = model;
    const fail = (msg: string): never => {
      throw new Error(`${name}: invalid SentencePiece model: ${msg}`);
    };
    const n = model.pieces.length;
    this.vocabSize = n;
    this.pieces = new Array<string>(n);
    const scores = new Float32Array(n);
    const types = new Uint8Array(n);
    let normalBytes = 0;
    let unkIndex = -1;
    const userSymbols: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = model.pieces[i];
      if (p.piece.length === 0) fail(`piece ${i} is empty`);
      this.pieces[i] = p.piece;
      scores[i] = p.score;
      types[i] = p.type;
      normalBytes += model.pieceEnd[i] - model.pieceStart[i];
      if (p.type === PieceType.USER_DEFINED) userSymbols.push(i);
      if (p.type === PieceType.UNKNOWN) {
        if (unkIndex >= 0) fail(`unk is already defined (ids ${unkIndex} and ${i})`);
        unkIndex = i;
      }
      if (p.type === PieceType.BYTE) {
        if (!model.trainerSpec.byteFallback) fail(`byte piece ${p.piece} is found although byte_fallback is false`);
        const b = byteOfPiece(p.piece);
        if (b < 0) fail(`byte piece ${p.piece} (id ${i}) is invalid`);
        this.byteIds[b] = i;
      }
    }
    if (unkIndex < 0) fail('unk is not defined');
    this.byteFallback = model.trainerSpec.byteFallback;
    if (this.byteFallback && this.byteIds.includes(-1)) fail('there are not 256 byte pieces although byte_fallback is true');

    // Shared prefixes make the edge count well below the byte count; the table grows if needed.
    const trie = new PieceTrie(Math.min(normalBytes, n * 2));
    const reserved = new PieceTrie(64);
    const buf = model.buffer;
    for (let i = 0; i < n; i++) {
      const t = types[i];
      const normal = t === PieceType.NORMAL || t === PieceType.USER_DEFINED || t === PieceType.UNUSED;
      for (let b = model.pieceStart[i]; b < model.pieceEnd[i]; b++) if (buf[b] === 0) fail(`piece ${i} contains a NUL character`);
      const prev = (normal ? trie : reserved).insert(buf, model.pieceStart[i], model.pieceEnd[i], i);
      if (prev >= 0) fail(`piece ${JSON.stringify(this.pieces[i])} (id ${i}) is already defined (id ${prev})`);
    }
    const symbols = userSymbols.length > 0 ? symbolMatcher(userSymbols.map((i) => buf.subarray(model.pieceStart[i], model.pieceEnd[i]))) : null;
    this.vocab = { trie: trieToValueArray(trie), reserved: trieToDoubleArray(reserved), scores, types, unkId: unkIndex, symbols };

    const t = model.trainerSpec;
    this.normalizer = new Normalizer(model.normalizerSpec, t.treatWhitespaceAsSuffix, symbols, `${name}: normalizer_spec`);
    this.denormalizer = model.denormalizerSpec ? new Normalizer(model.denormalizerSpec, false, null, `${name}: denormalizer_spec`) : null;
    switch (t.modelType) {
      case 'unigram':
        this.encoder = new UnigramEncoder(this.vocab);
        break;
      case 'bpe':
        this.encoder = new BpeEncoder(this.vocab);
        break;
      case 'char':
        this.encoder = new CharEncoder(this.vocab);
        break;
      case 'word':
        this.encoder = new WordEncoder(this.vocab);
        break;
    }
    // As SentencePieceProcessor: the special ids are looked up by their piece strings.
    const special = (piece: string, type: PieceType) => {
      const id = this.pieceToId(piece);
      return types[id] === type ? id : -1;
    };
    this.unkId = special(t.unkPiece, PieceType.UNKNOWN);
    this.bosId = special(t.bosPiece, PieceType.CONTROL);
    this.eosId = special(t.eosPiece, PieceType.CONTROL);
    this.padId = special(t.padPiece, PieceType.CONTROL);
  }

  /** Id of piece; the unknown id when it is not in the vocabulary. */
  pieceToId(piece: string): number {
    const b = textEncoder.encode(piece);
    return pieceIdOf(this.vocab, b, 0, b.length);
  }

  private pieceToIdOfNormal(id: number): number {
    if (this.shadowed === null) {
      // Pieces whose string is also a reserved piece: rare, so found once and kept.
      this.shadowed = new Map();
      const m = this.spec as ParsedModel;
      for (let i = 0; i < this.vocabSize; i++) {
        const r = exactMatch(this.vocab.reserved, m.buffer, m.pieceStart[i], m.pieceEnd[i]);
        if (r >= 0 && r !== i) this.shadowed.set(i, r);
      }
    }
    return this.shadowed.get(id) ?? id;
  }

  idToPiece(id: number): string {
    this.checkId(id);
    return this.pieces[id];
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new Error(`invalid token id ${id}: the vocabulary has ids 0..${this.vocabSize - 1}`);
    }
  }

  /** Normalized UTF-8 of text, as SentencePiece's normalizer produces it. */
  normalize(text: string): string {
    const len = this.normalizeInto(text);
    return textDecoder.decode(this.norm.buf.subarray(0, len));
  }

  private normalizeInto(text: string): number {
    if (this.input.length < text.length * 3) this.input = new Uint8Array(text.length * 3 + 16);
    const { written } = textEncoder.encodeInto(text, this.input);
    this.normalizer.normalize(this.input, written, this.norm);
    return this.norm.len;
  }

  private segment(text: string): number {
    const len = this.normalizeInto(text);
    this.encoder.encode(this.norm.buf, len, this.segs);
    return this.segs.n;
  }

  /** Token ids of text, without BOS or EOS. */
  encode(text: string): number[] {
    const n = this.segment(text);
    const { starts, ends, ids } = this.segs;
    const types = this.vocab.types;
    const norm = this.norm.buf;
    const out: number[] = [];
    let prevUnk = false;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      const unk = types[id] === PieceType.UNKNOWN;
      if (unk && this.byteFallback) {
        for (let b = starts[i]; b < ends[i]; b++) out.push(this.byteIds[norm[b]]);
      } else if (!(unk && prevUnk)) {
        // A run of unknown pieces becomes one unknown token, as in SentencePiece.
        out.push(id);
      }
      prevUnk = unk;
    }
    return out;
  }

  /** The pieces encode() picks; unknown text appears as itself, byte fallback as <0xNN>. */
  encodeAsPieces(text: string): string[] {
    const n = this.segment(text);
    const { starts, ends, ids } = this.segs;
    const types = this.vocab.types;
    const norm = this.norm.buf;
    const out: string[] = [];
    let prevUnk = false;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      const unk = types[id] === PieceType.UNKNOWN;
      if (unk && this.byteFallback) {
        for (let b = starts[i]; b < ends[i]; b++) out.push(byteToPiece(norm[b]));
      } else if (unk) {
        const surface = textDecoder.decode(norm.subarray(starts[i], ends[i]));
        if (prevUnk) out[out.length - 1] += surface;
        else out.push(surface);
      } else {
        out.push(this.pieces[id]);
      }
      prevUnk = unk;
    }
    return out;
  }

  /** Text of ids: control tokens vanish, byte tokens join into UTF-8, the dummy prefix goes. */
  decode(ids: number[]): string {
    const spec = this.spec;
    const types = this.vocab.types;
    const out = new ByteBuilder(ids.length * 4 + 16);
    const unkSurface = textEncoder.encode(spec.trainerSpec.unkSurface);
    const stripBosWs = spec.normalizerSpec.addDummyPrefix || spec.normalizerSpec.removeExtraWhitespaces;
    let isBosWs = true;
    let bosWsSeen = false;
    const bytes: number[] = [];
    const flushBytes = () => {
      if (bytes.length === 0) return;
      const buf = Uint8Array.from(bytes);
      for (let off = 0; off < buf.length; ) {
        const n = validCharLen(buf, off, buf.length);
        if (n === 0) {
          out.append(REPLACEMENT_CHAR, 0, 3);
          off += 1;
        } else {
          out.append(buf, off, off + n);
          off += n;
        }
      }
      bytes.length = 0;
    };
    for (const raw of ids) {
      this.checkId(raw);
      // SentencePiece maps ids to pieces and back; a piece both normal and reserved resolves
      // to the reserved id there, so do the same.
      const id = types[raw] === PieceType.NORMAL || types[raw] === PieceType.USER_DEFINED || types[raw] === PieceType.UNUSED ? this.pieceToIdOfNormal(raw) : raw;
      const type = types[id];
      if (type === PieceType.BYTE) {
        bytes.push(byteOfPiece(this.pieces[id]));
        continue;
      }
      flushBytes();
      if (bosWsSeen || out.len > 0) isBosWs = false;
      bosWsSeen = false;
      if (type === PieceType.CONTROL) continue;
      if (type === PieceType.UNKNOWN) {
        out.append(unkSurface, 0, unkSurface.length);
        continue;
      }
      let piece = textEncoder.encode(this.pieces[id]);
      if (isBosWs && stripBosWs && startsWithSpaceSymbol(piece)) {
        piece = piece.subarray(3);
        bosWsSeen = !spec.normalizerSpec.removeExtraWhitespaces;
      }
      for (let i = 0; i < piece.length; ) {
        if (i + 3 <= piece.length && piece[i] === 0xe2 && piece[i + 1] === 0x96 && piece[i + 2] === 0x81) {
          out.push(0x20);
          i += 3;
        } else {
          out.push(piece[i++]);
        }
      }
    }
    flushBytes();
    if (this.denormalizer) {
      const res = new ByteBuilder(out.len * 2 + 16);
      this.denormalizer.normalize(out.buf, out.len, res);
      return textDecoder.decode(res.buf.subarray(0, res.len));
    }
    return textDecoder.decode(out.buf.subarray(0, out.len));
  }
}

function startsWithSpaceSymbol(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === SPACE_SYMBOL[0] && b[1] === SPACE_SYMBOL[1] && b[2] === SPACE_SYMBOL[2];
}

function byteToPiece(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
}

function byteOfPiece(piece: string): number {
  const m = /^<0x([0-9A-F]{2})>$/.exec(piece);
  return m ? parseInt(m[1], 16) : -1;
}

function symbolMatcher(symbols: Uint8Array[]): SymbolMatcher {
  const seen = new Set<string>();
  const keys: Uint8Array[] = [];
  for (const s of symbols) {
    const k = Buffer.from(s).toString('latin1');
    if (!seen.has(k)) {
      seen.add(k);
      keys.push(s);
    }
  }
  const trie = buildDoubleArray(keys, keys.map(() => 1));
  const m: PrefixMatch = { length: 0, value: 0 };
  return {
    match(buf, pos, end) {
      longestPrefix(trie, buf, pos, end, m);
      return m.length;
    },
  };
}

/** CHAR models: one piece per character (or user-defined symbol). */
class CharEncoder implements SegmentEncoder {
  constructor(private readonly v: Vocab) {}
  encode(norm: Uint8Array, size: number, out: Segments): void {
    out.n = 0;
    for (let pos = 0; pos < size; ) {
      const l = symbolLen(this.v, norm, pos, size);
      out.push(pos, pos + l, pieceIdOf(this.v, norm, pos, pos + l));
      pos += l;
    }
  }
}

/** WORD models: one piece per whitespace-led word (SplitIntoWords with its defaults). */
class WordEncoder implements SegmentEncoder {
  constructor(private readonly v: Vocab) {}
  encode(norm: Uint8Array, size: number, out: Segments): void {
    out.n = 0;
    let wordStart = 0;
    for (let pos = 0; pos < size; ) {
      const l = Math.min(oneCharLen(norm[pos]), size - pos);
      const isWs = l === 3 && norm[pos] === 0xe2 && norm[pos + 1] === 0x96 && norm[pos + 2] === 0x81;
      if (pos > 0 && isWs) {
        out.push(wordStart, pos, pieceIdOf(this.v, norm, wordStart, pos));
        wordStart = pos;
      }
      pos += l;
    }
    if (size > 0) out.push(wordStart, size, pieceIdOf(this.v, norm, wordStart, size));
  }
}
