import { ProtoError, ProtoReader, ProtoWriter, WIRE_FIXED32, WIRE_LEN, WIRE_VARINT } from './protobuf.js';

/** ModelProto.SentencePiece.Type, with SentencePiece's numbering. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type PieceType = (typeof PieceType)[keyof typeof PieceType];

export type ModelType = 'unigram' | 'bpe' | 'word' | 'char';
const MODEL_TYPES: Record<number, ModelType> = { 1: 'unigram', 2: 'bpe', 3: 'word', 4: 'char' };
const MODEL_TYPE_IDS: Record<ModelType, number> = { unigram: 1, bpe: 2, word: 3, char: 4 };

export interface Piece {
  piece: string;
  score: number;
  type: PieceType;
}

/** The TrainerSpec fields that matter when encoding and decoding; the rest is not kept. */
export interface TrainerSpec {
  modelType: ModelType;
  vocabSize: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  allowWhitespaceOnlyPieces: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
  /** What decode() prints for <unk>. */
  unkSurface: string;
}

export interface NormalizerSpec {
  name: string;
  /** <u32 trie size><Darts double array><NUL-separated replacements>; empty means identity. */
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface ModelSpec {
  pieces: Piece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
  /** Applied to decoded text; only present when it carries a charsmap (as in SentencePiece). */
  denormalizerSpec?: NormalizerSpec;
}

export function defaultTrainerSpec(): TrainerSpec {
  return {
    modelType: 'unigram',
    vocabSize: 8000,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    allowWhitespaceOnlyPieces: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkPiece: '<unk>',
    bosPiece: '<s>',
    eosPiece: '</s>',
    padPiece: '<pad>',
    unkSurface: ' \u2047 ',
  };
}

export function defaultNormalizerSpec(): NormalizerSpec {
  return {
    name: 'identity',
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
}

/**
 * The parsed model plus, for each piece, where its UTF-8 bytes sit in the source buffer,
 * so the encoder can build its trie without re-encoding 250k strings.
 */
export interface ParsedModel extends ModelSpec {
  buffer: Uint8Array;
  pieceStart: Int32Array;
  pieceEnd: Int32Array;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function readString(r: ProtoReader, field: number, name: string): string {
  const [s, e] = r.lengthDelimited();
  return decodeString(r, s, e, `${name} (#${field})`);
}

/** Most pieces are short ASCII; building those directly avoids a TextDecoder call per piece. */
function decodeString(r: ProtoReader, s: number, e: number, name: string): string {
  const buf = r.buf;
  if (e - s <= 16) {
    let out = '';
    let i = s;
    for (; i < e && buf[i] < 0x80; i++) out += String.fromCharCode(buf[i]);
    if (i === e) return out;
  }
  try {
    return utf8.decode(buf.subarray(s, e));
  } catch {
    return r.fail(`field ${name} is not valid UTF-8`);
  }
}

/** Parses a serialized ModelProto; `name` (usually the file path) prefixes every error. */
export function parseModelProto(buf: Uint8Array, name = '<buffer>'): ParsedModel {
  try {
    return parse(buf, name);
  } catch (err) {
    if (err instanceof ProtoError) throw new Error(`${name}: not a valid SentencePiece model: ${err.message}`);
    throw err;
  }
}

function parse(buf: Uint8Array, name: string): ParsedModel {
  if (buf.length === 0) throw new Error(`${name}: not a valid SentencePiece model: the file is empty`);
  const r = new ProtoReader(buf, 0, buf.length, 'ModelProto');
  const pieces: Piece[] = [];
  let starts = new Int32Array(1024);
  let ends = new Int32Array(1024);
  let trainerSpec = defaultTrainerSpec();
  let normalizerSpec = defaultNormalizerSpec();
  let denormalizerSpec: NormalizerSpec | undefined;
  let sawTrainer = false;
  while (!r.done()) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1: {
        r.expectWire(field, wire, WIRE_LEN, 'pieces');
        const [s, e] = r.lengthDelimited();
        const idx = pieces.length;
        if (idx === starts.length) {
          const ns = new Int32Array(idx * 2);
          ns.set(starts);
          starts = ns;
          const ne = new Int32Array(idx * 2);
          ne.set(ends);
          ends = ne;
        }
        pieces.push(parsePiece(new ProtoReader(buf, s, e, `ModelProto.pieces[${idx}]`), starts, ends, idx));
        break;
      }
      case 2: {
        r.expectWire(field, wire, WIRE_LEN, 'trainer_spec');
        const [s, e] = r.lengthDelimited();
        trainerSpec = parseTrainerSpec(new ProtoReader(buf, s, e, 'ModelProto.trainer_spec'));
        sawTrainer = true;
        break;
      }
      case 3: {
        r.expectWire(field, wire, WIRE_LEN, 'normalizer_spec');
        const [s, e] = r.lengthDelimited();
        normalizerSpec = parseNormalizerSpec(new ProtoReader(buf, s, e, 'ModelProto.normalizer_spec'));
        break;
      }
      case 5: {
        r.expectWire(field, wire, WIRE_LEN, 'denormalizer_spec');
        const [s, e] = r.lengthDelimited();
        const spec = parseNormalizerSpec(new ProtoReader(buf, s, e, 'ModelProto.denormalizer_spec'));
        if (spec.precompiledCharsmap.length > 0) denormalizerSpec = spec;
        break;
      }
      default:
        // self_test_data (4) and extensions are not needed to encode.
        r.skip(wire);
    }
  }
  if (pieces.length === 0) throw new Error(`${name}: not a valid SentencePiece model: it has no pieces`);
  if (!sawTrainer) throw new Error(`${name}: not a valid SentencePiece model: it has no trainer_spec`);
  const model: ParsedModel = {
    pieces,
    trainerSpec,
    normalizerSpec,
    buffer: buf,
    pieceStart: starts.subarray(0, pieces.length),
    pieceEnd: ends.subarray(0, pieces.length),
  };
  if (denormalizerSpec) model.denormalizerSpec = denormalizerSpec;
  return model;
}

function parsePiece(r: ProtoReader, starts: Int32Array, ends: Int32Array, idx: number): Piece {
  let piece = '';
  let score = 0;
  let type: number = PieceType.NORMAL;
  while (!r.done()) {
    const [field, wire] = r.tag();
    if (field === 1) {
      r.expectWire(field, wire, WIRE_LEN, 'piece');
      const [s, e] = r.lengthDelimited();
      starts[idx] = s;
      ends[idx] = e;
      piece = decodeString(r, s, e, 'piece');
    } else if (field === 2) {
      r.expectWire(field, wire, WIRE_FIXED32, 'score');
      score = r.float();
    } else if (field === 3) {
      r.expectWire(field, wire, WIRE_VARINT, 'type');
      type = r.varint();
      if (type < 1 || type > 6) r.fail(`unknown piece type ${type}`);
    } else {
      r.skip(wire);
    }
  }
  return { piece, score, type: type as PieceType };
}

function parseTrainerSpec(r: ProtoReader): TrainerSpec {
  const t = defaultTrainerSpec();
  while (!r.done()) {
    const [field, wire] = r.tag();
    const v = (name: string) => r.expectWire(field, wire, WIRE_VARINT, name);
    const s = (name: string) => {
      r.expectWire(field, wire, WIRE_LEN, name);
      return readString(r, field, name);
    };
    switch (field) {
      case 3: {
        v('model_type');
        const id = r.varint();
        const type = MODEL_TYPES[id];
        if (!type) r.fail(`unknown model_type ${id}`);
        t.modelType = type;
        break;
      }
      case 4: v('vocab_size'); t.vocabSize = r.int32(); break;
      case 24: v('treat_whitespace_as_suffix'); t.treatWhitespaceAsSuffix = r.bool(); break;
      case 26: v('allow_whitespace_only_pieces'); t.allowWhitespaceOnlyPieces = r.bool(); break;
      case 35: v('byte_fallback'); t.byteFallback = r.bool(); break;
      case 40: v('unk_id'); t.unkId = r.int32(); break;
      case 41: v('bos_id'); t.bosId = r.int32(); break;
      case 42: v('eos_id'); t.eosId = r.int32(); break;
      case 43: v('pad_id'); t.padId = r.int32(); break;
      case 44: t.unkSurface = s('unk_surface'); break;
      case 45: t.unkPiece = s('unk_piece'); break;
      case 46: t.bosPiece = s('bos_piece'); break;
      case 47: t.eosPiece = s('eos_piece'); break;
      case 48: t.padPiece = s('pad_piece'); break;
      default:
        r.skip(wire);
    }
  }
  return t;
}

function parseNormalizerSpec(r: ProtoReader): NormalizerSpec {
  const n = defaultNormalizerSpec();
  n.name = '';
  while (!r.done()) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        r.expectWire(field, wire, WIRE_LEN, 'name');
        n.name = readString(r, field, 'name');
        break;
      case 2: {
        r.expectWire(field, wire, WIRE_LEN, 'precompiled_charsmap');
        const [s, e] = r.lengthDelimited();
        n.precompiledCharsmap = r.buf.subarray(s, e);
        break;
      }
      case 3: r.expectWire(field, wire, WIRE_VARINT, 'add_dummy_prefix'); n.addDummyPrefix = r.bool(); break;
      case 4: r.expectWire(field, wire, WIRE_VARINT, 'remove_extra_whitespaces'); n.removeExtraWhitespaces = r.bool(); break;
      case 5: r.expectWire(field, wire, WIRE_VARINT, 'escape_whitespaces'); n.escapeWhitespaces = r.bool(); break;
      default:
        r.skip(wire);
    }
  }
  return n;
}

