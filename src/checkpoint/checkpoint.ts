import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from '../model/config.js';
import { tensorSource, type Alloc, type ByteTensor } from './byte-tensor.js';
import { fsyncPath, writeFileDurable } from '../util/durable.js';
import { copyTokenizerFiles, hfConfigJson, readHfConfig, writeChatTemplateFiles, writeGenerationConfig, writeHfConfig, type ChatTemplateFiles, type HfConfig } from './hf-files.js';
import { checkTensorSet, expectedLlamaTensors, isIgnoredHfBuffer } from './llama-names.js';
import { stDtypeOf, type HostDtype } from './safetensors/dtypes.js';
import type { TensorDest, TensorInfo, WriteResult } from './safetensors/file.js';
import { openSharded, readSharded, writeSharded, type ShardedCheckpoint } from './safetensors/sharded.js';
import { decodeState, encodeState, expectedOptimizerTensors, type TrainingState } from './training-state.js';

/** The training state lives in its own folder, so the checkpoint folder stays a plain HF model. */
export const TRAINING_STATE_DIR = 'training_state';
export const MANIFEST = 'manifest.json';

export interface SaveOptions {
  config: LlamaConfig & { head_dim?: number };
  /** The config.json the run started from; its extra fields are kept. */
  baseConfig?: Record<string, unknown>;
  /** Weight dtype on disk: BF16 (default) or F32. Optimizer tensors keep their own dtype. */
  dtype?: 'BF16' | 'F32';
  maxShardBytes?: number;
  /** A model folder or SentencePiece .model file whose tokenizer is copied alongside. */
  tokenizer?: string;
  /** The chat template trained with, written into tokenizer_config.json (after the tokenizer's own files). */
  chatTemplate?: ChatTemplateFiles;
  /** generation_config.json contents (default: the config's special token ids). */
  generationConfig?: Record<string, unknown>;
  chunkBytes?: number;
}

export interface CheckpointContent {
  /** Model parameters keyed by Hugging Face name. */
  params: ReadonlyMap<string, ByteTensor>;
  /** Optimizer tensors keyed "master.<name>", "exp_avg.<name>", "exp_avg_sq.<name>". */
  optimizer?: ReadonlyMap<string, ByteTensor>;
  state?: TrainingState;
}

interface Manifest {
  format: 'polytune-checkpoint';
  version: 1;
  files: Record<string, { bytes: number; crc32: Record<string, number> }>;
}

/**
 * Writes a checkpoint into an existing empty folder: a Hugging Face model (config.json,
 * generation_config.json, model*.safetensors, tokenizer files), the training state in
 * training_state/, and last manifest.json with every tensor's checksum.
 */
export function writeCheckpoint(dir: string, content: CheckpointContent, opts: SaveOptions): void {
  const expected = expectedLlamaTensors(opts.config);
  checkTensorSet(shapesOf(content.params), expected, 'parameters to save', 'config.json');
  const { optimizer, state } = content;
  if (!optimizer !== !state) throw new Error('a training state needs both the optimizer tensors and the state');
  const optExpected = optimizer && expectedOptimizerTensors(expected, [...optimizer.keys()].some((n) => n.startsWith('master.')));
  if (optimizer) checkTensorSet(shapesOf(optimizer), optExpected!, 'optimizer state to save', 'config.json');
  // In Hugging Face's state-dict order, so shards split where transformers would split them.
  const sources = [...expected.keys()].map((n) => tensorSource(n, content.params.get(n)!));
  const weightDtype = opts.dtype ?? 'BF16';
  const files: Manifest['files'] = {};
  const record = (sub: string, written: Record<string, WriteResult>) => {
    for (const [f, r] of Object.entries(written)) files[sub ? `${sub}/${f}` : f] = { bytes: r.bytes, crc32: r.crc32 };
  };
  const common = { maxShardBytes: opts.maxShardBytes, chunkBytes: opts.chunkBytes, metadata: { format: 'pt' } };
  record('', writeSharded(dir, 'model', sources, { ...common, storeAs: () => weightDtype }));
  writeHfConfig(dir, hfConfigJson(opts.config, weightDtype === 'BF16' ? 'bfloat16' : 'float32', opts.baseConfig));
  writeGenerationConfig(dir, opts.config, opts.generationConfig);
  if (opts.tokenizer) copyTokenizerFiles(opts.tokenizer, dir);
  if (opts.chatTemplate) writeChatTemplateFiles(dir, opts.chatTemplate);
  if (optimizer && state) {
    const stateJson = encodeState(state);
    const sub = join(dir, TRAINING_STATE_DIR);
    mkdirSync(sub);
    const optSources = [...optExpected!.keys()].map((n) => tensorSource(n, optimizer.get(n)!));
    record(TRAINING_STATE_DIR, writeSharded(sub, 'optimizer', optSources, common));
    writeFileDurable(join(sub, 'state.json'), stateJson);
    fsyncPath(sub);
  }
  const manifest: Manifest = { format: 'polytune-checkpoint', version: 1, files };
  writeFileDurable(join(dir, MANIFEST), JSON.stringify(manifest, null, 1) + '\n');
  fsyncPath(dir);
}

