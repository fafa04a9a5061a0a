// A small loadable chat checkpoint for generation, serving and judging tests: tiny Llama weights, a
// SentencePiece tokenizer with byte fallback (any text in any language encodes), the built-in
// Teuken chat template in tokenizer_config.json, and generation_config.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostTensor, expectedLlamaTensors, writeCheckpoint } from '../../src/checkpoint/index.js';
import { SAMPLE_LANGUAGES, TeukenTemplate, chatTemplateField, generateSample, specialTokenStrings } from '../../src/data/index.js';
import { initLlamaWeights, type LlamaConfig } from '../../src/model/index.js';
import { SentencePieceTokenizer, buildWordUnigramModel, writeModelProto } from '../../src/tokenizer/index.js';

/**
 * Writes the checkpoint into `dir` (created if needed; must be empty) and returns its path.
 * `maxPositions`: the context length (a judge prompt with two byte-fallback German answers needs
 * more than the default 2048).
 */
export async function makeTinyChatCheckpoint(dir: string, opts: { maxPositions?: number } = {}): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const sample = generateSample({ items: 40, seed: 7 });
  const texts: string[] = ['System: User: Assistant:', ...Object.values(new TeukenTemplate().systemMessages)];
  for (const lang of SAMPLE_LANGUAGES) for (const r of sample[lang]) texts.push(r.instruction, r.input, r.output);
  const spec = buildWordUnigramModel(texts, { vocabSize: 700 });
  const tokPath = join(dir, '.tokenizer-src.model');
  writeFileSync(tokPath, writeModelProto(spec));
  const tokenizer = SentencePieceTokenizer.fromBuffer(readFileSync(tokPath), tokPath);
  const config: LlamaConfig = {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    vocab_size: spec.pieces.length,
    max_position_embeddings: opts.maxPositions ?? 2048,
    tie_word_embeddings: false,
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  };
  // A larger spread than HF's 0.02 so the random model's next-token distribution is far from flat.
  const weights = initLlamaWeights(config, 5, 0.5);
  const shapes = expectedLlamaTensors(config);
  const params = new Map([...weights].map(([name, w]) => [name, new HostTensor('f32', shapes.get(name)!, new Uint8Array(w.buffer))]));
  const ckDir = join(dir, 'model');
  mkdirSync(ckDir);
  writeCheckpoint(ckDir, { params }, {
    config,
    dtype: 'F32',
    tokenizer: tokPath,
    chatTemplate: { chatTemplate: chatTemplateField(new TeukenTemplate())!, special: specialTokenStrings(tokenizer), maxLength: config.max_position_embeddings },
  });
  return ckDir;
}
