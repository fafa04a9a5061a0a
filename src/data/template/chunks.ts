import type { Conversation } from '../types.js';

/**
 * A rendered conversation is a list of chunks: text, or one token given by id (or as the
 * tokenizer's BOS/EOS). `train` marks what the loss is computed on. Each text chunk is
 * tokenized by its own encode() call (see encodeConversation), so chunk boundaries are
 * token boundaries in training and in generation alike.
 */
export type Chunk = { text: string; train: boolean } | { token: number | 'bos' | 'eos'; train: boolean };

export interface RenderOptions {
  /**
   * Render a conversation that ends with a user turn, followed by the opening of the
   * assistant's turn: the prompt generation continues from. It is token for token the
   * prefix of the training rendering of the same conversation with an answer appended.
   */
  generationPrompt?: boolean;
}

export interface ChatTemplate {
  readonly name: string;
  /** Everything that changes the rendering, for the token cache key. */
  readonly cacheKey: string;
  render(conv: Conversation, opts?: RenderOptions): Chunk[];
}

/** Splits messages into the optional system text and user/assistant pairs; the last pair may lack an answer in generation mode. */
export function turnPairs(conv: Conversation, generationPrompt: boolean): { system?: string; pairs: { user: string; assistant?: string }[] } {
  const msgs = conv.messages;
  let i = 0;
  let system: string | undefined;
  if (msgs[0]?.role === 'system') {
    system = msgs[0].content;
    i = 1;
  }
  const pairs: { user: string; assistant?: string }[] = [];
  for (; i < msgs.length; i += 2) {
    const u = msgs[i], a = msgs[i + 1];
    if (u.role !== 'user') throw new Error(`conversation ${conv.id} (${conv.lang}): message ${i} must be a user turn, found ${u.role}`);
    if (a !== undefined && a.role !== 'assistant') throw new Error(`conversation ${conv.id} (${conv.lang}): message ${i + 1} must be an assistant turn, found ${a.role}`);
    pairs.push({ user: u.content, assistant: a?.content });
  }
  const last = pairs[pairs.length - 1];
  if (!last) throw new Error(`conversation ${conv.id} (${conv.lang}): has no user turn`);
  if (generationPrompt && last.assistant !== undefined) {
    throw new Error(`conversation ${conv.id} (${conv.lang}): a generation prompt must end with a user turn`);
  }
  if (!generationPrompt && last.assistant === undefined) {
    throw new Error(`conversation ${conv.id} (${conv.lang}): a training conversation must end with an assistant turn`);
  }
  return { system, pairs };
}