export interface LoadOptions<T extends ByteTensor> {
  alloc: Alloc<T>;
  /**
   * The dtype parameters are loaded as (default bf16); stored BF16/F16/F32 convert to it.
   * 'stored' keeps each tensor's own dtype (F16 widens to f32).
   */
  dtype?: HostDtype | 'stored';
  /** Check every tensor against manifest.json's checksums when the folder has one (default true). */
  verify?: boolean;
  /** Load the model only, leaving a training state in the folder unread (starting a new run from it). */
  weightsOnly?: boolean;
  chunkBytes?: number;
}

export interface LoadedCheckpoint<T> {
  config: HfConfig;
  params: Map<string, T>;
  /** Present when the folder holds a training state. */
  optimizer?: Map<string, T>;
  state?: TrainingState;
}

/**
 * Loads a checkpoint folder: ours, or a Hugging Face Llama model folder unchanged. Names and
 * shapes are checked against config.json before any tensor is allocated.
 */
export function readCheckpoint<T extends ByteTensor>(dir: string, opts: LoadOptions<T>): LoadedCheckpoint<T> {
  const config = readHfConfig(dir);
  const manifest = opts.verify === false ? undefined : readManifest(dir);
  for (const rel of Object.keys(manifest?.files ?? {})) {
    if (!existsSync(join(dir, rel))) throw new Error(`${join(dir, rel)}: listed in ${MANIFEST} but missing`);
  }
  const model = openSharded(dir, 'model');
  const expected = expectedLlamaTensors(config.config);
  // A tied model may still store lm_head.weight (some exports do); transformers loads it and ties
  // the head to the embeddings, so the stored copy is ignored, as here.
  const ignored = (n: string) => isIgnoredHfBuffer(n) || (config.config.tie_word_embeddings && n === 'lm_head.weight');
  const found = new Map([...model.tensors].filter(([n]) => !ignored(n)).map(([n, t]) => [n, t.shape]));
  checkTensorSet(found, expected, dir, 'config.json');
  const stateDir = join(dir, TRAINING_STATE_DIR);
  let opt: ShardedCheckpoint | undefined;
  if (existsSync(stateDir) && !opts.weightsOnly) {
    opt = openSharded(stateDir, 'optimizer');
    const withMaster = [...opt.tensors.keys()].some((n) => n.startsWith('master.'));
    checkTensorSet(new Map([...opt.tensors].map(([n, t]) => [n, t.shape])), expectedOptimizerTensors(expected, withMaster), stateDir, 'config.json');
  }
  const allocated: T[] = [];
  try {
    const want = opts.dtype ?? 'bf16';
    const params = loadInto(model, dir, manifest, allocated, opts, ignored, (t) => (want !== 'stored' ? want : t.dtype === 'BF16' ? 'bf16' : t.dtype === 'I32' ? 'i32' : 'f32'));
    if (!opt) return { config, params };
    const optimizer = loadInto(opt, dir, manifest, allocated, opts, isIgnoredHfBuffer, (t) => {
      if (t.dtype !== 'F32' && t.dtype !== 'BF16') throw new Error(`${t.file}: optimizer tensor '${t.name}' has dtype ${t.dtype}; expected F32 or BF16`);
      return t.dtype === 'F32' ? 'f32' : 'bf16';
    });
    const statePath = join(stateDir, 'state.json');
    if (!existsSync(statePath)) throw new Error(`${statePath}: missing (the optimizer state has no step, data position or RNG state)`);
    return { config, params, optimizer, state: decodeState(readFileSync(statePath, 'utf8'), statePath) };
  } catch (e) {
    for (const t of allocated) t.dispose?.();
    throw e;
  }
}

