import type { HostDtype, StDtype } from './safetensors/dtypes.js';
import { stDtypeOf } from './safetensors/dtypes.js';
import type { TensorSource } from './safetensors/file.js';

/**
 * What the checkpoint code needs of a tensor: src/tensor's Tensor satisfies it as is, and
 * HostTensor below does over plain memory, so the format code never needs the native addon.
 */
export interface ByteTensor {
  readonly dtype: HostDtype;
  readonly shape: readonly number[];
  readBytes(byteOffset: number, byteLength: number): Uint8Array;
  writeBytes(byteOffset: number, bytes: Uint8Array): void;
  dispose?(): void;
}

/** Allocates an uninitialised tensor to load into (e.g. Tensor.empty). */
export type Alloc<T extends ByteTensor> = (shape: readonly number[], dtype: HostDtype) => T;

const bytesPer: Record<HostDtype, number> = { bf16: 2, f32: 4, i32: 4 };

/** A tensor in ordinary JS memory: for tools and tests that run without the native addon. */
export class HostTensor implements ByteTensor {
  readonly bytes: Uint8Array;
  constructor(
    readonly dtype: HostDtype,
    readonly shape: readonly number[],
    bytes?: Uint8Array,
  ) {
    const n = shape.reduce((a, b) => a * b, 1) * bytesPer[dtype];
    if (bytes && bytes.byteLength !== n) throw new Error(`HostTensor: ${bytes.byteLength} bytes do not fill ${dtype}[${shape.join(', ')}] (${n})`);
    this.bytes = bytes ?? new Uint8Array(n);
  }
  static alloc: Alloc<HostTensor> = (shape, dtype) => new HostTensor(dtype, shape);
  readBytes(byteOffset: number, byteLength: number): Uint8Array {
    this.checkRange(byteOffset, byteLength);
    return this.bytes.subarray(byteOffset, byteOffset + byteLength);
  }
  writeBytes(byteOffset: number, bytes: Uint8Array): void {
    this.checkRange(byteOffset, bytes.byteLength);
    this.bytes.set(bytes, byteOffset);
  }
  private checkRange(off: number, len: number): void {
    if (off < 0 || len < 0 || off + len > this.bytes.byteLength) {
      throw new Error(`HostTensor: byte range [${off}, +${len}) is outside ${this.dtype}[${this.shape.join(', ')}]`);
    }
  }
}

export function tensorSource(name: string, t: ByteTensor): TensorSource {
  return { name, dtype: stDtypeOf(t.dtype), shape: t.shape, read: (off, len) => t.readBytes(off, len) };
}

export const hostDtypeOf = (d: StDtype): HostDtype | undefined => (d === 'BF16' ? 'bf16' : d === 'F32' ? 'f32' : d === 'I32' ? 'i32' : undefined);
