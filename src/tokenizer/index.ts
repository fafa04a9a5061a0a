export { SentencePieceTokenizer } from './sentencepiece.js';
export {
  PieceType,
  defaultNormalizerSpec,
  defaultTrainerSpec,
  parseModelProto,
  writeModelProto,
  type ModelSpec,
  type ModelType,
  type NormalizerSpec,
  type Piece,
  type TrainerSpec,
} from './model-proto.js';
export { buildCharsMap, nfkcRules } from './charsmap.js';
export { buildWordUnigramModel } from './word-unigram.js';
