import { closeSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readAllConversations, readJsonRecords } from '../../src/data/index.js';
import { tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

async function collect(file: string, maxRecordMB?: number) {
  const out: { value: unknown; line: number }[] = [];
  for await (const r of readJsonRecords(file, { maxRecordMB })) out.push(r);
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

/** Writes `head`, then `size` bytes of `fill`, then `tail`, in 1 MiB writes: a huge file is never one JS string. */
function writeHuge(file: string, head: string, size: number, tail: string, fill = 0x61): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, head);
    const block = Buffer.alloc(1 << 20, fill);
    for (let left = size; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length));
    writeSync(fd, tail);
  } finally {
    closeSync(fd);
  }
}

describe('text that is not UTF-8', () => {
  it('a Latin-1 JSON-lines file: file, line and byte offset of the first bad byte, and a hint', async () => {
    const f = join(tmp.dir, 'latin1.jsonl');
    const bytes = Buffer.from('{"t": "plain"}\n{"t": "also plain"}\n{"t": "caf\xe9 cr\xe8me"}\n', 'latin1');
    writeFileSync(f, bytes);
    await expect(collect(f)).rejects.toThrow(`${f}:3: invalid UTF-8 at byte offset ${bytes.indexOf(0xe9)} (bytes e9 20 63 72; it looks like Latin-1`);
  });

  it('a stray byte inside a multi-line record of a JSON array names its own line', async () => {
    const f = join(tmp.dir, 'stray.json');
    const text = Buffer.from('[\n  {"a": "ok"},\n  {\n    "a": "ü",\n    "b": "X"\n  }\n]\n');
    const at = text.indexOf('X');
    text[at] = 0xff;
    writeFileSync(f, text);
    await expect(collect(f)).rejects.toThrow(`${f}:5: invalid UTF-8 at byte offset ${at} (bytes ff`);
  });

  it.each([
    ['an overlong "/"', [0xc0, 0xaf]],
    ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a lone continuation byte', [0x80]],
    ['a sequence cut short', [0xe2, 0x82, 0x41]],
  ])('%s is refused (gzip: the offset is in the decompressed data)', async (_, bad) => {
    const head = Buffer.from('{"id": 1, "t": "€ fine"}\n{"id": 2, "t": "');
    const text = Buffer.concat([head, Buffer.from(bad), Buffer.from('"}\n')]);
    const f = join(tmp.dir, 'bad.jsonl.gz');
    writeFileSync(f, gzipSync(text));
    await expect(collect(f)).rejects.toThrow(`${f}:2: invalid UTF-8 at byte offset ${head.length} (bytes ${bad.map((b) => b.toString(16)).join(' ')}`);
  });

  it('a file that ends inside a character', async () => {
    const f = join(tmp.dir, 'cut.jsonl');
    writeFileSync(f, Buffer.concat([Buffer.from('{"t": "x"}\n{"t": "'), Buffer.from([0xe2, 0x82])]));
    await expect(collect(f)).rejects.toThrow(`${f}:2: invalid UTF-8 at byte offset 18 (bytes e2 82; the text must be UTF-8)`);
  });

  it('a UTF-16 file is named as such', async () => {
    const f = join(tmp.dir, 'utf16.jsonl');
    writeFileSync(f, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"t": "x"}\n', 'utf16le')]));
    await expect(collect(f)).rejects.toThrow(/:1: invalid UTF-8 at byte offset 0 .*UTF-16/);
  });

  it('accepts characters split across read chunks, a literal U+FFFD, and a byte-order mark on JSON lines, plain or gzipped', async () => {
    // 4-byte characters at every alignment against the 1 MiB read size.
    const recs = Array.from({ length: 4000 }, (_, i) => ({ id: i, t: '😀é'.repeat(40 + (i % 3)) + 'x'.repeat(i % 4) + '\ufffd' }));
    const jsonl = recs.map((r) => JSON.stringify(r)).join('\n');
    expect(Buffer.byteLength(jsonl)).toBeGreaterThan(1 << 20);
    const f = join(tmp.dir, 'bom.jsonl');
    writeFileSync(f, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(jsonl)]));
    const got = await collect(f);
    expect(got.map((r) => r.value)).toEqual(recs);
    expect(got[1].line).toBe(2);
    const g = join(tmp.dir, 'bom.jsonl.gz');
    writeFileSync(g, gzipSync(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(jsonl)])));
    expect((await collect(g)).map((r) => r.value)).toEqual(recs);
    // A U+FEFF inside a value is text, kept as it is.
    const h = join(tmp.dir, 'feff.jsonl');
    writeFileSync(h, '{"t": "a\ufeffb"}\n');
    expect((await collect(h))[0].value).toEqual({ t: 'a\ufeffb' });
  });

  it('readConversations refuses it too, rather than training on U+FFFD', async () => {
    const f = join(tmp.dir, 'latin1.json');
    const bytes = Buffer.from('[{"id": "1", "instruction": "Gr\xfc\xdfe", "input": "", "output": "Hallo"}]', 'latin1');
    writeFileSync(f, bytes);
    await expect(readAllConversations(f, 'bactrian', { lang: 'DE' })).rejects.toThrow(`${f}:1: invalid UTF-8 at byte offset ${bytes.indexOf(0xfc)} (bytes fc df 65 22; it looks like Latin-1`);
  });
});

