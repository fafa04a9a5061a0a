import type { Conversation } from '../types.js';
import { turnPairs, type ChatTemplate, type Chunk, type RenderOptions } from './chunks.js';

/**
 * Meta's Llama-2 chat layout: every exchange is `<s>[INST] {q} [/INST] {a}</s>`, the system
 * message wrapped in <<SYS>> inside the first question; contents are stripped as Meta does.
 * There is no default system message; a conversation's own, or one configured per language, is used.
 */
export class Llama2Template implements ChatTemplate {
  readonly name = 'llama2';

  constructor(readonly systemMessages: Readonly<Record<string, string>> = {}) {}

  get cacheKey(): string {
    return `llama2/1 ${JSON.stringify(Object.entries(this.systemMessages).sort())}`;
  }

  render(conv: Conversation, opts: RenderOptions = {}): Chunk[] {
    const { system, pairs } = turnPairs(conv, opts.generationPrompt ?? false);
    const sys = system ?? this.systemMessages[conv.lang];
    const out: Chunk[] = [];
    pairs.forEach((p, k) => {
      const user = k === 0 && sys !== undefined ? `<<SYS>>\n${sys.trim()}\n<</SYS>>\n\n${p.user.trim()}` : p.user.trim();
      out.push({ token: 'bos', train: false }, { text: `[INST] ${user} [/INST]`, train: false });
      if (p.assistant !== undefined) out.push({ text: ` ${p.assistant.trim()}`, train: true }, { token: 'eos', train: true });
    });
    return out;
  }
}
