import { describe, expect, it } from 'vitest';
import { countParams, parseLlamaConfig, presetNames, resolveConfig } from '../../src/model/index.js';

describe('model presets', () => {
  it('Llama-2-7B has the published 6,738,415,616 parameters', () => {
    expect(countParams(resolveConfig('llama-2-7b'))).toBe(6_738_415_616);
  });

  it('the 24EU-style model differs only by its 250,680-piece vocabulary (two 4096-wide tables)', () => {
    const d = countParams(resolveConfig('24eu-7b')) - countParams(resolveConfig('llama-2-7b'));
    expect(d).toBe(2 * (250_680 - 32_000) * 4096);
  });

  it('the Teuken-style model: 2 kv heads, intermediate 13,440, tied embeddings', () => {
    const c = resolveConfig('teuken-7b');
    expect([c.num_key_value_heads, c.intermediate_size, c.tie_word_embeddings]).toEqual([2, 13440, true]);
    const D = 128;
    const perLayer = 4096 * 4096 * 2 + 2 * 4096 * 2 * D + 3 * 4096 * 13440 + 2 * 4096;
    expect(countParams(c)).toBe(250_680 * 4096 + 32 * perLayer + 4096);
  });

  it('tiny-1m is about a million parameters', () => {
    const n = countParams(resolveConfig('tiny-1m'));
    expect(n).toBeGreaterThan(0.8e6);
    expect(n).toBeLessThan(1.2e6);
    expect(presetNames()).toEqual(expect.arrayContaining(['llama-2-7b', '24eu-7b', 'teuken-7b', 'tiny', 'tiny-1m']));
  });

  it('config errors name the file and field', () => {
    expect(() => parseLlamaConfig({ hidden_size: 64 }, 'x/config.json')).toThrow("x/config.json: missing field 'intermediate_size'");
    const base = { hidden_size: 64, intermediate_size: 10, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 9, max_position_embeddings: 8 };
    expect(() => parseLlamaConfig({ ...base, num_key_value_heads: 3 }, 'c.json')).toThrow('c.json: num_key_value_heads 3 must divide num_attention_heads 4');
    expect(() => parseLlamaConfig({ ...base, hidden_size: 'big' }, 'c.json')).toThrow("c.json: field 'hidden_size' must be a positive integer");
    expect(() => resolveConfig('no-such-model')).toThrow(/neither a preset/);
  });
});
