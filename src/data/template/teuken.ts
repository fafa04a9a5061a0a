import type { Conversation } from '../types.js';
import { turnPairs, type ChatTemplate, type Chunk, type RenderOptions } from './chunks.js';

/**
 * The per-language system messages of Teuken-7B-instruct's published chat template (its
 * gptx_tokenizer.py), for the study's five languages, verbatim (including the published EN
 * message's missing space after "assistant."), so prompts match the model's own.
 */
export const TEUKEN_SYSTEM_MESSAGES: Readonly<Record<string, string>> = {
  EN: "A chat between a human and an artificial intelligence assistant.The assistant gives helpful and polite answers to the human's questions.",
  DE: 'Ein Gespräch zwischen einem Menschen und einem Assistenten mit künstlicher Intelligenz. Der Assistent gibt hilfreiche und höfliche Antworten auf die Fragen des Menschen.',
  FR: "Conversation entre un humain et un assistant doté d'une intelligence artificielle. L'assistant donne des réponses utiles et polies aux questions de l'homme.",
  IT: "Una chat tra un umano e un assistente di intelligenza artificiale. L'assistente fornisce risposte utili ed educate alle domande dell'uomo.",
  ES: 'Una conversación entre un humano y un asistente de inteligencia artificial. El asistente da respuestas útiles y amables a las preguntas del humano.',
};

/**
 * `<s>System: {system}\nUser: {q1}\nAssistant: {a1}</s>\nUser: {q2}\nAssistant: {a2}</s>`,
 * Teuken-7B-instruct's layout (a newline after each `</s>` that another turn follows). The space
 * after "Assistant:" opens the trained chunk, where the tokenizer's dummy prefix stands for it, so
 * the generation prompt ends with "Assistant:" (the published template's "Assistant: " would leave
 * a lone "▁" token the model never saw before an answer). A conversation's own system message wins
 * over the per-language one. `teukenJinja` renders the same ids from tokenizer_config.json.
 */
export class TeukenTemplate implements ChatTemplate {
  readonly name = 'teuken';
  readonly systemMessages: Readonly<Record<string, string>>;

  constructor(overrides: Record<string, string> = {}) {
    this.systemMessages = { ...TEUKEN_SYSTEM_MESSAGES, ...overrides };
  }

  get cacheKey(): string {
    return `teuken/2 ${JSON.stringify(Object.entries(this.systemMessages).sort())}`;
  }

  render(conv: Conversation, opts: RenderOptions = {}): Chunk[] {
    const { system, pairs } = turnPairs(conv, opts.generationPrompt ?? false);
    const sys = system ?? this.systemMessages[conv.lang];
    if (sys === undefined) {
      throw new Error(`teuken template: no system message for language "${conv.lang}" (known: ${Object.keys(this.systemMessages).join(', ')}); add one under template.teuken.systemMessages`);
    }
    const out: Chunk[] = [{ token: 'bos', train: false }];
    pairs.forEach((p, k) => {
      const head = k === 0 ? `System: ${sys}\n` : '\n';
      out.push({ text: `${head}User: ${p.user}\nAssistant:`, train: false });
      if (p.assistant !== undefined) out.push({ text: ` ${p.assistant}`, train: true }, { token: 'eos', train: true });
    });
    return out;
  }
}
