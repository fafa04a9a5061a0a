// The built-in templates as Jinja chat templates for tokenizer_config.json, so a checkpoint carries
// the prompt format it was trained with. Rendered through JinjaTemplate and encodeConversation they
// give, id for id and mask for mask, what the built-in template gives (tested).
import { readFile } from 'node:fs/promises';
import type { ChatTemplate } from './chunks.js';
import { Llama2Template } from './llama2.js';
import { TeukenTemplate } from './teuken.js';

/** A Jinja string literal (JSON's escapes are Jinja's). */
const lit = (s: string) => JSON.stringify(s);
// Newlines are written as expressions: Hugging Face renders with trim_blocks, which would eat a
// literal newline after a block tag.
const NL = "{{ '\\n' }}";
const ALTERNATE = "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}";

function systemSplit(defaultSystem: string | undefined): string {
  const fallback = defaultSystem === undefined ? 'none' : lit(defaultSystem);
  return (
    "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% set loop_messages = messages[1:] %}" +
    `{% else %}{% set system_message = ${fallback} %}{% set loop_messages = messages %}{% endif %}`
  );
}

/** Teuken's layout for one system message (see TeukenTemplate). */
export function teukenJinja(systemMessage: string): string {
  return (
    systemSplit(systemMessage) +
    `{{ bos_token }}System: {{ system_message }}${NL}` +
    '{% for message in loop_messages %}' + ALTERNATE +
    `{% if message['role'] == 'user' %}{% if not loop.first %}${NL}{% endif %}User: {{ message['content'] }}${NL}` +
    "{% else %}Assistant: {{ message['content'] }}{{ eos_token }}{% endif %}" +
    '{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}'
  );
}

/** Meta's Llama-2 chat layout as Llama2Template renders it (no space before </s>, contents stripped). */
export function llama2Jinja(systemMessage?: string): string {
  return (
    systemSplit(systemMessage) +
    '{% for message in loop_messages %}' + ALTERNATE +
    "{% if message['role'] == 'user' %}" +
    "{% if loop.first and system_message is not none %}{% set content = '<<SYS>>\\n' + system_message | trim + '\\n<</SYS>>\\n\\n' + message['content'] | trim %}" +
    "{% else %}{% set content = message['content'] | trim %}{% endif %}" +
    "{{ bos_token }}[INST] {{ content }} [/INST]" +
    "{% else %} {{ message['content'] | trim }}{{ eos_token }}{% endif %}" +
    '{% endfor %}'
  );
}

/**
 * The chat_template field for a built-in template: Teuken's list of named templates, one per
 * language plus "default" (English), as Teuken-7B-instruct publishes it; Llama-2 likewise when it
 * has per-language system messages, else one template.
 */
export function chatTemplateField(t: ChatTemplate): string | { name: string; template: string }[] | undefined {
  if (t instanceof TeukenTemplate) {
    const langs = Object.entries(t.systemMessages);
    const def = t.systemMessages.EN ?? langs[0]?.[1];
    return [...langs.map(([name, sys]) => ({ name, template: teukenJinja(sys) })), ...(def !== undefined ? [{ name: 'default', template: teukenJinja(def) }] : [])];
  }
  if (t instanceof Llama2Template) {
    const langs = Object.entries(t.systemMessages);
    if (langs.length === 0) return llama2Jinja();
    return [...langs.map(([name, sys]) => ({ name, template: llama2Jinja(sys) })), { name: 'default', template: llama2Jinja() }];
  }
  return undefined;
}

/** The tokenizer's special-token strings, as tokenizer_config.json names them. */
export function specialTokenStrings(tok: { bosId: number; eosId: number; unkId?: number; padId?: number; idToPiece(id: number): string }): {
  bos?: string; eos?: string; unk?: string; pad?: string;
} {
  const at = (id: number | undefined) => (id !== undefined && id >= 0 ? tok.idToPiece(id) : undefined);
  return { bos: at(tok.bosId), eos: at(tok.eosId), unk: at(tok.unkId), pad: at(tok.padId) };
}

/**
 * What a training checkpoint records of its chat format: a built-in template as Jinja, or the
 * chat_template of the tokenizer_config.json a Jinja run was configured with, verbatim.
 */
export async function trainedChatTemplate(template: ChatTemplate, jinjaSource?: string): Promise<string | { name: string; template: string }[] | undefined> {
  if (jinjaSource !== undefined) {
    const raw = JSON.parse(await readFile(jinjaSource, 'utf8')) as { chat_template?: unknown };
    return raw.chat_template as string | { name: string; template: string }[];
  }
  return chatTemplateField(template);
}