/**
 * Serializes a model so that SentencePiece (spm_encode, sentencepiece-js) loads it. Scores
 * are stored as float32, as in the proto; trainer fields not in TrainerSpec keep their defaults.
 */
export function writeModelProto(spec: ModelSpec): Uint8Array {
  const w = new ProtoWriter();
  for (const p of spec.pieces) {
    w.message(1, (m) => {
      m.string(1, p.piece);
      m.float(2, p.score);
      m.varint(3, p.type);
    });
  }
  const t = spec.trainerSpec;
  w.message(2, (m) => {
    m.varint(3, MODEL_TYPE_IDS[t.modelType]);
    m.varint(4, t.vocabSize);
    m.bool(24, t.treatWhitespaceAsSuffix);
    m.bool(26, t.allowWhitespaceOnlyPieces);
    m.bool(35, t.byteFallback);
    m.varint(40, t.unkId);
    m.varint(41, t.bosId);
    m.varint(42, t.eosId);
    m.varint(43, t.padId);
    m.string(44, t.unkSurface);
    m.string(45, t.unkPiece);
    m.string(46, t.bosPiece);
    m.string(47, t.eosPiece);
    m.string(48, t.padPiece);
  });
  w.message(3, (m) => writeNormalizer(m, spec.normalizerSpec));
  if (spec.denormalizerSpec) w.message(5, (m) => writeNormalizer(m, spec.denormalizerSpec!));
  return w.finish();
}

function writeNormalizer(m: ProtoWriter, n: NormalizerSpec): void {
  m.string(1, n.name);
  if (n.precompiledCharsmap.length > 0) m.bytes(2, n.precompiledCharsmap);
  m.bool(3, n.addDummyPrefix);
  m.bool(4, n.removeExtraWhitespaces);
  m.bool(5, n.escapeWhitespaces);
}
