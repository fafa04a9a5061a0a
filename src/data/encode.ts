import type { ChatTemplate, RenderOptions } from './template/chunks.js';
import type { Conversation, TextTokenizer } from './types.js';

export interface EncodedConversation {
  ids: number[];
  /** 1 where the token is trained (a target of the loss), 0 elsewhere. */
  mask: Uint8Array;
}

/**
 * The one function that turns a conversation into token ids, for training and (with
 * `generationPrompt`) for generation.
 *
 * The boundary rule: every text chunk of the rendering is encoded by its own encode() call
 * and the ids are concatenated; a chunk never shares a token with its neighbour. Because
 * SentencePiece puts its dummy "▁" before each call's text, a chunk that starts with one
 * space has that space removed first, so " answer" becomes "▁answer" exactly as inside a
 * whole-string encode. Hence the generation prompt is, id for id, the prefix of the
 * training sequence up to the first trained token of the answer the model is to write.
 */
export function encodeConversation(tokenizer: TextTokenizer, template: ChatTemplate, conv: Conversation, opts: RenderOptions = {}): EncodedConversation {
  const ids: number[] = [];
  const flags: number[] = [];
  const dummy = tokenizer.addDummyPrefix !== false;
  for (const chunk of template.render(conv, opts)) {
    const bit = chunk.train && !opts.generationPrompt ? 1 : 0;
    if ('token' in chunk) {
      ids.push(chunk.token === 'bos' ? tokenizer.bosId : chunk.token === 'eos' ? tokenizer.eosId : chunk.token);
      flags.push(bit);
      continue;
    }
    const text = dummy && chunk.text.startsWith(' ') ? chunk.text.slice(1) : chunk.text;
    if (text === '') continue;
    for (const id of tokenizer.encode(text)) {
      ids.push(id);
      flags.push(bit);
    }
  }
  return { ids, mask: Uint8Array.from(flags) };
}
