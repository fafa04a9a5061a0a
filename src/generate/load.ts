// Loading a model folder for generation: weights, tokenizer, chat template and generation_config.json.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { readCheckpoint, resolveCheckpointDir } from '../checkpoint/index.js';
import { JinjaTemplate, Llama2Template, TeukenTemplate, loadTokenizerConfig, type ChatTemplate } from '../data/template/index.js';
import { LlamaModel } from '../model/llama.js';
import { Tensor, type DType, type Device } from '../tensor/index.js';
import { SentencePieceTokenizer } from '../tokenizer/index.js';
import type { SamplingParams } from './sampling.js';

export interface GenerationConfig {
  eos: number[];
  bos?: number;
  /** Sampling defaults the folder asks for (do_sample false, or absent: greedy). */
  defaults: SamplingParams;
  /**
   * The sampling settings the file names, whatever its do_sample: Hugging Face's generate() merges
   * them into a call that sets do_sample and temperature itself, as FastChat's answer generation does.
   */
  fileSampling: Pick<SamplingParams, 'topP' | 'topK' | 'repetitionPenalty'>;
  maxNewTokens?: number;
}

export interface LoadedModel {
  dir: string;
  model: LlamaModel;
  tokenizer: SentencePieceTokenizer;
  generation: GenerationConfig;
  /** The folder's chat_template (tokenizer_config.json), if it has one. */
  template?: ChatTemplate;
  /** A name for the model: the folder's name. */
  name: string;
  dispose(): void;
}

export interface LoadModelOptions {
  /** Weight dtype in memory (default bf16; f32 for exactness tests). */
  dtype?: Exclude<DType, 'i32'>;
  /** 'teuken', 'llama2', or a tokenizer_config.json whose chat_template to use instead of the folder's. */
  template?: string;
  /** Where the weights (and so the decoder's cache and buffers) live; default cpu. */
  device?: Device;
}

/** Loads a Hugging Face Llama folder (ours or downloaded), or a run's checkpoints folder (its latest). */
export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const dir = resolveCheckpointDir(path);
  const tokPath = join(dir, 'tokenizer.model');
  if (!existsSync(tokPath)) throw new Error(`${dir}: no tokenizer.model (generation needs the SentencePiece model beside the weights)`);
  const tokenizer = SentencePieceTokenizer.load(tokPath);
  const ck = readCheckpoint(dir, { alloc: (shape, dtype) => Tensor.empty(shape, dtype, opts.device ?? 'cpu'), dtype: opts.dtype ?? 'bf16', weightsOnly: true });
  const config = ck.config.config;
  if (tokenizer.vocabSize > config.vocab_size) {
    for (const t of ck.params.values()) t.dispose();
    throw new Error(`${tokPath}: ${tokenizer.vocabSize} pieces, more than the model's vocab_size ${config.vocab_size}`);
  }
  const model = new LlamaModel(config, ck.params);
  const generation = readGenerationConfig(dir, config.eos_token_id ?? tokenizer.eosId, config.bos_token_id ?? tokenizer.bosId);
  let template: ChatTemplate | undefined;
  try {
    template = await chooseTemplate(dir, opts.template, tokenizer);
  } catch (e) {
    model.dispose();
    throw e;
  }
  // runs/x/checkpoints/checkpoint-900 is "x-checkpoint-900": the run names the model.
  const parts = resolve(dir).split(sep).filter(Boolean);
  const last = parts.at(-1) ?? 'model';
  const name = /^checkpoint-\d+$/.test(last) && parts.at(-2) === 'checkpoints' && parts.length >= 3 ? `${parts.at(-3)}-${last}` : last;
  return { dir, model, tokenizer, generation, template, name, dispose: () => model.dispose() };
}

async function chooseTemplate(dir: string, spec: string | undefined, tokenizer: SentencePieceTokenizer): Promise<ChatTemplate | undefined> {
  if (spec === 'teuken') return new TeukenTemplate();
  if (spec === 'llama2') return new Llama2Template();
  const cfgPath = spec ?? join(dir, 'tokenizer_config.json');
  if (!existsSync(cfgPath)) {
    if (spec) throw new Error(`${spec}: no such template file (use teuken, llama2 or a tokenizer_config.json)`);
    return undefined;
  }
  const raw = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  if (raw.chat_template === undefined || raw.chat_template === null) {
    if (spec) throw new Error(`${spec}: has no chat_template`);
    return undefined;
  }
  return new JinjaTemplate(await loadTokenizerConfig(cfgPath, tokenizer));
}

/** generation_config.json's stop ids and sampling defaults; config.json / the tokenizer fill what it lacks. */
export function readGenerationConfig(dir: string, fallbackEos: number | undefined, fallbackBos: number | undefined): GenerationConfig {
  const path = join(dir, 'generation_config.json');
  let raw: Record<string, unknown> = {};
  if (existsSync(path)) {
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new Error(`${path}: not valid JSON: ${(e as Error).message}`);
    }
  }
  const ids = (field: string, v: unknown): number[] | undefined => {
    if (v === undefined || v === null) return undefined;
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isInteger(x) && x >= 0)) throw new Error(`${path}: field "${field}" must be a token id or a list of them, got ${JSON.stringify(v)}`);
    return list as number[];
  };
  const eos = ids('eos_token_id', raw.eos_token_id) ?? (fallbackEos !== undefined && fallbackEos >= 0 ? [fallbackEos] : []);
  const bos = ids('bos_token_id', raw.bos_token_id)?.[0] ?? (fallbackBos !== undefined && fallbackBos >= 0 ? fallbackBos : undefined);
  const num = (f: string) => (typeof raw[f] === 'number' ? (raw[f] as number) : undefined);
  const defaults: SamplingParams = raw.do_sample === true
    ? { temperature: num('temperature') ?? 1, topP: num('top_p') ?? 1, topK: num('top_k') ?? 50, repetitionPenalty: num('repetition_penalty') ?? 1 }
    : { temperature: 0, repetitionPenalty: num('repetition_penalty') ?? 1 };
  const fileSampling = { topP: num('top_p'), topK: num('top_k'), repetitionPenalty: num('repetition_penalty') };
  return { eos, bos, defaults, fileSampling, maxNewTokens: num('max_new_tokens') };
}
