import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  encodeConversation, JinjaTemplate, Llama2Template, loadTokenizerConfig, TeukenTemplate, TEUKEN_SYSTEM_MESSAGES,
  type ChatTemplate, type Conversation, type Message, type TextTokenizer,
} from '../../src/data/index.js';
import { CharTokenizer, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);
const tok = new CharTokenizer({ 32000: '<|im_start|>', 32001: '<|im_end|>' });
const conv = (lang: string, ...messages: Message[]): Conversation => ({ id: 'c1', lang, messages });
const u = (content: string): Message => ({ role: 'user', content });
const a = (content: string): Message => ({ role: 'assistant', content });
const s = (content: string): Message => ({ role: 'system', content });
const sp = (t: string) => t.replaceAll(' ', '▁');

describe('teuken template', () => {
  const t = new TeukenTemplate();
  it('single turn: system message by language, answer and </s> trained', () => {
    const enc = encodeConversation(tok, t, conv('DE', u('Was ist 2 plus 3?'), a('2 plus 3 ist 5.')));
    expect(tok.runs(enc)).toEqual([
      ['<s>▁' + sp('System: Ein Gespräch zwischen einem Menschen und einem Assistenten mit künstlicher Intelligenz. Der Assistent gibt hilfreiche und höfliche Antworten auf die Fragen des Menschen.\nUser: Was ist 2 plus 3?\nAssistant:'), 0],
      ['▁' + sp('2 plus 3 ist 5.') + '</s>', 1],
    ]);
  });
  it('multi turn: every answer and its </s> trained, user turns not', () => {
    const enc = encodeConversation(tok, t, conv('EN', u('Hi'), a('Hello!'), u('Count to 3.'), a('1, 2, 3')));
    expect(tok.runs(enc)).toEqual([
      ["<s>▁System:▁A▁chat▁between▁a▁human▁and▁an▁artificial▁intelligence▁assistant.The▁assistant▁gives▁helpful▁and▁polite▁answers▁to▁the▁human's▁questions.\nUser:▁Hi\nAssistant:", 0],
      ['▁Hello!</s>', 1],
      // Teuken-7B-instruct's newline after </s>; the chunk after a special token gets a dummy "▁".
      ['▁\nUser:▁Count▁to▁3.\nAssistant:', 0],
      ['▁1,▁2,▁3</s>', 1],
    ]);
  });
  it("a conversation's own system message and configured overrides win", () => {
    const own = encodeConversation(tok, t, conv('EN', s('Be brief.'), u('Hi'), a('Yo')));
    expect(tok.runs(own)[0][0]).toBe('<s>▁System:▁Be▁brief.\nUser:▁Hi\nAssistant:');
    const over = encodeConversation(tok, new TeukenTemplate({ FR: 'Réponds.' }), conv('FR', u('Salut'), a('Bonjour')));
    expect(tok.runs(over)[0][0]).toBe('<s>▁System:▁Réponds.\nUser:▁Salut\nAssistant:');
    expect(() => encodeConversation(tok, t, conv('PL', u('x'), a('y')))).toThrow(/no system message for language "PL"/);
    expect(Object.keys(TEUKEN_SYSTEM_MESSAGES)).toEqual(['EN', 'DE', 'FR', 'IT', 'ES']);
  });
});

describe('llama2 template', () => {
  const t = new Llama2Template();
  it('single turn with system message, contents stripped', () => {
    const enc = encodeConversation(tok, t, conv('EN', s('Be brief.'), u(' What is 2+2? '), a('4 ')));
    expect(tok.runs(enc)).toEqual([
      ['<s>▁[INST]▁<<SYS>>\nBe▁brief.\n<</SYS>>\n\nWhat▁is▁2+2?▁[/INST]', 0],
      ['▁4</s>', 1],
    ]);
  });
  it('multi turn: each exchange opens with <s>', () => {
    const enc = encodeConversation(tok, t, conv('DE', u('Hallo'), a('Hi!'), u('Und?'), a('Gut.')));
    expect(tok.runs(enc)).toEqual([
      ['<s>▁[INST]▁Hallo▁[/INST]', 0],
      ['▁Hi!</s>', 1],
      ['<s>▁[INST]▁Und?▁[/INST]', 0],
      ['▁Gut.</s>', 1],
    ]);
  });
});