describe('huge records', () => {
  it('a 300 MB field in a JSON-lines file is refused by name, without holding it', async () => {
    const f = join(tmp.dir, 'huge.jsonl');
    const size = 300_000_000;
    writeHuge(f, '{"id": 1, "t": "small"}\n{"id": 2, "t": "', size, '"}\n{"id": 3, "t": "after"}\n');
    const before = process.memoryUsage();
    try {
      const seen: unknown[] = [];
      await expect((async () => { for await (const r of readJsonRecords(f)) seen.push(r.value); })()).rejects.toThrow(
        `${f}:2: the record starting here is ${((size + 20) / 1e6).toFixed(1)} MB; the limit is 16 MB`,
      );
      expect(seen).toEqual([{ id: 1, t: 'small' }]);
      // Read in 1 MiB chunks and dropped: the heap never held the record (a string of it alone is 300 MB).
      expect(process.memoryUsage().heapUsed - before.heapUsed).toBeLessThan(100e6);
    } finally {
      rmSync(f);
    }
  });

  it('the limit is exact and configurable, in JSON arrays, JSON lines and gzip, and named in readConversations errors', async () => {
    const rec = (n: number) => `{"id": "x", "instruction": "${'a'.repeat(n - 45)}", "output": "b"}`;
    expect(rec(1000).length).toBe(1000);
    const arr = join(tmp.dir, 'limit.json');
    writeFileSync(arr, `[\n${rec(1000)},\n${rec(1001)}\n]`);
    const values: unknown[] = [];
    await expect((async () => { for await (const r of readJsonRecords(arr, { maxRecordMB: 0.001 })) values.push(r.value); })()).rejects.toThrow(
      `${arr}:3: the record starting here is 0.001 MB; the limit is 0.001 MB`,
    );
    expect(values).toHaveLength(1);
    const gz = join(tmp.dir, 'limit.jsonl.gz');
    writeFileSync(gz, gzipSync(`${rec(1000)}\n${rec(1000)}\n${rec(2500)}\n`));
    await expect(readAllConversations(gz, 'bactrian', { lang: 'EN', maxRecordMB: 0.001 })).rejects.toThrow(
      `${gz}:3: the record starting here is 0.003 MB; the limit is 0.001 MB (data.maxRecordMB)`,
    );
    expect(await readAllConversations(gz, 'bactrian', { lang: 'EN', maxRecordMB: 0.0025, onInvalid: 'skip' })).toHaveLength(3);
    // A JSON-array record that never closes is measured to the end of the file.
    const open = join(tmp.dir, 'open-huge.json');
    writeHuge(open, '[{"id": 1}, {"t": "', 3_000_000, '');
    await expect(collect(open, 1)).rejects.toThrow(`${open}:1: the record starting here is 3.0 MB and never closed; the limit is 1 MB`);
  });
});
