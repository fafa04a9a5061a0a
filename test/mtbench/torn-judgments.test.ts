import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJudgmentLines } from '../../src/mtbench/bench-files.js';

const dir = mkdtempSync(join(tmpdir(), 'polytune-torn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const record = (q: string, judgment: string) =>
  JSON.stringify({ question_id: q, model: 'm', judge: ['gpt-4', 'single-v1'], user_prompt: 'p', judgment, score: 7, turn: 1, tstamp: 0 });

describe('a judgment file cut short by a crash', () => {
  it('is cut back to the last complete line even when the cut split a multi-byte character', async () => {
    const good = record('81_DE', 'Gut gewählt. [[7]]') + '\n';
    const next = Buffer.from(record('82_DE', 'Grüße [[8]]'));
    // Cut after the first byte of "ü" (2 bytes in UTF-8): the tail decodes to U+FFFD, 3 bytes long.
    const at = next.indexOf(Buffer.from('ü')) + 1;
    const file = join(dir, 'a.jsonl');
    writeFileSync(file, Buffer.concat([Buffer.from(good), next.subarray(0, at)]));
    const r = await readJudgmentLines(file, true);
    expect(r.tornTail).toBeDefined();
    expect(r.completeBytes).toBe(Buffer.byteLength(good));
    expect(r.single.map((s) => s.question_id)).toEqual(['81_DE']);
  });

  it('flags a complete last record without its newline, so the next append starts a line', async () => {
    const file = join(dir, 'b.jsonl');
    writeFileSync(file, record('81_DE', '[[7]]'));
    const r = await readJudgmentLines(file, true);
    expect(r.tornTail).toBeUndefined();
    expect(r.missingNewline).toBe(true);
    writeFileSync(file, record('81_DE', '[[7]]') + '\n');
    expect((await readJudgmentLines(file, true)).missingNewline).toBeUndefined();
    expect(readFileSync(file, 'utf8').endsWith('\n')).toBe(true);
  });
});
