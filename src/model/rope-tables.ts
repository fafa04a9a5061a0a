import { Tensor, type Device } from '../tensor/index.js';

/**
 * cos/sin tables [maxPos, D/2] for rotary embeddings, angle = pos * theta^(-2i/D) as in Hugging Face's
 * LlamaRotaryEmbedding, computed in double and rounded once, so every backend reads the same angles.
 */
export function ropeTables(maxPos: number, headDim: number, theta: number, device: Device = 'cpu'): { cos: Tensor; sin: Tensor } {
  const half = headDim / 2;
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let i = 0; i < half; i++) {
    const invFreq = Math.pow(theta, (-2 * i) / headDim);
    for (let p = 0; p < maxPos; p++) {
      cos[p * half + i] = Math.cos(p * invFreq);
      sin[p * half + i] = Math.sin(p * invFreq);
    }
  }
  return { cos: Tensor.fromArray(cos, [maxPos, half], 'f32', device), sin: Tensor.fromArray(sin, [maxPos, half], 'f32', device) };
}
