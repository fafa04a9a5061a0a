import { Tensor, ops, type DType, type Device } from '../tensor/index.js';
import type { LlamaConfig } from './config.js';

import { expectedLlamaTensors } from '../checkpoint/llama-names.js';

/** Hugging Face parameter names and shapes, in the order a checkpoint lists them. */
export const llamaParamShapes = (c: LlamaConfig): Map<string, number[]> => expectedLlamaTensors(c);

export const isNormWeight = (name: string): boolean => name.endsWith('norm.weight');

export function countParams(c: LlamaConfig): number {
  let n = 0;
  for (const s of llamaParamShapes(c).values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Random weights as Hugging Face initialises a new Llama (normal, std 0.02; norms at 1), from a seed,
 * as f32 host arrays so tests can hand the same values to other implementations.
 */
export function initLlamaWeights(c: LlamaConfig, seed: number, std = 0.02): Map<string, Float32Array> {
  const normal = gaussian(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of llamaParamShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    if (isNormWeight(name)) a.fill(1);
    else for (let i = 0; i < n; i++) a[i] = normal() * std;
    out.set(name, a);
  }
  return out;
}

/** Device tensors of the model's dtype from f32 host weights (bf16 rounded to nearest even). */
export function toTensors(weights: Map<string, Float32Array>, c: LlamaConfig, dtype: DType, device: Device = 'cpu'): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, shape] of llamaParamShapes(c)) {
    const w = weights.get(name);
    if (!w) throw new Error(`missing weight ${name}`);
    const t32 = Tensor.fromArray(w, shape, 'f32', device);
    if (dtype === 'f32') {
      out.set(name, t32);
    } else {
      out.set(name, ops.cast(t32, 'bf16'));
      t32.dispose();
    }
  }
  return out;
}

function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}
