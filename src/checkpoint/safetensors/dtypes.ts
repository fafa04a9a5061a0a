/**
 * Element sizes of every dtype the safetensors format defines (sub-byte float formats excepted),
 * so a header is validated whole even when it holds tensors the model cannot use.
 */
const SIZES = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8,
} as const;

export type StDtype = keyof typeof SIZES;
/** The element types the runtime computes in (src/tensor's DType). */
export type HostDtype = 'bf16' | 'f32' | 'i32';

export function isStDtype(s: unknown): s is StDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(SIZES, s);
}

export const knownDtypes = (): string => Object.keys(SIZES).join(', ');

export function dtypeSize(d: StDtype): number {
  return SIZES[d];
}

export const stDtypeOf = (d: HostDtype): StDtype => (d === 'bf16' ? 'BF16' : d === 'f32' ? 'F32' : 'I32');

/** Whether values of `from` can be converted to `to` on load or save. */
export function canConvert(from: StDtype, to: StDtype): boolean {
  if (from === to) return true;
  const floats: StDtype[] = ['BF16', 'F16', 'F32'];
  return floats.includes(from) && (to === 'BF16' || to === 'F32');
}

let scratch = new ArrayBuffer(0);

/**
 * Converts whole elements from one dtype to another. The input must start on an element boundary
 * of its own dtype. The result is the input itself when the dtypes agree, else a view of a scratch
 * buffer that the next call overwrites: streaming converts chunk after chunk without allocating.
 */
export function convertBytes(src: Uint8Array, from: StDtype, to: StDtype): Uint8Array {
  if (from === to) return src;
  if (!canConvert(from, to)) throw new Error(`cannot convert ${from} to ${to}`);
  const n = src.byteLength / SIZES[from];
  if (!Number.isInteger(n)) throw new Error(`convert ${from}: ${src.byteLength} bytes is not a whole number of elements`);
  const aligned = src.byteOffset % 4 === 0 ? src : src.slice();
  const outBytes = n * SIZES[to];
  if (scratch.byteLength < outBytes) scratch = new ArrayBuffer(Math.max(outBytes, 2 * scratch.byteLength));
  if (to === 'F32') {
    const out = new Uint32Array(scratch, 0, n);
    const inp = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    if (from === 'BF16') for (let i = 0; i < n; i++) out[i] = inp[i] << 16;
    else f16IntoF32(inp, out);
  } else {
    const out = new Uint16Array(scratch, 0, n);
    if (from === 'F32') f32BitsToBf16(new Uint32Array(aligned.buffer, aligned.byteOffset, n), out);
    else {
      const wide = new Uint32Array(n);
      f16IntoF32(new Uint16Array(aligned.buffer, aligned.byteOffset, n), wide);
      f32BitsToBf16(wide, out);
    }
  }
  return new Uint8Array(scratch, 0, outBytes);
}

/** Round to nearest even, NaN kept quiet: the same rounding as src/tensor's f32ToBf16 and the kernels. */
function f32BitsToBf16(inp: Uint32Array, out: Uint16Array): void {
  for (let i = 0; i < inp.length; i++) {
    const u = inp[i];
    out[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x40 : ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  }
}

function f16IntoF32(inp: Uint16Array, out: Uint32Array): void {
  const table = f16Bits();
  for (let i = 0; i < inp.length; i++) out[i] = table[inp[i]];
}

let f16Table: Uint32Array | undefined;

/** f32 bit patterns of all 65536 halves: a table beats bit twiddling per element in JS. */
function f16Bits(): Uint32Array {
  if (!f16Table) {
    const f = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f[h] = f16Value(h);
    f16Table = new Uint32Array(f.buffer);
  }
  return f16Table;
}

function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
