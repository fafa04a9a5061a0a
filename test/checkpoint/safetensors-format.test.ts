import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostTensor, tensorSource } from '../../src/checkpoint/byte-tensor.js';
import { readHeader, readTensors, writeSafetensors, type TensorSource } from '../../src/checkpoint/safetensors/file.js';
import { hostDtypeOf } from '../../src/checkpoint/byte-tensor.js';
import type { StDtype } from '../../src/checkpoint/safetensors/dtypes.js';
import { rng } from '../helpers/random.js';
import { assemble, f32Bytes, hostTensor, tempDir } from './fixtures.js';

const tmp = tempDir('format');
afterAll(tmp.cleanup);
const file = (name: string) => join(tmp.dir, name);

/** Loads every tensor of a file, as its own dtype or as `as`. */
function load(path: string, as?: 'bf16' | 'f32', chunkBytes?: number): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  readTensors(
    readHeader(path),
    (t) => {
      const dtype = as ?? hostDtypeOf(t.dtype) ?? 'f32';
      const dest = new HostTensor(dtype, t.shape);
      out.set(t.name, dest);
      return { dtype: dtype === 'bf16' ? 'BF16' : dtype === 'f32' ? 'F32' : 'I32', write: (o, b) => dest.writeBytes(o, b) };
    },
    { chunkBytes },
  );
  return out;
}

const u16 = (t: HostTensor) => [...new Uint16Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 2)];
const f32 = (t: HostTensor) => [...new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4)];

describe('safetensors writer against a file assembled by hand from the spec', () => {
  it('writes byte-for-byte the layout of the reference implementation', () => {
    const bf = new HostTensor('bf16', [3], new Uint8Array([0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f])); // 1, -2, 0.5
    const fl = new HostTensor('f32', [2], new Uint8Array(f32Bytes(1.5, -0.25)));
    const it32 = new HostTensor('i32', [1, 1], new Uint8Array([7, 0, 0, 0]));
    writeSafetensors(file('w.safetensors'), [tensorSource('a', bf), tensorSource('b', fl), tensorSource('c', it32)], { metadata: { format: 'pt' } });
    // Larger elements first, then by name; metadata first; keys dtype, shape, data_offsets; space padding.
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"c":{"dtype":"I32","shape":[1,1],"data_offsets":[8,12]},' +
      '"a":{"dtype":"BF16","shape":[3],"data_offsets":[12,18]}}';
    const expected = assemble(header, [...f32Bytes(1.5, -0.25), 7, 0, 0, 0, 0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f]);
    expect((header.length + 8) % 8).not.toBe(0); // the padding is really exercised
    expect(new Uint8Array(readFileSync(file('w.safetensors')))).toEqual(expected);
  });

  it('rounds F32 to BF16 on request, to nearest even', () => {
    // 1 + 2^-8 ties between 1 and 1 + 2^-7 (goes to even 0x3f80); 1 + 3*2^-8 ties and goes up to 0x3f82.
    const src = new HostTensor('f32', [3], new Uint8Array(f32Bytes(1 + 2 ** -8, 1 + 3 * 2 ** -8, -3.0)));
    writeSafetensors(file('r.safetensors'), [tensorSource('x', src)], { storeAs: () => 'BF16' });
    const header = '{"x":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}}';
    expect(new Uint8Array(readFileSync(file('r.safetensors')))).toEqual(assemble(header, [0x80, 0x3f, 0x82, 0x3f, 0x40, 0xc0]));
  });

  it('parses a hand-assembled file with any key order, F16 data and metadata, converting on load', () => {
    // F16: 1, -2, 65504 (largest), 2^-24 (smallest subnormal).
    const f16 = [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00];
    const header =
      '{"h":{"data_offsets":[8,16],"shape":[2,2],"dtype":"F16"},' +
      '"__metadata__":{"format":"pt","note":"x"},' +
      '"f":{"shape":[2],"dtype":"F32","data_offsets":[0,8]}}';
    writeFileSync(file('p.safetensors'), assemble(header, [...f32Bytes(3.5, -1e-3), ...f16]));
    const st = readHeader(file('p.safetensors'));
    expect(st.header.metadata).toEqual({ format: 'pt', note: 'x' });
    expect(st.header.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ['f', 'F32', [2]],
      ['h', 'F16', [2, 2]],
    ]);
    const asF32 = load(file('p.safetensors'), 'f32');
    expect(f32(asF32.get('h')!)).toEqual([1, -2, 65504, 2 ** -24]);
    expect(f32(asF32.get('f')!)).toEqual([3.5, Math.fround(-1e-3)]);
    const asBf16 = load(file('p.safetensors'), 'bf16');
    // 65504 = 0x477fe000 rounds up to 0x4780; 2^-24 = 0x33800000 is exact.
    expect(u16(asBf16.get('h')!)).toEqual([0x3f80, 0xc000, 0x4780, 0x3380]);
  });
});