const CHATML = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

async function jinja(template: unknown, tk: TextTokenizer = tok): Promise<JinjaTemplate> {
  const path = join(tmp.dir, `tc-${Math.random()}.json`);
  writeFileSync(path, JSON.stringify({
    chat_template: template, bos_token: '<s>', eos_token: { content: '</s>' },
    added_tokens_decoder: { '32000': { content: '<|im_start|>', special: true }, '32001': { content: '<|im_end|>', special: true } },
  }));
  return new JinjaTemplate(await loadTokenizerConfig(path, tk));
}

describe('jinja template (tokenizer_config.json)', () => {
  it('masks the assistant text and the end-of-turn markers the template adds', async () => {
    const t = await jinja(CHATML);
    const enc = encodeConversation(tok, t, conv('EN', u('hi'), a('yo'), u('again'), a('sure')));
    // Special strings become their ids; each text piece between them gets its own dummy prefix.
    expect(tok.runs(enc)).toEqual([
      ['<|im_start|>▁user\nhi<|im_end|>▁\n<|im_start|>▁assistant\n', 0],
      ['▁yo<|im_end|>▁\n', 1],
      ['<|im_start|>▁user\nagain<|im_end|>▁\n<|im_start|>▁assistant\n', 0],
      ['▁sure<|im_end|>▁\n', 1],
    ]);
  });
  it('picks a named template by language, as Teuken ships them', async () => {
    const t = await jinja([
      { name: 'default', template: "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}" },
      { name: 'DE', template: "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ 'Nutzer: ' + m['content'] + '\\nAssistent:' }}{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}" },
    ]);
    expect(tok.runs(encodeConversation(tok, t, conv('DE', u('Hallo'), a('Tag'))))).toEqual([['<s>▁Nutzer:▁Hallo\nAssistent:', 0], ['▁Tag</s>', 1]]);
    // This template has no generation prompt, so the role header belongs to what the model writes.
    expect(tok.runs(encodeConversation(tok, t, conv('EN', u('Hi'), a('Yo'))))).toEqual([['▁user:▁Hi\n', 0], ['▁assistant:▁Yo\n', 1]]);
  });
  it('rejects a template whose renderings are not prefixes of each other', async () => {
    // Renders only the last message: the prefix rendering does not start the full one.
    const t = await jinja("{{ messages[-1]['content'] }}");
    expect(() => encodeConversation(tok, t, conv('EN', u('q'), a('r')))).toThrow(/does not render conversation c1 \(EN\) incrementally at message 1/);
  });
});

describe('generation prompts', () => {
  const turns = [s('Sys.'), u('First question?'), a('First answer.'), u('Second question?'), a('Second answer.')];
  const cases: [string, () => Promise<ChatTemplate>][] = [
    ['teuken', async () => new TeukenTemplate()],
    ['llama2', async () => new Llama2Template()],
    ['jinja', () => jinja(CHATML)],
  ];
  it.each(cases)('%s: the prompt is exactly the training ids before each answer', async (_, make) => {
    const t = await make();
    const train = encodeConversation(tok, t, conv('IT', ...turns));
    const starts = [...train.mask].flatMap((m, i) => (m === 1 && train.mask[i - 1] === 0 ? [i] : []));
    expect(starts).toHaveLength(2);
    const p1 = encodeConversation(tok, t, conv('IT', ...turns.slice(0, 2)), { generationPrompt: true });
    const p2 = encodeConversation(tok, t, conv('IT', ...turns.slice(0, 4)), { generationPrompt: true });
    expect(p1.ids).toEqual(train.ids.slice(0, starts[0]));
    expect(p2.ids).toEqual(train.ids.slice(0, starts[1]));
    expect([...p1.mask, ...p2.mask].every((m) => m === 0)).toBe(true);
    expect(() => encodeConversation(tok, t, conv('IT', ...turns), { generationPrompt: true })).toThrow(/must end with a user turn/);
  });
});
