import { HostTensor } from '../../src/checkpoint/byte-tensor.js';
import { expectedLlamaTensors } from '../../src/checkpoint/llama-names.js';
import { expectedOptimizerTensors, type TrainingState } from '../../src/checkpoint/training-state.js';
import type { LlamaConfig } from '../../src/model/config.js';

/** About 75 MB per checkpoint: 5.3M parameters in bf16 plus fp32 master weights and moments. */
export const killConfig: LlamaConfig = {
  hidden_size: 256,
  intermediate_size: 688,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  vocab_size: 4096,
  max_position_embeddings: 256,
  tie_word_embeddings: false,
};

export const lossFor = (step: number): number => 1 + ((step * 7919) % 13) / 10;

/** Finite, non-zero values that differ per tensor and per element, and carry the step in their first 8 bytes. */
function fill(t: HostTensor, salt: number, step: number): void {
  const u16 = new Uint16Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 2);
  for (let i = 0; i < u16.length; i++) u16[i] = 0x3c00 | (Math.imul(i + salt, 2654435761) >>> 22);
  new DataView(t.bytes.buffer, t.bytes.byteOffset).setUint32(0, step, true);
  new DataView(t.bytes.buffer, t.bytes.byteOffset).setUint32(4, salt, true);
}

export interface KillContent {
  params: Map<string, HostTensor>;
  optimizer: Map<string, HostTensor>;
  state: TrainingState;
}

export function contentFor(step: number): KillContent {
  const shapes = expectedLlamaTensors(killConfig);
  let salt = 0;
  const make = (dtype: 'bf16' | 'f32', shape: readonly number[]) => {
    const t = new HostTensor(dtype, shape);
    fill(t, ++salt, step);
    return t;
  };
  const params = new Map([...shapes].map(([n, s]) => [n, make('bf16', s)]));
  const optimizer = new Map([...expectedOptimizerTensors(shapes, true)].map(([n, s]) => [n, make('f32', s)]));
  const state: TrainingState = { step, epoch: Math.floor(step / 3), dataPosition: { index: step * 64 }, schedule: { lr: 1e-5 * (1 - step / 1000) }, rng: { seed: BigInt(step) * 0x9e3779b97f4a7c15n }, runConfig: { killTest: true } };
  return { params, optimizer, state };
}
