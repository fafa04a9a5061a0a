// The built-in templates written as Jinja chat_template (what checkpoints carry) render, through
// @huggingface/jinja and the same encoder, the ids and loss masks of the built-in templates.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { afterAll, describe, expect, it } from 'vitest';
import { writeChatTemplateFiles } from '../../src/checkpoint/index.js';
import {
  chatTemplateField, encodeConversation, generateSample, JinjaTemplate, Llama2Template, loadTokenizerConfig, SAMPLE_LANGUAGES,
  specialTokenStrings, TeukenTemplate, TEUKEN_SYSTEM_MESSAGES, type ChatTemplate, type Conversation, type Message,
} from '../../src/data/index.js';
import { buildWordUnigramModel, SentencePieceTokenizer, writeModelProto } from '../../src/tokenizer/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'polytune-tpl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const sample = generateSample({ items: 30, seed: 3 });
const texts = SAMPLE_LANGUAGES.flatMap((l) => sample[l].flatMap((r) => [r.instruction, r.output]));
const tok = SentencePieceTokenizer.fromBuffer(writeModelProto(buildWordUnigramModel([...texts, 'System: User: Assistant: [INST] [/INST]'], { vocabSize: 600 })));

const u = (content: string): Message => ({ role: 'user', content });
const a = (content: string): Message => ({ role: 'assistant', content });
function conversations(): Conversation[] {
  const out: Conversation[] = [];
  SAMPLE_LANGUAGES.forEach((lang, i) => {
    const r = sample[lang];
    out.push({ id: `${i}a`, lang, messages: [u(r[i].instruction), a(r[i].output)] });
    out.push({ id: `${i}b`, lang, messages: [u(r[i + 1].instruction), a(r[i + 1].output), u(r[i + 2].instruction + '\n\n' + r[i + 2].input), a(` ${r[i + 2].output} `)] });
    out.push({ id: `${i}c`, lang, messages: [{ role: 'system', content: 'Antworte kurz.' }, u(r[i + 3].instruction), a(r[i + 3].output), u('Und?'), a('Ja.'), u('Ok'), a('Fertig.')] });
  });
  return out;
}

async function asJinja(t: ChatTemplate, name: string): Promise<JinjaTemplate> {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeChatTemplateFiles(dir, { chatTemplate: chatTemplateField(t)!, special: specialTokenStrings(tok) });
  return new JinjaTemplate(await loadTokenizerConfig(join(dir, 'tokenizer_config.json'), tok));
}

describe.each([
  ['teuken', new TeukenTemplate()],
  ['teuken with overrides', new TeukenTemplate({ DE: 'Sei "knapp" & klar.\nDanke.' })],
  ['llama2', new Llama2Template()],
  ['llama2 with system messages', new Llama2Template({ FR: 'Réponds en français.' })],
])('%s as a Jinja chat_template', (name, builtin) => {
  it('gives the same ids and masks for training conversations, and the same generation prompts', async () => {
    const jinja = await asJinja(builtin, name.replace(/\W+/g, '-'));
    for (const conv of conversations()) {
      const want = encodeConversation(tok, builtin, conv);
      const got = encodeConversation(tok, jinja, conv);
      expect(got.ids).toEqual(want.ids);
      expect([...got.mask]).toEqual([...want.mask]);
      for (let k = 1; k <= conv.messages.length; k++) {
        if (conv.messages[k - 1].role !== 'user') continue;
        const sub = { ...conv, messages: conv.messages.slice(0, k) };
        expect(encodeConversation(tok, jinja, sub, { generationPrompt: true }).ids).toEqual(encodeConversation(tok, builtin, sub, { generationPrompt: true }).ids);
      }
    }
  });
});

describe('the Teuken chat_template in tokenizer_config.json', () => {
  it("renders Teuken-7B-instruct's published prompt layout and system messages, language by language", () => {
    const dir = join(tmp, 'published');
    mkdirSync(dir, { recursive: true });
    writeChatTemplateFiles(dir, { chatTemplate: chatTemplateField(new TeukenTemplate())!, special: { bos: '<s>', eos: '</s>' } });
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(cfg.chat_template.map((t: { name: string }) => t.name)).toEqual(['EN', 'DE', 'FR', 'IT', 'ES', 'default']);
    const render = (lang: string, messages: Message[]) =>
      new Template(cfg.chat_template.find((t: { name: string }) => t.name === lang).template).render({ messages, bos_token: '<s>', eos_token: '</s>', add_generation_prompt: true });
    // Published (gptx_tokenizer.py): "System: {sys}\nUser: {q}\nAssistant: {a}</s>\nUser: ..." with our <s> in front
    // and "Assistant:" without the trailing space as the generation prompt.
    expect(render('FR', [u('Q1'), a('A1'), u('Q2')])).toBe(`<s>System: ${TEUKEN_SYSTEM_MESSAGES.FR}\nUser: Q1\nAssistant: A1</s>\nUser: Q2\nAssistant:`);
    expect(TEUKEN_SYSTEM_MESSAGES.FR).toBe("Conversation entre un humain et un assistant doté d'une intelligence artificielle. L'assistant donne des réponses utiles et polies aux questions de l'homme.");
    expect(render('default', [u('Q')])).toBe(`<s>System: ${TEUKEN_SYSTEM_MESSAGES.EN}\nUser: Q\nAssistant:`);
    expect(() => render('DE', [u('Q'), u('Q')])).toThrow(/alternate/);
  });
});
