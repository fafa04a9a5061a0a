// Sampling against closed-form distributions (Hugging Face's warpers: temperature, top-k with ties,
// top-p keeping the most likely token) and the repetition penalty against its definition.
import { describe, expect, it } from 'vitest';
import { Sampler, argmax } from '../../src/generate/sampling.js';

const logitsOf = (p: number[]) => Float32Array.from(p, Math.log);
function frequencies(s: Sampler, logits: Float32Array, n: number): number[] {
  const f = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) f[s.next(Float32Array.from(logits), [])]++;
  return f.map((c) => c / n);
}
const close = (got: number[], want: number[], tol = 0.015) => got.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThanOrEqual(tol));

describe('Sampler', () => {
  it('plain sampling follows softmax(logits / T)', () => {
    close(frequencies(new Sampler({ temperature: 1, seed: 1 }), logitsOf([0.5, 0.3, 0.2]), 20000), [0.5, 0.3, 0.2]);
    // T = 0.5 squares the probabilities: 0.36 / 0.16 -> 0.692 / 0.308.
    close(frequencies(new Sampler({ temperature: 0.5, seed: 2 }), logitsOf([0.6, 0.4]), 20000), [0.36 / 0.52, 0.16 / 0.52]);
  });

  it('top-p removes tokens whose ascending cumulative probability is <= 1 - p, always keeping the top one', () => {
    // Ascending 0.2, 0.3, 0.5: cumulative 0.2 <= 0.25 goes; 0.5 > 0.25 stays.
    close(frequencies(new Sampler({ temperature: 1, topP: 0.75, seed: 3 }), logitsOf([0.5, 0.3, 0.2]), 20000), [0.625, 0.375, 0]);
    close(frequencies(new Sampler({ temperature: 1, topP: 0.01, seed: 4 }), logitsOf([0.2, 0.5, 0.3]), 2000), [0, 1, 0], 0);
    // A large vocabulary where most of the mass is in a long tail.
    const V = 50000;
    const p = new Array(V).fill(0.5 / (V - 2));
    p[7] = 0.3;
    p[9] = 0.2;
    close(frequencies(new Sampler({ temperature: 1, topP: 0.45, seed: 5 }), logitsOf(p), 2000).filter((_, i) => i === 7 || i === 9), [0.6, 0.4], 0.04);
  });

  it('top-k keeps the k largest, and ties at the cut', () => {
    close(frequencies(new Sampler({ temperature: 1, topK: 2, seed: 6 }), logitsOf([0.1, 0.5, 0.15, 0.25]), 20000), [0, 0.5 / 0.75, 0, 0.25 / 0.75]);
    const tie = frequencies(new Sampler({ temperature: 1, topK: 2, seed: 7 }), Float32Array.from([1, 1, 1, 0]), 6000);
    close(tie, [1 / 3, 1 / 3, 1 / 3, 0], 0.03);
  });

  it('greedy below temperature 1e-4 takes the first maximum; seeds reproduce', () => {
    const l = Float32Array.from([0.1, 3, 3, -1]);
    expect(new Sampler({ temperature: 0 }).next(Float32Array.from(l), [])).toBe(1);
    expect(new Sampler({ temperature: 5e-5 }).next(Float32Array.from(l), [])).toBe(1);
    const draws = (seed: number) => { const s = new Sampler({ temperature: 1, seed }); return Array.from({ length: 50 }, () => s.next(logitsOf([0.25, 0.25, 0.25, 0.25]), [])); };
    expect(draws(9)).toEqual(draws(9));
    expect(draws(9)).not.toEqual(draws(10));
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens, once each', () => {
    const l = Float32Array.from([2, -2, 1.5, 0]);
    const s = new Sampler({ temperature: 0, repetitionPenalty: 2 });
    expect(s.next(l, [0, 1, 0])).toBe(2);
    expect([...l]).toEqual([1, -4, 1.5, 0]);
    expect(argmax(Float32Array.from([NaN, 1, 2]))).toBe(2);
  });

  it('rejects invalid parameters by name', () => {
    expect(() => new Sampler({ topP: 0 })).toThrow(/top_p must be in \(0, 1\]/);
    expect(() => new Sampler({ topK: 1.5 })).toThrow(/top_k/);
    expect(() => new Sampler({ temperature: -1 })).toThrow(/temperature/);
    expect(() => new Sampler({ repetitionPenalty: 0 })).toThrow(/repetition_penalty/);
  });
});
