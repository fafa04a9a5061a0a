import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newReadStats, readAllConversations } from '../../src/data/index.js';
import { tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);
const write = (name: string, text: string) => {
  const p = join(tmp.dir, name);
  writeFileSync(p, text);
  return p;
};

describe('readers', () => {
  it('Bactrian-X: instruction + input become the user turn, output the answer', async () => {
    const f = write('de.json', JSON.stringify([
      { instruction: 'Übersetze ins Englische.', input: 'Guten Morgen', output: 'Good morning', id: 'alpaca-1' },
      { instruction: 'Nenne eine Farbe.', input: '', output: 'Blau', id: 'dolly-7' },
    ], null, 2));
    expect(await readAllConversations(f, 'bactrian', { lang: 'DE' })).toEqual([
      { id: 'alpaca-1', lang: 'DE', messages: [{ role: 'user', content: 'Übersetze ins Englische.\n\nGuten Morgen' }, { role: 'assistant', content: 'Good morning' }] },
      { id: 'dolly-7', lang: 'DE', messages: [{ role: 'user', content: 'Nenne eine Farbe.' }, { role: 'assistant', content: 'Blau' }] },
    ]);
  });
  it('LIMA: multi-turn rows stay multi-turn; row number is the id when there is none', async () => {
    const f = write('lima.jsonl', [
      { conversations: ['q1', 'a1'], source: 'stackexchange' },
      { conversations: ['q1', 'a1', 'q2', 'a2'], source: 'multi_turn' },
    ].map((r) => JSON.stringify(r)).join('\n'));
    const got = await readAllConversations(f, 'lima', { lang: 'FR' });
    expect(got.map((c) => c.id)).toEqual(['0', '1']);
    expect(got[1].messages.map((m) => `${m.role}:${m.content}`)).toEqual(['user:q1', 'assistant:a1', 'user:q2', 'assistant:a2']);
  });
  it('a file shared by languages: records filtered by their own language field, others counted', async () => {
    const f = write('multi.jsonl', [
      { conversations: ['hi', 'hello'], lang: 'EN' },
      { conversations: ['hallo', 'servus'], lang: 'DE' },
      { conversations: ['bye', 'ciao'], lang: 'EN' },
    ].map((r) => JSON.stringify(r)).join('\n'));
    const stats = newReadStats();
    const en = await readAllConversations(f, 'lima', { lang: 'EN', sharedFile: true, stats });
    expect(en.map((c) => [c.id, c.messages[0].content])).toEqual([['0', 'hi'], ['1', 'bye']]);
    expect(stats).toMatchObject({ read: 2, otherLanguage: 1, skipped: 0 });
    const g = write('nolang.jsonl', JSON.stringify({ conversations: ['a', 'b'] }));
    await expect(readAllConversations(g, 'lima', { lang: 'EN', sharedFile: true })).rejects.toThrow(`${g}:1: field "lang" is missing`);
  });
  it('generic chat format, with roles checked', async () => {
    const f = write('chat.jsonl', JSON.stringify({ id: 'x', messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }] }) + '\n' +
      JSON.stringify({ messages: [{ role: 'user', content: 'u' }, { role: 'user', content: 'v' }] }) + '\n');
    await expect(readAllConversations(f, 'chat', { lang: 'EN' })).rejects.toThrow(`${f}:2: field "messages"[1]: expected role "assistant", found "user"`);
    const stats = newReadStats();
    const got = await readAllConversations(f, 'chat', { lang: 'EN', onInvalid: 'skip', stats });
    expect(got.map((c) => c.id)).toEqual(['x']);
    expect(stats.skipped).toBe(1);
  });
  it('a missing or empty field is an error naming file, line and field, or skipped and counted', async () => {
    const f = write('bad.json', '[\n{"id": "1", "instruction": "a", "input": "", "output": "b"},\n{"id": "2", "instruction": "a", "input": "", "output": "  "},\n{"id": "3", "input": "", "output": "b"}\n]');
    await expect(readAllConversations(f, 'bactrian', { lang: 'EN' })).rejects.toThrow(`${f}:3: field "output" is empty`);
    const stats = newReadStats();
    const got = await readAllConversations(f, 'bactrian', { lang: 'EN', onInvalid: 'skip', stats });
    expect(got.map((c) => c.id)).toEqual(['1']);
    expect(stats).toMatchObject({ read: 1, skipped: 2, skippedExamples: [`${f}:3: field "output" is empty`, `${f}:4: field "instruction" is missing`] });
    const g = write('noid.json', '[{"instruction": "a", "output": "b"}]');
    await expect(readAllConversations(g, 'bactrian', { lang: 'EN' })).rejects.toThrow(`${g}:1: field "id" is missing`);
  });
});
