import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseLlamaConfig, type LlamaConfig } from '../model/config.js';
import { fsyncPath, writeFileDurable } from '../util/durable.js';

/** Files a Hugging Face tokenizer may consist of; the ones present are copied beside the weights. */
export const TOKENIZER_FILES = ['tokenizer.model', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json'] as const;

export interface HfConfig {
  config: LlamaConfig & { head_dim?: number };
  /** The whole config.json, keeping fields the runtime does not use. */
  raw: Record<string, unknown>;
}

export function readHfConfig(dir: string): HfConfig {
  const path = join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read config: ${(e as Error).message}`);
  }
  const config: HfConfig['config'] = parseLlamaConfig(raw, path);
  const r = raw as Record<string, unknown>;
  if (r.head_dim !== undefined && r.head_dim !== null) {
    if (typeof r.head_dim !== 'number' || !Number.isInteger(r.head_dim) || r.head_dim <= 0) {
      throw new Error(`${path}: field 'head_dim' must be a positive integer, got ${JSON.stringify(r.head_dim)}`);
    }
    config.head_dim = r.head_dim;
  }
  if (r.architectures !== undefined && !(Array.isArray(r.architectures) && r.architectures.includes('LlamaForCausalLM'))) {
    throw new Error(`${path}: architectures ${JSON.stringify(r.architectures)} does not include LlamaForCausalLM`);
  }
  return { config, raw: r };
}

/**
 * config.json as transformers writes it for LlamaForCausalLM. Fields of `base` (the config a run
 * started from) are kept, and the model's own fields override them.
 */
export function hfConfigJson(config: LlamaConfig & { head_dim?: number }, torchDtype: 'bfloat16' | 'float32', base: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {
    attention_bias: false,
    attention_dropout: 0.0,
    hidden_act: 'silu',
    initializer_range: 0.02,
    mlp_bias: false,
    pretraining_tp: 1,
    rope_scaling: null,
    use_cache: true,
    ...base,
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    torch_dtype: torchDtype,
  };
  for (const [k, v] of Object.entries(config)) if (v !== undefined) out[k] = v;
  return Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]]));
}

export function writeHfConfig(dir: string, json: Record<string, unknown>): void {
  writeFileDurable(join(dir, 'config.json'), JSON.stringify(json, null, 2) + '\n');
}

/** generation_config.json: the model's special tokens unless the caller gives the whole file. */
export function writeGenerationConfig(dir: string, config: LlamaConfig, given?: Record<string, unknown>): void {
  const json: Record<string, unknown> = given ?? { _from_model_config: true };
  if (!given) {
    for (const k of ['bos_token_id', 'eos_token_id', 'pad_token_id'] as const) if (config[k] !== undefined) json[k] = config[k];
  }
  writeFileDurable(join(dir, 'generation_config.json'), JSON.stringify(json, null, 2) + '\n');
}

/**
 * Copies the tokenizer beside the weights. `from` is a model folder (its tokenizer files are
 * copied) or a SentencePiece .model file (copied as tokenizer.model). Returns the names copied.
 */
export function copyTokenizerFiles(from: string, dir: string): string[] {
  if (!existsSync(from)) throw new Error(`${from}: tokenizer not found`);
  const copies: [string, string][] = statSync(from).isDirectory()
    ? TOKENIZER_FILES.filter((f) => existsSync(join(from, f))).map((f) => [join(from, f), f])
    : [[from, 'tokenizer.model']];
  if (!copies.some(([, f]) => f === 'tokenizer.model' || f === 'tokenizer.json')) {
    throw new Error(`${from}: holds neither tokenizer.model nor tokenizer.json`);
  }
  for (const [src, name] of copies) {
    copyFileSync(src, join(dir, name));
    fsyncPath(join(dir, name));
  }
  return copies.map(([, f]) => basename(f));
}

/** What a checkpoint records about the chat format it was trained with. */
export interface ChatTemplateFiles {
  /** tokenizer_config.json's chat_template: one Jinja template, or named ones (Teuken: one per language). */
  chatTemplate: string | { name: string; template: string }[];
  /** Special-token strings of the tokenizer. */
  special: { bos?: string; eos?: string; unk?: string; pad?: string };
  maxLength?: number;
}

/**
 * Writes chat_template into tokenizer_config.json (keeping the fields of one copied from the model
 * folder, else the fields transformers' LlamaTokenizer reads) and special_tokens_map.json when absent.
 */
export function writeChatTemplateFiles(dir: string, t: ChatTemplateFiles): void {
  const cfgPath = join(dir, 'tokenizer_config.json');
  let cfg: Record<string, unknown>;
  if (existsSync(cfgPath)) {
    try {
      cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch (e) {
      throw new Error(`${cfgPath}: not valid JSON: ${(e as Error).message}`);
    }
  } else {
    const s = t.special;
    cfg = {
      tokenizer_class: 'LlamaTokenizer',
      add_bos_token: false,
      add_eos_token: false,
      legacy: true,
      clean_up_tokenization_spaces: false,
      ...(s.bos ? { bos_token: s.bos } : {}),
      ...(s.eos ? { eos_token: s.eos } : {}),
      ...(s.unk ? { unk_token: s.unk } : {}),
      ...(s.pad ? { pad_token: s.pad } : {}),
      ...(t.maxLength ? { model_max_length: t.maxLength } : {}),
    };
  }
  cfg.chat_template = t.chatTemplate;
  writeFileDurable(cfgPath, JSON.stringify(cfg, null, 2) + '\n');
  const mapPath = join(dir, 'special_tokens_map.json');
  if (!existsSync(mapPath)) {
    const m = Object.fromEntries(Object.entries({ bos_token: t.special.bos, eos_token: t.special.eos, unk_token: t.special.unk, pad_token: t.special.pad }).filter(([, v]) => v));
    writeFileDurable(mapPath, JSON.stringify(m, null, 2) + '\n');
  }
}
