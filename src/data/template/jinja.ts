import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Template } from '@huggingface/jinja';
import type { Conversation, Message, TextTokenizer } from '../types.js';
import type { ChatTemplate, Chunk, RenderOptions } from './chunks.js';

type Special = { content: string } | string | null | undefined;
const specialText = (s: Special): string | undefined => (typeof s === 'string' ? s : (s?.content ?? undefined));

/** A chat_template from a Hugging Face tokenizer_config.json, with its special tokens. */
export interface JinjaTemplateSource {
  /** One template, or named templates (Teuken ships one per language code) chosen by conversation language, else "default". */
  template: string | Record<string, string>;
  /** Special-token strings that may appear in the rendered text, with their ids. */
  specialTokens: Map<string, number>;
  bosToken?: string;
  eosToken?: string;
  /** Where the template came from, for error messages. */
  origin: string;
}

/**
 * Reads chat_template, bos/eos and added special tokens from tokenizer_config.json. Special
 * strings get the id from added_tokens_decoder, else from the tokenizer's own vocabulary.
 */
export async function loadTokenizerConfig(path: string, tokenizer: TextTokenizer): Promise<JinjaTemplateSource> {
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read tokenizer config: ${(e as Error).message}`);
  }
  let template: string | Record<string, string>;
  const ct = cfg.chat_template;
  if (typeof ct === 'string') template = ct;
  else if (Array.isArray(ct) && ct.every((t) => typeof t?.name === 'string' && typeof t?.template === 'string')) {
    template = Object.fromEntries(ct.map((t: { name: string; template: string }) => [t.name, t.template]));
  } else throw new Error(`${path}: field "chat_template" must be a string or a list of {name, template}`);

  const specialTokens = new Map<string, number>();
  const decoder = (cfg.added_tokens_decoder ?? {}) as Record<string, { content?: string; special?: boolean }>;
  for (const [id, t] of Object.entries(decoder)) if (t.special && typeof t.content === 'string') specialTokens.set(t.content, Number(id));
  const bosToken = specialText(cfg.bos_token as Special);
  const eosToken = specialText(cfg.eos_token as Special);
  for (const [field, text, fallback] of [
    ['bos_token', bosToken, tokenizer.bosId],
    ['eos_token', eosToken, tokenizer.eosId],
    ['unk_token', specialText(cfg.unk_token as Special), undefined],
    ['pad_token', specialText(cfg.pad_token as Special), undefined],
  ] as const) {
    if (text === undefined || specialTokens.has(text)) continue;
    const id = tokenizer.pieceToId?.(text);
    if (id !== undefined && id >= 0 && (id !== tokenizer.unkId || field === 'unk_token')) specialTokens.set(text, id);
    else if (fallback !== undefined) specialTokens.set(text, fallback);
    else throw new Error(`${path}: field "${field}" is "${text}", which the tokenizer does not know`);
  }
  return { template, specialTokens, bosToken, eosToken, origin: path };
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Any Jinja chat template. Trained spans are found by rendering: the text an assistant turn
 * adds is render(messages[0..k]) minus render(messages[0..k-1], add_generation_prompt), which
 * holds the answer and the template's end-of-turn marker. A template whose renderings are
 * not prefixes of each other cannot be masked this way and is rejected.
 */
export class JinjaTemplate implements ChatTemplate {
  readonly name = 'jinja';
  readonly cacheKey: string;
  private readonly compiled = new Map<string, Template>();
  private readonly specialRe: RegExp | undefined;

  constructor(private readonly src: JinjaTemplateSource) {
    const h = createHash('sha256').update(JSON.stringify([src.template, [...src.specialTokens].sort(), src.bosToken, src.eosToken]));
    this.cacheKey = `jinja/1 ${h.digest('hex')}`;
    const specials = [...src.specialTokens.keys()].filter((s) => s !== '').sort((a, b) => b.length - a.length);
    this.specialRe = specials.length ? new RegExp(specials.map(escapeRe).join('|'), 'g') : undefined;
  }

  private templateFor(lang: string): Template {
    const t = this.src.template;
    const name = typeof t === 'string' ? '' : lang in t ? lang : 'default';
    let compiled = this.compiled.get(name);
    if (!compiled) {
      const text = typeof t === 'string' ? t : t[name];
      if (text === undefined) throw new Error(`${this.src.origin}: no chat template named "${lang}" or "default" (have ${Object.keys(t).join(', ')})`);
      compiled = new Template(text);
      this.compiled.set(name, compiled);
    }
    return compiled;
  }

  private renderText(tpl: Template, messages: Message[], addGenerationPrompt: boolean, conv: Conversation): string {
    try {
      return tpl.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: this.src.bosToken ?? '',
        eos_token: this.src.eosToken ?? '',
      });
    } catch (e) {
      throw new Error(`${this.src.origin}: chat template failed on conversation ${conv.id} (${conv.lang}): ${(e as Error).message}`);
    }
  }

  render(conv: Conversation, opts: RenderOptions = {}): Chunk[] {
    const gen = opts.generationPrompt ?? false;
    const msgs = conv.messages;
    const last = msgs[msgs.length - 1];
    if (gen !== (last?.role === 'user')) {
      throw new Error(`conversation ${conv.id} (${conv.lang}): a ${gen ? 'generation prompt must end with a user' : 'training conversation must end with an assistant'} turn`);
    }
    const tpl = this.templateFor(conv.lang);
    const full = this.renderText(tpl, msgs, gen, conv);
    const spans: [number, number][] = [];
    msgs.forEach((m, k) => {
      if (m.role !== 'assistant') return;
      const before = this.renderText(tpl, msgs.slice(0, k), true, conv);
      const upto = this.renderText(tpl, msgs.slice(0, k + 1), false, conv);
      if (!upto.startsWith(before) || !full.startsWith(upto)) {
        throw new Error(`${this.src.origin}: the chat template does not render conversation ${conv.id} (${conv.lang}) incrementally at message ${k}, so its loss mask cannot be found`);
      }
      spans.push([before.length, upto.length]);
    });
    const out: Chunk[] = [];
    let pos = 0;
    for (const [a, b] of spans) {
      this.pushText(out, full.slice(pos, a), false);
      this.pushText(out, full.slice(a, b), true);
      pos = b;
    }
    this.pushText(out, full.slice(pos), false);
    return out;
  }

  /** Special-token strings become their ids; HF tokenizers do the same before SentencePiece sees the text. */
  private pushText(out: Chunk[], text: string, train: boolean): void {
    if (!this.specialRe) {
      if (text) out.push({ text, train });
      return;
    }
    let pos = 0;
    for (const m of text.matchAll(this.specialRe)) {
      if (m.index > pos) out.push({ text: text.slice(pos, m.index), train });
      out.push({ token: this.src.specialTokens.get(m[0])!, train });
      pos = m.index + m[0].length;
    }
    if (pos < text.length) out.push({ text: text.slice(pos), train });
  }
}