function loadInto<T extends ByteTensor>(
  ck: ShardedCheckpoint,
  dir: string,
  manifest: Manifest | undefined,
  allocated: T[],
  opts: LoadOptions<T>,
  ignored: (name: string) => boolean,
  dtypeFor: (t: TensorInfo) => HostDtype,
): Map<string, T> {
  const out = new Map<string, T>();
  const discard: TensorDest = { dtype: 'F32', write: () => {} };
  const expectCrc32ByFile = manifest ? manifestCrcs(manifest, dir, ck) : undefined;
  readSharded(
    ck,
    (t) => {
      if (ignored(t.name)) return { ...discard, dtype: t.dtype };
      const dtype = dtypeFor(t);
      const dest = opts.alloc(t.shape, dtype);
      allocated.push(dest);
      out.set(t.name, dest);
      // Through writeBytes, not a view: a view would keep a tensor's memory alive after dispose()
      // until the garbage collector ran, and a failed load disposes what it allocated.
      return { dtype: stDtypeOf(dtype), write: (off, bytes) => dest.writeBytes(off, bytes) };
    },
    { chunkBytes: opts.chunkBytes, expectCrc32ByFile },
  );
  return out;
}

function readManifest(dir: string): Manifest | undefined {
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) return undefined;
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  if (m?.format !== 'polytune-checkpoint' || m.version !== 1 || typeof m.files !== 'object') throw new Error(`${path}: not a version 1 polytune checkpoint manifest`);
  return m;
}

/** Checks file sizes against the manifest and returns its checksums keyed by absolute path. */
function manifestCrcs(m: Manifest, dir: string, ck: ShardedCheckpoint): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [rel, entry] of Object.entries(m.files)) {
    const abs = join(dir, rel);
    out[abs] = entry.crc32;
    const st = ck.files.find((f) => f.file === abs);
    if (st && st.fileSize !== entry.bytes) throw new Error(`${abs}: ${st.fileSize} bytes, but ${MANIFEST} records ${entry.bytes}`);
  }
  for (const st of ck.files) if (!out[st.file]) throw new Error(`${st.file}: not listed in ${join(dir, MANIFEST)}`);
  return out;
}

/** Reads every tensor of a checkpoint against its manifest without keeping any; throws on the first fault. */
export function verifyCheckpoint(dir: string, chunkBytes?: number): void {
  if (!readManifest(dir)) throw new Error(`${join(dir, MANIFEST)}: missing, so the checkpoint cannot be verified`);
  readCheckpoint(dir, { alloc: (shape, dtype) => discardingTensor(shape, dtype), verify: true, chunkBytes, dtype: 'stored' });
}

/** Keeps only shape and dtype: verification checks bytes as they stream past. */
function discardingTensor(shape: readonly number[], dtype: HostDtype): ByteTensor {
  return { dtype, shape, readBytes: () => new Uint8Array(0), writeBytes: () => {} };
}

function shapesOf(m: ReadonlyMap<string, ByteTensor>): Map<string, readonly number[]> {
  return new Map([...m].map(([n, t]) => [n, t.shape]));
}
