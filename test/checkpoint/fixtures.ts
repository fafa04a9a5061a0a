import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HostTensor } from '../../src/checkpoint/byte-tensor.js';
import { expectedLlamaTensors } from '../../src/checkpoint/llama-names.js';
import { expectedOptimizerTensors } from '../../src/checkpoint/training-state.js';
import type { LlamaConfig } from '../../src/model/config.js';
import { f32ToBf16 } from '../../src/tensor/bf16.js';
import { randn, rng } from '../helpers/random.js';

export const projectRoot = resolve(import.meta.dirname, '../..');
export const sharedDir = resolve(projectRoot, '../shared');

export function tempDir(tag: string): { dir: string; cleanup: () => void; fresh: () => string } {
  const dir = mkdtempSync(join(tmpdir(), `polytune-ckpt-${tag}-`));
  let n = 0;
  // A new empty folder inside it for each checkpoint a test writes.
  const fresh = () => {
    const d = join(dir, `c${n++}`);
    mkdirSync(d);
    return d;
  };
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }), fresh };
}

/** A tiny Llama with grouped-query attention, so k/v shapes differ from q. */
export const tinyConfig = (over: Partial<LlamaConfig> = {}): LlamaConfig => ({
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  vocab_size: 40,
  max_position_embeddings: 64,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  ...over,
});

export function hostTensor(dtype: 'bf16' | 'f32', shape: readonly number[], r: () => number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const f = randn(n, r);
  const arr = dtype === 'f32' ? f : f32ToBf16(f);
  return new HostTensor(dtype, shape, new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
}

export function randomParams(config: LlamaConfig, seed: number, dtype: 'bf16' | 'f32' = 'bf16'): Map<string, HostTensor> {
  const r = rng(seed);
  return new Map([...expectedLlamaTensors(config)].map(([name, shape]) => [name, hostTensor(dtype, shape, r)]));
}

export function randomOptimizer(config: LlamaConfig, seed: number, withMaster = true, dtype: 'bf16' | 'f32' = 'f32'): Map<string, HostTensor> {
  const r = rng(seed);
  const want = expectedOptimizerTensors(expectedLlamaTensors(config), withMaster);
  return new Map([...want].map(([name, shape]) => [name, hostTensor(dtype, shape, r)]));
}

export const bytesOf = (t: { readBytes(o: number, n: number): Uint8Array; shape: readonly number[]; dtype: string }): Uint8Array =>
  t.readBytes(0, t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'bf16' ? 2 : 4));

/** Little-endian bytes of f32 values, written out independently of the code under test. */
export function f32Bytes(...values: number[]): number[] {
  const dv = new DataView(new ArrayBuffer(4 * values.length));
  values.forEach((v, i) => dv.setFloat32(4 * i, v, true));
  return [...new Uint8Array(dv.buffer)];
}

/** Assembles a safetensors file from a header object written out by hand and raw data bytes. */
export function assemble(headerJson: string, data: number[], pad = true): Uint8Array {
  const json = new TextEncoder().encode(headerJson);
  const n = pad ? Math.ceil(json.length / 8) * 8 : json.length;
  const out = new Uint8Array(8 + n + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  out.set(data, 8 + n);
  return out;
}
