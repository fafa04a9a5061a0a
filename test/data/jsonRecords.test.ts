import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readJsonRecords } from '../../src/data/index.js';
import { tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

async function collect(file: string) {
  const out: { value: unknown; line: number }[] = [];
  for await (const r of readJsonRecords(file)) out.push(r);
  return out;
}

describe('readJsonRecords', () => {
  // Records with brackets, quotes, escapes and non-ASCII inside strings, to trip a naive scanner.
  const records = Array.from({ length: 6000 }, (_, i) => ({
    id: `x-${i}`,
    text: `a [tricky] {value} "quoted" \\ back\\slash ${'ü€😀'.repeat(i % 7)} ${'pad '.repeat(i % 90)}`,
    nested: { list: [i, [i + 1], { k: '}' }] },
  }));

  it('streams a pretty-printed JSON array larger than one read chunk, record by record', async () => {
    const file = join(tmp.dir, 'big.json');
    const text = JSON.stringify(records, null, 2);
    expect(text.length).toBeGreaterThan(1 << 21);
    writeFileSync(file, text);
    const got = await collect(file);
    expect(got.map((r) => r.value)).toEqual(records);
    // Line numbers are where each record's "{" is, counted independently from the text.
    const lines = text.split('\n');
    const starts = lines.flatMap((l, i) => (l === '  {' ? [i + 1] : []));
    expect(got.map((r) => r.line)).toEqual(starts);
  });

  it('reads JSON lines and gzipped files (detected by content, not name)', async () => {
    const jsonl = records.slice(0, 50).map((r) => JSON.stringify(r)).join('\n') + '\n\n';
    const plain = join(tmp.dir, 'a.jsonl');
    writeFileSync(plain, jsonl);
    const gz = join(tmp.dir, 'a.data');
    writeFileSync(gz, gzipSync(Buffer.from(JSON.stringify(records.slice(0, 50)))));
    const a = await collect(plain);
    expect(a.map((r) => r.value)).toEqual(records.slice(0, 50));
    expect(a.map((r) => r.line)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await collect(gz)).map((r) => r.value)).toEqual(records.slice(0, 50));
  });

  it('names the file and line of malformed JSON', async () => {
    const f1 = join(tmp.dir, 'bad.jsonl');
    writeFileSync(f1, '{"a": 1}\n{"a": 2}\n{"a": 3,, }\n');
    await expect(collect(f1)).rejects.toThrow(`${f1}:3: malformed JSON`);
    const f2 = join(tmp.dir, 'bad.json');
    writeFileSync(f2, '[\n {"a": 1},\n {"a": 2}\n {"a": 3}\n]');
    await expect(collect(f2)).rejects.toThrow(`${f2}:4: malformed JSON: expected ',' or ']'`);
    const f3 = join(tmp.dir, 'bad2.json');
    writeFileSync(f3, '[\n {"a": 1},\n {"a":\n   tru}\n]');
    // V8 gives no position for this one, so the line is the record's first line.
    await expect(collect(f3)).rejects.toThrow(`${f3}:3: malformed JSON`);
    const f3b = join(tmp.dir, 'bad3.json');
    writeFileSync(f3b, '[\n {"a": 1},\n {"a": 2,\n   "b" 3}\n]');
    await expect(collect(f3b)).rejects.toThrow(`${f3b}:4: malformed JSON`);
    const f4 = join(tmp.dir, 'open.json');
    writeFileSync(f4, '[\n {"a": 1},\n {"a": 2\n');
    await expect(collect(f4)).rejects.toThrow(`${f4}:3: malformed JSON: the record starting here is never closed`);
    const f5 = join(tmp.dir, 'empty.json');
    writeFileSync(f5, '  \n');
    await expect(collect(f5)).rejects.toThrow(`${f5}:2: the file is empty`);
    const f6 = join(tmp.dir, 'scalar.jsonl');
    writeFileSync(f6, '{"a": 1}\n[1, 2]\n');
    await expect(collect(f6)).rejects.toThrow(`${f6}:2: expected a JSON object`);
  });
});
