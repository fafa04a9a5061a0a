import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultNormalizerSpec, defaultTrainerSpec, PieceType, SentencePieceTokenizer, writeModelProto } from '../../src/tokenizer/index.js';
import { ensureBuilt } from '../helpers/build.js';
import { projectRoot } from './spm.js';

const dir = mkdtempSync(join(tmpdir(), 'polytune-tok-cli-'));
const model = join(dir, 'tiny.model');

function polytune(args: string[], input: string | Buffer) {
  return spawnSync(process.execPath, [join(projectRoot, 'bin/polytune.js'), ...args], { input, encoding: 'utf8', cwd: projectRoot });
}

describe('polytune tokenize', () => {
  beforeAll(() => {
    // Other areas may not compile yet; the CLI only needs dist/ for its own modules.
    const complaints = ensureBuilt();
    if (complaints) console.warn(`tsc reported errors while building dist/:\n${complaints}`);
    const chars = [...new Set('▁abcdefghijklmnopqrstuvwxyzäöüéèàç'.split(''))];
    const words = ['▁hello', '▁world', '▁grüße', '▁café', 'll', 'or', '▁w', '▁h'];
    writeFileSync(
      model,
      writeModelProto({
        pieces: [
          { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
          { piece: '<s>', score: 0, type: PieceType.CONTROL },
          { piece: '</s>', score: 0, type: PieceType.CONTROL },
          ...words.map((w, i) => ({ piece: w, score: -1 - i * 0.1, type: PieceType.NORMAL })),
          ...chars.map((c, i) => ({ piece: c, score: -5 - i * 0.01, type: PieceType.NORMAL })),
        ],
        trainerSpec: { ...defaultTrainerSpec(), modelType: 'unigram' },
        normalizerSpec: defaultNormalizerSpec(),
      }),
    );
  });

  const lines = ['hello world', 'Grüße aus café', '', '  odd   spacing  '];

  it('prints one JSON id array per stdin line, equal to the API', () => {
    const tok = SentencePieceTokenizer.load(model);
    const r = polytune(['tokenize', '--model', model], lines.join('\n') + '\n');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').slice(0, -1).map((l) => JSON.parse(l))).toEqual(lines.map((l) => tok.encode(l)));
  });

  it('ends lines at "\\n" only, as spm_encode does, and names the line of a bad id', () => {
    const tok = SentencePieceTokenizer.load(model);
    const r = polytune(['tokenize', '--model', model], 'a\rb\nc\r\nd');
    expect(r.stdout.split('\n').slice(0, -1).map((l) => JSON.parse(l))).toEqual(['a\rb', 'c\r', 'd'].map((l) => tok.encode(l)));
    const bad = polytune(['tokenize', '--model', model, '--decode'], '[5]\n[5, 99999]\n');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/stdin line 2: .*99999/);
  });

  it('prints pieces with --pieces and text with --decode', () => {
    const tok = SentencePieceTokenizer.load(model);
    const pieces = polytune(['tokenize', '--model', model, '--pieces'], lines.join('\n'));
    expect(pieces.stdout.split('\n').slice(0, -1).map((l) => JSON.parse(l))).toEqual(lines.map((l) => tok.encodeAsPieces(l)));
    const ids = lines.map((l) => JSON.stringify(tok.encode(l))).join('\n');
    const text = polytune(['tokenize', '--model', model, '--decode'], ids + '\n');
    expect(text.status).toBe(0);
    expect(text.stdout).toBe(lines.map((l) => tok.decode(tok.encode(l)) + '\n').join(''));
    expect(text.stdout.split('\n')[0]).toBe('hello world');
    // Unknown characters (no G or ß in this vocabulary) decode to the unknown surface.
    expect(text.stdout.split('\n')[1]).toBe(' \u2047 r\u00fc \u2047 e aus caf\u00e9');
  });

  it('fails clearly on a bad model or bad --decode input', () => {
    const bad = join(dir, 'bad.model');
    writeFileSync(bad, 'not a model');
    const r1 = polytune(['tokenize', '--model', bad], 'x\n');
    expect(r1.status).toBe(1);
    expect(r1.stderr).toContain(bad);
    const r2 = polytune(['tokenize', '--model', model, '--decode'], '[4, 5]\nnot json\n');
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/stdin line 2: expected a JSON array/);
  });

  it('refuses stdin that is not UTF-8 with the line and byte offset, and skips a leading byte-order mark', () => {
    const tok = SentencePieceTokenizer.load(model);
    const input = Buffer.concat([Buffer.from('hello\nwor'), Buffer.from([0xe9]), Buffer.from('ld\n')]);
    const r = polytune(['tokenize', '--model', model], input);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`stdin line 2: invalid UTF-8 at byte offset ${input.indexOf(0xe9)} (bytes e9 6c 64; it looks like Latin-1`);
    const bom = polytune(['tokenize', '--model', model], Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('hello world\ncafé\n')]));
    expect(bom.status).toBe(0);
    expect(bom.stdout).toBe(`${JSON.stringify(tok.encode('hello world'))}\n${JSON.stringify(tok.encode('café'))}\n`);
  });

  it('refuses a 200 MB stdin line by name instead of crashing V8; the limit is exact and configurable', () => {
    const f = join(dir, 'huge.txt');
    const fd = openSync(f, 'w');
    const size = 200_000_000;
    try {
      writeSync(fd, 'hello\n');
      const block = Buffer.alloc(1 << 20, 0x61);
      for (let left = size; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length));
      writeSync(fd, '\nworld\n');
    } finally {
      closeSync(fd);
    }
    const input = openSync(f, 'r');
    try {
      const r = spawnSync(process.execPath, [join(projectRoot, 'bin/polytune.js'), 'tokenize', '--model', model], { stdio: [input, 'pipe', 'pipe'], encoding: 'utf8' });
      expect(r.stderr).toContain('stdin line 2 is 200.0 MB; the limit is 16 MB (--max-line-mb)');
      expect(r.status).toBe(1);
    } finally {
      closeSync(input);
      rmSync(f);
    }
    const exact = polytune(['tokenize', '--model', model, '--max-line-mb', '0.00001'], 'helloworld\nhello world\n');
    expect(exact.stderr).toContain('stdin line 2 is 0.000 MB; the limit is 0.00001 MB');
    const ok = polytune(['tokenize', '--model', model, '--max-line-mb', '0.00001'], 'helloworld\nhelloworl\n');
    expect(ok.status).toBe(0);
    expect(polytune(['tokenize', '--model', model, '--max-line-mb', '0'], '').stderr).toContain("option '--max-line-mb <mb>' argument '0' is invalid");
  });
});
