import type { HostDtype, StDtype } from './safetensors/dtypes.js';
import { stDtypeOf } from './safetensors/dtypes.js';
import type { TensorSource } from './safetensors/file.js';
import { numelOf } from './safetensors/header.js';

/**
 * What the checkpoint code needs of a tensor: src/tensor's Tensor satisfies it as is, and
 * HostTensor below does over plain memory, so the format code never needs the native addon.
 */
export interface ByteTensor {
  readonly dtype: HostDtype;
  readonly shape: readonly number[];
  readBytes(byteOffset: number, byteLength: number): Uint8Array;
  writeBytes(byteOffset: number, bytes: Uint8Array): void;
  /**
   * Optional: the tensor's own memory for the range, without a copy (src/tensor's Tensor has it).
   * Saving streams it to disk in place of readBytes. (Loading keeps writeBytes: a native view holds
   * the memory until it is garbage collected, which would defer the free of every loaded tensor.)
   */
  bytesView?(byteOffset: number, byteLength: number): Uint8Array;
  /** Ends the views bytesView gave (src/tensor's Tensor: caches derived from its memory resume). */
  endBytesViews?(): void;
  /** Where the memory is ('cpu' or 'cuda:N'; absent: host memory). Only host memory has a bytesView. */
  readonly device?: string;
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
  bytesView(byteOffset: number, byteLength: number): Uint8Array {
    return this.readBytes(byteOffset, byteLength);
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

/**
 * The tensor as a save source. It reads through bytesView when the tensor has one: the writer
 * checksums and writes each range before asking for the next, synchronously, so nothing can change
 * the memory between the checksum and the write, and the copy readBytes makes would be wasted.
 */
export function tensorSource(name: string, t: ByteTensor): TensorSource {
  const viewer = rangeViewer(t);
  return {
    name,
    dtype: stDtypeOf(t.dtype),
    shape: t.shape,
    read: viewer ?? ((off, len) => t.readBytes(off, len)),
    done: viewer && t.endBytesViews ? () => t.endBytesViews!() : undefined,
  };
}

/**
 * Ranges of the tensor's memory through one view of all of it, taken at the first call (one native
 * call per tensor rather than per chunk; a view holds the whole storage alive either way).
 * Undefined when the tensor has no bytesView or is not in host memory.
 */
export function rangeViewer(t: ByteTensor): ((byteOffset: number, byteLength: number) => Uint8Array) | undefined {
  if (!t.bytesView || (t.device !== undefined && t.device !== 'cpu')) return undefined;
  let whole: Uint8Array | undefined;
  return (off, len) => {
    // A view ended by endBytesViews reads as empty: take a new one.
    if (!whole || whole.byteLength === 0) whole = t.bytesView!(0, numelOf(t.shape) * bytesPer[t.dtype]);
    if (!(Number.isInteger(off) && Number.isInteger(len) && off >= 0 && len >= 0 && off + len <= whole.byteLength)) {
      throw new Error(`bytesView: byte range [${off}, +${len}) is outside ${t.dtype}[${t.shape.join(', ')}] (${whole.byteLength} bytes)`);
    }
    return whole.subarray(off, off + len);
  };
}

export const hostDtypeOf = (d: StDtype): HostDtype | undefined => (d === 'BF16' ? 'bf16' : d === 'F32' ? 'f32' : d === 'I32' ? 'i32' : undefined);