describe('safetensors round trips', () => {
  const r = rng(11);
  const cases: [string, HostTensor][] = [
    ['bf16', hostTensor('bf16', [37, 5], r)],
    ['f32', hostTensor('f32', [3, 7, 11], r)],
    ['i32', new HostTensor('i32', [13], new Uint8Array(Int32Array.from({ length: 13 }, (_, i) => (i - 6) * 1_000_003).buffer))],
    ['scalar', hostTensor('f32', [], r)],
    ['empty', new HostTensor('bf16', [0, 4])],
  ];
  for (const chunk of [undefined, 8, 24]) {
    it(`returns identical bytes for every dtype (chunk ${chunk ?? 'default'})`, () => {
      const path = file(`rt-${chunk}.safetensors`);
      writeSafetensors(path, cases.map(([n, t]) => tensorSource(n, t)), { chunkBytes: chunk });
      const back = load(path, undefined, chunk);
      for (const [n, t] of cases) {
        expect(back.get(n)!.dtype, n).toBe(t.dtype);
        expect(back.get(n)!.shape, n).toEqual(t.shape);
        expect(back.get(n)!.bytes, n).toEqual(t.bytes);
      }
    });
  }

  it('mixes tiny and large tensors around the direct-write threshold, with and without zero-copy views', () => {
    const sizes = [3, 70_000, 1, 32_768, 32_769, 600_000, 2, 16, 40_000, 0, 5];
    const made = sizes.map((n, i) => [`t${i}`, hostTensor(i % 2 ? 'bf16' : 'f32', [n], r)] as const);
    // Sources without views take the copying path.
    const plain = (name: string, t: HostTensor): TensorSource => ({ ...tensorSource(name, t), read: (o, l) => t.bytes.slice(o, o + l) });
    for (const [chunk, views] of [[undefined, true], [undefined, false], [1 << 16, true], [777, false], [8, true]] as const) {
      const path = file(`mixed-${chunk}-${views}.safetensors`);
      const res = writeSafetensors(path, made.map(([n, t]) => (views ? tensorSource(n, t) : plain(n, t))), { chunkBytes: chunk });
      const st = readHeader(path);
      expect(res.bytes).toBe(st.fileSize);
      const back = new Map<string, HostTensor>();
      readTensors(
        st,
        (t) => {
          const dest = new HostTensor(hostDtypeOf(t.dtype)!, t.shape);
          back.set(t.name, dest);
          return { dtype: t.dtype, write: (o, b) => dest.writeBytes(o, b) };
        },
        { chunkBytes: chunk, expectCrc32: res.crc32 },
      );
      for (const [n, t] of made) expect(back.get(n)!.bytes, `${n} chunk ${chunk} views ${views}`).toEqual(t.bytes);
    }
  });

  it('BF16 stored as F32 widens exactly and loads back as the same BF16 bits', () => {
    const t = hostTensor('bf16', [301], r);
    const path = file('widen.safetensors');
    writeSafetensors(path, [tensorSource('w', t)], { storeAs: () => 'F32', chunkBytes: 16 });
    expect(readHeader(path).header.tensors[0].dtype).toBe('F32');
    expect(load(path, 'bf16', 16).get('w')!.bytes).toEqual(t.bytes);
    const wide = f32(load(path, 'f32').get('w')!);
    expect(wide.map((v) => new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16)).toEqual(u16(t));
  });
});

