// Chat templates with real SentencePiece models whose settings change the chunk seams: no dummy
// prefix, no BOS. The reference is the same model encoding the whole rendered string.
import { describe, expect, it } from 'vitest';
import { encodeConversation, Llama2Template, TeukenTemplate, type Conversation } from '../../src/data/index.js';
import { SentencePieceTokenizer } from '../../src/tokenizer/index.js';
import { trainingCorpus } from '../tokenizer/corpus.js';
import { skipSpm, spmSkipMessage, trainSpm } from '../tokenizer/spm.js';

const conv: Conversation = {
  id: 'x1',
  lang: 'EN',
  messages: [
    { role: 'user', content: 'What is three plus four?' },
    { role: 'assistant', content: 'three plus four is seven' },
  ],
};

describe.skipIf(skipSpm)(`chat templates on real SentencePiece models${skipSpm ? ` (skipped: ${spmSkipMessage})` : ''}`, () => {
  it('without a dummy prefix, the answer keeps its leading "▁" as in a whole-string encode', () => {
    const model = trainSpm(trainingCorpus(800), { model_type: 'unigram', vocab_size: 600, add_dummy_prefix: false, hard_vocab_limit: false });
    const tok = SentencePieceTokenizer.load(model);
    expect(tok.addDummyPrefix).toBe(false);
    const t = new TeukenTemplate();
    const enc = encodeConversation(tok, t, conv);
    const trained = enc.ids.filter((_, i) => enc.mask[i]);
    // The answer as the whole rendered line encodes it: "Assistant: three ..." -> "▁three" first.
    const whole = tok.encode('Assistant: three plus four is seven');
    const prefix = tok.encode('Assistant:');
    expect(trained.slice(0, -1)).toEqual(whole.slice(prefix.length));
    expect(trained.at(-1)).toBe(tok.eosId);
    expect(tok.idToPiece(trained[0]).startsWith('▁')).toBe(true);
    // And the generation prompt is the training prefix, id for id.
    const prompt = encodeConversation(tok, t, { ...conv, messages: conv.messages.slice(0, 1) }, { generationPrompt: true });
    expect(enc.ids.slice(0, prompt.ids.length)).toEqual(prompt.ids);
    expect(enc.mask[prompt.ids.length]).toBe(1);
  });

  it('a template that needs BOS refuses a tokenizer without one, naming it', () => {
    const model = trainSpm(trainingCorpus(800), { model_type: 'unigram', vocab_size: 600, bos_id: -1, hard_vocab_limit: false });
    const tok = SentencePieceTokenizer.load(model);
    expect(tok.bosId).toBe(-1);
    expect(() => encodeConversation(tok, new Llama2Template(), conv)).toThrow(/template llama2: needs a BOS id, but the tokenizer has none/);
  });
});
