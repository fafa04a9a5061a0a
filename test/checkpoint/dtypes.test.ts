import { describe, expect, it } from 'vitest';
import { convertBytes } from '../../src/checkpoint/safetensors/dtypes.js';
import { bf16ToF32, f32ToBf16 } from '../../src/tensor/bf16.js';
import { rng } from '../helpers/random.js';

const bytes = (a: Uint16Array | Uint32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('dtype conversion on load and save', () => {
  // Random bit patterns cover normals, subnormals, infinities and NaNs of every payload.
  const r = rng(3);
  const bits32 = Uint32Array.from({ length: 20000 }, () => Math.floor(r() * 2 ** 32));
  bits32.set([0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x00000001, 0x3f808000, 0x3f818000, 0x7f7fffff]);
  const bits16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

  it('F32 -> BF16 rounds exactly as src/tensor f32ToBf16 does', () => {
    const want = f32ToBf16(new Float32Array(bits32.buffer));
    expect(Buffer.compare(convertBytes(bytes(bits32), 'F32', 'BF16'), bytes(want))).toBe(0);
  });

  it('BF16 -> F32 widens every pattern exactly as bf16ToF32 does', () => {
    expect(Buffer.compare(convertBytes(bytes(bits16), 'BF16', 'F32'), bytes(bf16ToF32(bits16)))).toBe(0);
  });

  it('F16 -> F32 matches the IEEE formula for every finite half', () => {
    const got = new Float32Array(convertBytes(bytes(bits16), 'F16', 'F32').slice().buffer);
    for (let h = 0; h < 65536; h++) {
      const e = (h >> 10) & 31, f = h & 1023, s = h & 0x8000 ? -1 : 1;
      if (e === 31) {
        expect(f ? Number.isNaN(got[h]) : got[h] === s * Infinity, `half ${h}`).toBe(true);
        continue;
      }
      const v = e === 0 ? s * f * 2 ** -24 : s * (1 + f / 1024) * 2 ** (e - 15);
      if (got[h] !== v) expect(got[h], `half ${h}`).toBe(v);
    }
  });

  it('F16 -> BF16 is F16 -> F32 then one rounding', () => {
    const wide = new Float32Array(convertBytes(bytes(bits16), 'F16', 'F32').slice().buffer);
    expect(Buffer.compare(convertBytes(bytes(bits16), 'F16', 'BF16'), bytes(f32ToBf16(wide)))).toBe(0);
  });

  it('accepts input at an unaligned offset and rejects partial elements', () => {
    const raw = new Uint8Array(11);
    raw.set(bytes(new Float32Array([1.5, -2])), 3);
    expect([...new Uint16Array(convertBytes(raw.subarray(3), 'F32', 'BF16').slice().buffer)]).toEqual([0x3fc0, 0xc000]);
    expect(() => convertBytes(new Uint8Array(6), 'F32', 'BF16')).toThrow(/not a whole number of elements/);
    expect(() => convertBytes(new Uint8Array(4), 'I32', 'F32')).toThrow(/cannot convert I32 to F32/);
  });
});
