// A checkpoint written by training carries its chat template: loading it for generation renders,
// id for id, the prompts training used; generation_config.json's eos and bos are honoured.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeConversation, TeukenTemplate, type Conversation } from '../../src/data/index.js';
import { Generator } from '../../src/generate/engine.js';
import { loadModel, readGenerationConfig } from '../../src/generate/load.js';
import { embeddedDefault, runTraining } from '../../src/train/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'polytune-trained-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a checkpoint written by training', () => {
  it('has chat_template in tokenizer_config.json rendering the training ids, and generates from it', async () => {
    const cfg = await embeddedDefault(join(tmp, 'run'), { items: 20 });
    const r = await runTraining({ ...cfg, train: { ...cfg.train, epochs: 1, globalBatch: 16, microBatch: 16, maxSteps: 2 } }, { log: () => {} });
    const ck = r.checkpoint;
    const tc = JSON.parse(readFileSync(join(ck, 'tokenizer_config.json'), 'utf8'));
    expect(tc.chat_template.map((t: { name: string }) => t.name)).toEqual(['EN', 'DE', 'FR', 'IT', 'ES', 'default']);
    expect(JSON.parse(readFileSync(join(ck, 'special_tokens_map.json'), 'utf8'))).toMatchObject({ bos_token: '<s>', eos_token: '</s>' });
    const m = await loadModel(ck, { dtype: 'f32' });
    const builtin = new TeukenTemplate();
    for (const lang of ['EN', 'DE', 'FR', 'IT', 'ES']) {
      const conv: Conversation = { id: 'x', lang, messages: [{ role: 'user', content: 'Was ist 2 plus 3?' }, { role: 'assistant', content: '5' }, { role: 'user', content: 'Und 3 plus 4?' }, { role: 'assistant', content: '7' }] };
      const train = encodeConversation(m.tokenizer, builtin, conv);
      expect(encodeConversation(m.tokenizer, m.template!, conv).ids).toEqual(train.ids);
      const prompt = { ...conv, messages: conv.messages.slice(0, 3) };
      expect(encodeConversation(m.tokenizer, m.template!, prompt, { generationPrompt: true }).ids).toEqual(encodeConversation(m.tokenizer, builtin, prompt, { generationPrompt: true }).ids);
    }
    const gen = new Generator(m.model, m.tokenizer, { slots: 1, maxLen: 256, eos: m.generation.eos });
    const out = await gen.generate({ prompt: encodeConversation(m.tokenizer, m.template!, { id: 'y', lang: 'DE', messages: [{ role: 'user', content: 'Was ist 2 plus 3?' }] }, { generationPrompt: true }).ids, maxNewTokens: 5, sampling: { temperature: 0 } });
    expect(out.ids.length).toBeGreaterThan(0);
    gen.dispose();
    m.dispose();
  }, 120_000);
});

describe('generation_config.json', () => {
  it('eos lists and bos are honoured over config.json; sampling defaults follow do_sample', () => {
    const d = mkdtempSync(join(tmp, 'gc-'));
    writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ bos_token_id: 5, eos_token_id: [2, 7], do_sample: true, temperature: 0.6, top_p: 0.9 }));
    expect(readGenerationConfig(d, 2, 1)).toEqual({
      eos: [2, 7], bos: 5, defaults: { temperature: 0.6, topP: 0.9, topK: 50, repetitionPenalty: 1 },
      fileSampling: { topP: 0.9, topK: undefined, repetitionPenalty: undefined }, maxNewTokens: undefined,
    });
    writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ eos_token_id: 3 }));
    expect(readGenerationConfig(d, 2, 1)).toMatchObject({ eos: [3], bos: 1, defaults: { temperature: 0 } });
    // Greedy by default, but what it names still reaches a caller that samples (FastChat's answers).
    writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ top_p: 0.9, top_k: 20, repetition_penalty: 1.1 }));
    expect(readGenerationConfig(d, 2, 1)).toMatchObject({ defaults: { temperature: 0, repetitionPenalty: 1.1 }, fileSampling: { topP: 0.9, topK: 20, repetitionPenalty: 1.1 } });
    writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ eos_token_id: 'x' }));
    expect(() => readGenerationConfig(d, 2, 1)).toThrow(/generation_config.json: field "eos_token_id" must be a token id/);
  });
});
