import type { ChatTemplate, RenderOptions } from './template/chunks.js';
import type { Conversation, TextTokenizer } from './types.js';

export interface EncodedConversation {
  ids: number[];
  /** 1 where the token is trained (a target of the loss), 0 elsewhere. */
  mask: Uint8Array;
}

/** A one-letter word put before a chunk to keep its leading space (see encodeConversation). */
const SEAM_WORD = 'a';

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
      const id = chunk.token === 'bos' ? tokenizer.bosId : chunk.token === 'eos' ? tokenizer.eosId : chunk.token;
      if (!(id >= 0)) throw new Error(`template ${template.name}: needs a ${typeof chunk.token === 'string' ? chunk.token.toUpperCase() : `token ${chunk.token}`} id, but the tokenizer has none`);
      ids.push(id);
      flags.push(bit);
      continue;
    }
    let text = chunk.text;
    let skip = 0;
    if (text.startsWith(' ')) {
      if (dummy) {
        text = text.slice(1);
      } else {
        // Without a dummy prefix the tokenizer drops a leading space as extra whitespace. Behind a
        // word the space survives as "▁"; pieces never cross that boundary (whitespace splits
        // words before segmentation), so dropping the word's ids leaves the seam's exact ids.
        skip = tokenizer.encode(SEAM_WORD).length;
        text = SEAM_WORD + text;
      }
    }
    if (text === '') continue;
    for (const id of tokenizer.encode(text).slice(skip)) {
      ids.push(id);
      flags.push(bit);
    }
  }
  return { ids, mask: Uint8Array.from(flags) };
}
