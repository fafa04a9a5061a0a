import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostTensor, tensorSource } from '../../src/checkpoint/byte-tensor.js';
import { readCheckpoint, writeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { readHfConfig } from '../../src/checkpoint/hf-files.js';
import { expectedLlamaTensors } from '../../src/checkpoint/llama-names.js';
import { writeSafetensors, type TensorSource } from '../../src/checkpoint/safetensors/file.js';
import { f32ToBf16 } from '../../src/tensor/bf16.js';
import { randomParams, sharedDir, tempDir, tinyConfig } from './fixtures.js';

const tmp = tempDir('llama');
afterAll(tmp.cleanup);
const fresh = tmp.fresh;

describe('Hugging Face Llama names', () => {
  it('counts exactly the 6,738,415,616 parameters of Llama-2-7B', () => {
    const cfg = tinyConfig({ hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32000 });
    const m = expectedLlamaTensors(cfg);
    expect(m.size).toBe(2 + 32 * 9 + 1);
    expect([...m.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0)).toBe(6_738_415_616);
  });

  it('gives grouped-query k/v their own shape and drops lm_head when tied', () => {
    const m = expectedLlamaTensors(tinyConfig({ tie_word_embeddings: true }));
    expect(m.get('model.layers.1.self_attn.q_proj.weight')).toEqual([16, 16]);
    expect(m.get('model.layers.1.self_attn.k_proj.weight')).toEqual([8, 16]);
    expect(m.get('model.layers.0.mlp.down_proj.weight')).toEqual([16, 24]);
    expect(m.has('lm_head.weight')).toBe(false);
  });
});

describe('Llama checkpoint folders', () => {
  const cfg = tinyConfig();
  const params = randomParams(cfg, 1);

  it('writes a Hugging Face model folder and loads it back bit for bit', () => {
    const dir = fresh();
    const tok = fresh();
    writeFileSync(join(tok, 'tokenizer.model'), Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 255));
    writeFileSync(join(tok, 'tokenizer_config.json'), '{"add_bos_token": true}');
    writeCheckpoint(dir, { params }, { config: cfg, tokenizer: tok, baseConfig: { rope_scaling: null, custom_field: 'kept' } });
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'generation_config.json', 'manifest.json', 'model.safetensors', 'tokenizer.model', 'tokenizer_config.json']);
    const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(json).toMatchObject({ architectures: ['LlamaForCausalLM'], model_type: 'llama', torch_dtype: 'bfloat16', hidden_act: 'silu', custom_field: 'kept', num_key_value_heads: 2, tie_word_embeddings: false });
    expect(readHfConfig(dir).config).toEqual(cfg);
    expect(JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8'))).toEqual({ _from_model_config: true, bos_token_id: 1, eos_token_id: 2 });
    expect(readFileSync(join(dir, 'tokenizer.model'))).toEqual(readFileSync(join(tok, 'tokenizer.model')));
    const back = readCheckpoint(dir, { alloc: HostTensor.alloc });
    expect(back.optimizer).toBeUndefined();
    expect([...back.params.keys()].sort()).toEqual([...params.keys()].sort());
    for (const [name, t] of params) expect(back.params.get(name)!.bytes, name).toEqual(t.bytes);
  });

  it('stores F32 on request, and converts to bf16 on load', () => {
    const p32 = randomParams(cfg, 2, 'f32');
    const dir = fresh();
    writeCheckpoint(dir, { params: p32 }, { config: cfg, dtype: 'F32', maxShardBytes: 4000 });
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype).toBe('float32');
    expect(existsSync(join(dir, 'model.safetensors.index.json'))).toBe(true);
    const exact = readCheckpoint(dir, { alloc: HostTensor.alloc, dtype: 'f32' });
    for (const [name, t] of p32) expect(exact.params.get(name)!.bytes, name).toEqual(t.bytes);
    const rounded = readCheckpoint(dir, { alloc: HostTensor.alloc, dtype: 'bf16' });
    for (const [name, t] of p32) {
      const want = f32ToBf16(new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4));
      expect(rounded.params.get(name)!.bytes, name).toEqual(new Uint8Array(want.buffer));
    }
  });

  it('writes sharded BF16 weights that load back identically', () => {
    const dir = fresh();
    writeCheckpoint(dir, { params }, { config: cfg, maxShardBytes: 2000 });
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(new Set(Object.values(index.weight_map)).size).toBeGreaterThan(2);
    const back = readCheckpoint(dir, { alloc: HostTensor.alloc });
    for (const [name, t] of params) expect(back.params.get(name)!.bytes, name).toEqual(t.bytes);
  });

  it('saves tied embeddings without lm_head', () => {
    const tied = tinyConfig({ tie_word_embeddings: true });
    const dir = fresh();
    writeCheckpoint(dir, { params: randomParams(tied, 3) }, { config: tied });
    const back = readCheckpoint(dir, { alloc: HostTensor.alloc });
    expect(back.params.has('lm_head.weight')).toBe(false);
    expect(back.params.size).toBe(expectedLlamaTensors(tied).size);
  });

  it('loads a folder laid out as Hugging Face writes it: F16, inv_freq buffers, no manifest', () => {
    const dir = fresh();
    const f16 = (t: HostTensor) => {
      // Bits of small F16 values: sign/exponent fixed, mantissa varying, so the expected bf16 is known.
      const n = t.bytes.byteLength / 2;
      const h = Uint16Array.from({ length: n }, (_, i) => 0x3800 | (i & 0x3ff)); // 0.5 * (1 + k/1024)
      return new HostTensor('bf16', t.shape, new Uint8Array(h.buffer));
    };
    const sources: TensorSource[] = [...params].map(([name, t]) => ({ ...tensorSource(name, f16(t)), dtype: 'F16' }));
    sources.push(tensorSource('model.layers.0.self_attn.rotary_emb.inv_freq', new HostTensor('f32', [2])));
    writeSafetensors(join(dir, 'model.safetensors'), sources, { metadata: { format: 'pt' } });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 40, max_position_embeddings: 64, rms_norm_eps: 1e-5, torch_dtype: 'float16' }));
    const back = readCheckpoint(dir, { alloc: HostTensor.alloc, dtype: 'f32' });
    expect(back.params.has('model.layers.0.self_attn.rotary_emb.inv_freq')).toBe(false);
    const norm = new Float32Array(back.params.get('model.norm.weight')!.bytes.buffer);
    expect([...norm.slice(0, 3)]).toEqual([0.5, 0.5 * (1 + 1 / 1024), 0.5 * (1 + 2 / 1024)]);
  });

  it('rejects shapes that disagree with config.json, and missing or unexpected tensors, by name', () => {
    const dir = fresh();
    writeCheckpoint(dir, { params }, { config: cfg });
    const cfgPath = join(dir, 'config.json');
    const json = JSON.parse(readFileSync(cfgPath, 'utf8'));
    writeFileSync(cfgPath, JSON.stringify({ ...json, intermediate_size: 32 }));
    expect(() => readCheckpoint(dir, { alloc: HostTensor.alloc })).toThrow(/tensors do not match config.json: tensor 'model.layers.0.mlp.gate_proj.weight' has shape \[24, 16\] but config.json needs \[32, 16\]/);
    writeFileSync(cfgPath, JSON.stringify({ ...json, num_hidden_layers: 3 }));
    expect(() => readCheckpoint(dir, { alloc: HostTensor.alloc })).toThrow(/missing tensor 'model.layers.2.self_attn.q_proj.weight'/);
    writeFileSync(cfgPath, JSON.stringify({ ...json, num_hidden_layers: 1 }));
    expect(() => readCheckpoint(dir, { alloc: HostTensor.alloc })).toThrow(/unexpected tensor 'model.layers.1.self_attn.q_proj.weight'/);
    // A tied model may still store lm_head.weight: transformers loads it (and ties the head to the
    // embeddings), so the stored copy is ignored rather than refused.
    writeFileSync(cfgPath, JSON.stringify({ ...json, tie_word_embeddings: true }));
    const tied = readCheckpoint(dir, { alloc: HostTensor.alloc });
    expect(tied.params.has('lm_head.weight')).toBe(false);
    expect(tied.params.has('model.embed_tokens.weight')).toBe(true);
  });

  it('refuses to save parameters that do not match the config', () => {
    const missing = new Map(params);
    missing.delete('model.norm.weight');
    expect(() => writeCheckpoint(fresh(), { params: missing }, { config: cfg })).toThrow(/parameters to save: tensors do not match config.json: missing tensor 'model.norm.weight'/);
    const misshapen = new Map(params).set('model.norm.weight', new HostTensor('bf16', [17]));
    expect(() => writeCheckpoint(fresh(), { params: misshapen }, { config: cfg })).toThrow(/'model.norm.weight' has shape \[17\] but config.json needs \[16\]/);
  });

  it('fails on a truncated shard naming the file and the tensor', () => {
    const dir = fresh();
    writeCheckpoint(dir, { params }, { config: cfg });
    const file = join(dir, 'model.safetensors');
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 100));
    expect(() => readCheckpoint(dir, { alloc: HostTensor.alloc })).toThrow(new RegExp(`${file}: tensor 'model\\..*' data_offsets .* run past the end of the data`));
  });

  it.skipIf(!existsSync(join(sharedDir, 'data/stories260k/tok512.model')))('copies a SentencePiece model file as tokenizer.model (needs ../shared)', () => {
    const dir = fresh();
    const tok = join(sharedDir, 'data/stories260k/tok512.model');
    writeCheckpoint(dir, { params }, { config: cfg, tokenizer: tok });
    expect(readFileSync(join(dir, 'tokenizer.model'))).toEqual(readFileSync(tok));
  });

  it('tells what is missing when a tokenizer folder has no tokenizer', () => {
    expect(() => writeCheckpoint(fresh(), { params }, { config: cfg, tokenizer: fresh() })).toThrow(/holds neither tokenizer.model nor tokenizer.json/);
    rmSync(join(tmp.dir, 'nope'), { force: true });
    expect(() => writeCheckpoint(fresh(), { params }, { config: cfg, tokenizer: join(tmp.dir, 'nope') })).toThrow(/nope: tokenizer not found/);
  });
});