describe('safetensors rejects bad files with named errors', () => {
  const good = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const cases: [string, Uint8Array, RegExp][] = [
    ['a file shorter than the length field', new Uint8Array(5), /too short/],
    ['a header length past the end of the file', assemble(good, f32Bytes(1, 2)).slice(0, 30), /header length 56 runs past the end of the file \(30 bytes\)/],
    ['a header over 100 MB', (() => { const b = new Uint8Array(16); new DataView(b.buffer).setBigUint64(0, 100_000_001n, true); return b; })(), /exceeds the 100000000-byte limit/],
    ['a header that is not JSON', assemble('{"a":', []), /not valid UTF-8 JSON/],
    ['an unknown dtype', assemble('{"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}', f32Bytes(1, 2)), /tensor 'a': unknown dtype "F17"/],
    ['offsets that overlap', assemble('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32Bytes(1, 2)), /tensor 'b' data_offsets \[4, 8\] overlap/],
    ['a gap between tensors', assemble('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', f32Bytes(1, 2, 3)), /bytes \[4, 8\) before tensor 'b' belong to no tensor/],
    ['trailing data', assemble(good, f32Bytes(1, 2, 3)), /4 trailing data bytes/],
    ['a truncated file', assemble('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', f32Bytes(1, 2)), /tensor 'b' data_offsets \[4, 12\] run past the end of the data \(8 bytes; file truncated\?\)/],
    ['offsets that disagree with the shape', assemble('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', f32Bytes(1, 2)), /tensor 'a': data_offsets \[0, 8\] hold 8 bytes but F32\[3\] needs 12/],
    ['offsets that end before they begin', assemble('{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', f32Bytes(1, 2)), /end before they begin/],
    ['a bad shape', assemble('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', f32Bytes(1, 2)), /tensor 'a': shape must be an array of non-negative integers/],
    ['non-string metadata', assemble('{"__metadata__":{"step":3},' + good.slice(1), f32Bytes(1, 2)), /__metadata__.step must be a string/],
    ['a duplicated tensor name', assemble('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32Bytes(1, 2)), /bytes \[0, 4\) before tensor 'a' belong to no tensor/],
  ];
  for (const [what, bytes, msg] of cases) {
    it(`rejects ${what}`, () => {
      const path = file(`bad-${what.replace(/\W+/g, '-')}.safetensors`);
      writeFileSync(path, bytes);
      expect(() => load(path)).toThrow(msg);
      expect(() => load(path)).toThrow(path);
    });
  }

  it('names the tensor when the file is cut short after its header was read', () => {
    const path = file('shrinks.safetensors');
    writeFileSync(path, assemble(good, f32Bytes(1, 2)));
    const st = readHeader(path);
    writeFileSync(path, assemble(good, f32Bytes(1, 2)).slice(0, -4));
    expect(() => readTensors({ ...st, fileSize: st.fileSize - 4 }, () => ({ dtype: 'F32', write: () => {} }))).toThrow(/tensor 'a' ends early: file truncated/);
    expect(() => readTensors(st, () => ({ dtype: 'F32', write: () => {} }))).toThrow(/changed size/);
  });

  it('refuses a conversion it cannot do, naming the tensor', () => {
    const path = file('i32.safetensors');
    writeFileSync(path, assemble('{"ids":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}', [1, 0, 0, 0]));
    expect(() => load(path, 'f32')).toThrow(/tensor 'ids' has dtype I32, which cannot be loaded as F32/);
  });

  it('refuses to write a name twice or the reserved name', () => {
    const t = tensorSource('a', new HostTensor('f32', [1]));
    expect(() => writeSafetensors(file('dup.safetensors'), [t, t])).toThrow(/tensor 'a' is given twice/);
    const src: TensorSource = { ...t, name: '__metadata__' };
    expect(() => writeSafetensors(file('res.safetensors'), [src])).toThrow(/reserved/);
    const odd: TensorSource = { ...t, dtype: 'I32' as StDtype };
    expect(() => writeSafetensors(file('conv.safetensors'), [odd], { storeAs: () => 'BF16' })).toThrow(/tensor 'a' is I32 and cannot be stored as BF16/);
  });
});
