import { native, type NativeAddon, type NativeTensor } from './native.js';

export type DType = 'bf16' | 'f32' | 'i32';
export type TypedArrayFor<D extends DType> = D extends 'bf16' ? Uint16Array : D extends 'f32' ? Float32Array : Int32Array;
export type HostArray = Uint16Array | Float32Array | Int32Array;
/** Where a tensor's memory lives: the host, or the N-th CUDA device. */
export type Device = 'cpu' | `cuda:${number}`;

/** 'cpu', 'cuda' (= 'cuda:0') or 'cuda:N' as a Device; anything else throws. */
export function parseDevice(s: string): Device {
  if (s === 'cpu') return 'cpu';
  if (s === 'cuda') return 'cuda:0';
  if (/^cuda:(0|[1-9][0-9]{0,2})$/.test(s)) return s as Device;
  throw new Error(`unknown device '${s}' (expected cpu, cuda or cuda:N)`);
}

const bytesPer: Record<DType, number> = { bf16: 2, f32: 4, i32: 4 };

// Tensors made inside withScope() are disposed when it ends, unless kept.
const scopes: Set<Tensor>[] = [];

/**
 * A contiguous row-major tensor in native memory. Memory is freed by dispose() (or the scope that
 * made it), not by the garbage collector's timetable; views share their parent's memory.
 */
export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly numel: number;
  readonly device: Device;

  /** @internal use the static constructors; `device` where the caller knows it saves a native call */
  constructor(
    readonly handle: NativeTensor,
    device?: Device,
  ) {
    this.dtype = handle.dtype;
    this.device = device ?? (handle.device as Device);
    this.shape = Object.freeze(handle.shape.slice());
    this.numel = this.shape.reduce((a, b) => a * b, 1);
    scopes.at(-1)?.add(this);
  }

  get nbytes(): number {
    return this.numel * bytesPer[this.dtype];
  }

  get disposed(): boolean {
    return this.handle.disposed;
  }

  /**
   * Uninitialised memory: every op writes its outputs whole, so zeroing would be wasted work. On a
   * CPU-only build a CUDA device throws ("this addon was built without CUDA; ...").
   */
  static empty(shape: readonly number[], dtype: DType, device: Device = 'cpu'): Tensor {
    return new Tensor(new (native().NativeTensor)(shape.slice(), dtype, device), device);
  }

  static zeros(shape: readonly number[], dtype: DType, device: Device = 'cpu'): Tensor {
    return Tensor.full(shape, dtype, 0, device);
  }

  static full(shape: readonly number[], dtype: DType, value: number, device: Device = 'cpu'): Tensor {
    const t = Tensor.empty(shape, dtype, device);
    native().fill(t.handle, value);
    return t;
  }

  /** Copies host data in; bf16 data is given as its bit patterns in a Uint16Array. */
  static fromArray(data: HostArray, shape: readonly number[], dtype?: DType, device: Device = 'cpu'): Tensor {
    const dt = dtype ?? (data instanceof Uint16Array ? 'bf16' : data instanceof Float32Array ? 'f32' : 'i32');
    const want = dt === 'bf16' ? Uint16Array : dt === 'f32' ? Float32Array : Int32Array;
    if (!(data instanceof want)) {
      throw new Error(`Tensor.fromArray: ${dt} data must be a ${want.name}, got ${data.constructor.name}`);
    }
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) {
      throw new Error(`Tensor.fromArray: ${data.length} values do not fill shape [${shape.join(', ')}] (${n})`);
    }
    const t = Tensor.empty(shape, dt, device);
    t.handle.writeBytes(0, data);
    return t;
  }

  /**
   * A copy of this tensor on `device`: always a new tensor (even on the same device), so the caller
   * owns exactly one of each and disposing the source never frees the result.
   */
  to(device: Device): Tensor {
    const t = Tensor.empty(this.shape, this.dtype, device);
    try {
      native().copy(this.handle, t.handle);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  /** Copies the data out to a new typed array. */
  toArray(): HostArray {
    const buf = this.handle.readBytes(0, this.nbytes);
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
    if (this.dtype === 'bf16') return new Uint16Array(bytes.buffer);
    if (this.dtype === 'f32') return new Float32Array(bytes.buffer);
    return new Int32Array(bytes.buffer);
  }

  writeBytes(byteOffset: number, bytes: ArrayBufferView): void {
    this.handle.writeBytes(byteOffset, bytes);
  }

  readBytes(byteOffset: number, byteLength: number): Uint8Array {
    const b = this.handle.readBytes(byteOffset, byteLength);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  /**
   * The bytes [byteOffset, byteOffset + byteLength) of the tensor's memory, without copying: a
   * live view, so later writes to the tensor (by ops, writeBytes, ...) show through it, and writes
   * through it change the tensor. For reading only (as the checkpoint writer does, which streams it
   * straight to disk); use readBytes for a snapshot. The view keeps the memory alive: dispose()
   * then frees it only when the view is garbage collected, so no access through it is ever unsafe.
   * Host tensors only (a CUDA tensor throws: use readBytes).
   *
   * While a view is live, JS may write the memory unseen, so caches derived from it (the CPU GEMM's
   * packed weights) are off for this storage; endBytesViews() ends that (the views then read as
   * empty), as does the garbage collection of the views.
   */
  bytesView(byteOffset: number, byteLength: number): Uint8Array {
    const b = this.handle.bytesView(byteOffset, byteLength);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Ends every bytesView taken through this tensor: they are detached (zero length from now on). */
  endBytesViews(): void {
    this.handle.endBytesViews();
  }

  /** The same memory under another shape with the same element count. */
  reshape(shape: readonly number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== this.numel) {
      throw new Error(`reshape: ${this.describe()} has ${this.numel} elements, [${shape.join(', ')}] has ${n}`);
    }
    return new Tensor(this.handle.view(shape.slice(), 0), this.device);
  }

  /** Rows [start, start + count) of the first dimension, sharing memory. */
  rows(start: number, count: number): Tensor {
    const rowSize = this.numel / (this.shape[0] || 1);
    if (start < 0 || count < 0 || start + count > this.shape[0]) {
      throw new Error(`rows: [${start}, ${start + count}) is outside ${this.describe()}`);
    }
    return new Tensor(this.handle.view([count, ...this.shape.slice(1)], start * rowSize), this.device);
  }

  /** e.g. "bf16[2, 3]", with the device where it is not the CPU: "bf16[2, 3] on cuda:0". */
  describe(): string {
    return `${this.dtype}[${this.shape.join(', ')}]` + (this.device === 'cpu' ? '' : ` on ${this.device}`);
  }

  dispose(): void {
    this.handle.dispose();
  }
}

/** Runs fn; every tensor made meanwhile is disposed at the end unless it is returned or kept. */
export function withScope<R>(fn: () => R): R {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  const keepers = new Set<Tensor>();
  collect(result, keepers);
  for (const t of scope) {
    if (keepers.has(t)) scopes.at(-1)?.add(t);
    else t.dispose();
  }
  return result;
}

/** Moves a tensor out of the current scope, so it outlives it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(v: unknown, into: Set<Tensor>): void {
  if (v instanceof Tensor) into.add(v);
  else if (Array.isArray(v)) v.forEach((x) => collect(x, into));
  else if (v instanceof Map) v.forEach((x) => collect(x, into));
  else if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    Object.values(v).forEach((x) => collect(x, into));
  }
}

export function memoryStats(): ReturnType<NativeAddon['memoryStats']> {
  return native().memoryStats();
}
