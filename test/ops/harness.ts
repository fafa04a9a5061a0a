// The cross-backend op harness (review 4.7, in the style of llama.cpp's test-backend-ops): every op
// file in test/ops/ has a case table and three blocks: `reference` (the CPU against a double-precision
// JS reference), `gradients` (finite differences, f32, CPU) and `backends` (each case on every other
// device against the CPU on identical host inputs). Outputs are poisoned with NaN bit patterns before
// every run, so an output a kernel forgot to write fails instead of passing on leftover memory.
// Devices that are not there show as skipped with the reason ("cuda: not built"), never as passing.
import { expect } from 'vitest';
import { Tensor, bf16ToF32, f32ToBf16, native, type DType, type Device } from '../../src/tensor/index.js';

/** Devices this build and machine can run: 'cpu' first. */
export function devices(): Device[] {
  return native().devices() as Device[];
}

export interface Backend {
  /** The label the describe block shows: 'cuda:0', or 'cuda: not built' / 'cuda: no device'. */
  name: string;
  device: Device;
  /** Why it cannot run here, or false. */
  skip: string | false;
}

/** The devices other than the CPU to compare with it; one skipped entry when there are none. */
export function backends(): Backend[] {
  const gpus = devices().filter((d) => d !== 'cpu');
  if (gpus.length > 0) return gpus.map((d) => ({ name: d, device: d, skip: false }));
  const why = native().buildInfo().cuda ? 'no device' : 'not built';
  return [{ name: `cuda: ${why}`, device: 'cuda:0', skip: why }];
}

const POISON: Record<DType, (n: number) => Uint8Array> = {
  bf16: (n) => new Uint8Array(new Uint16Array(n).fill(0x7fc1).buffer),
  f32: (n) => new Uint8Array(new Uint32Array(n).fill(0x7fc00001).buffer),
  i32: (n) => new Uint8Array(new Int32Array(n).fill(0x7fffffff).buffer),
};

/** Fills t with NaN bit patterns (i32: INT32_MAX), through writeBytes so it works on any device. */
export function poison<T extends Tensor>(t: T): T {
  if (t.numel > 0) t.writeBytes(0, POISON[t.dtype](t.numel));
  return t;
}

/** An uninitialised output, poisoned. */
export function out(shape: readonly number[], dtype: DType, device: Device): Tensor {
  return poison(Tensor.empty(shape, dtype, device));
}

/** Host data on a device; f32 data goes to bf16 by round-to-nearest-even when asked. */
export function put(data: Float32Array | Int32Array, shape: readonly number[], dtype: DType, device: Device): Tensor {
  if (dtype === 'bf16') return Tensor.fromArray(f32ToBf16(data as Float32Array), shape, 'bf16', device);
  return Tensor.fromArray(data, shape, dtype, device);
}

/** Values as f32 on the host (bf16 widened exactly). */
export function host(t: Tensor): Float32Array {
  const a = t.toArray();
  if (a instanceof Uint16Array) return bf16ToF32(a);
  if (a instanceof Float32Array) return a;
  return Float32Array.from(a);
}

/** Rounds through bf16, so inputs are exactly representable on both paths. */
export const q = (a: Float32Array): Float32Array => bf16ToF32(f32ToBf16(a));

/** Normalised mean squared error sum((a-b)^2) / sum(b^2); NaN anywhere is Infinity. */
export function nmse(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(got[i]) !== Number.isNaN(want[i])) return Infinity;
    const d = got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : num / den;
}

const bits = new DataView(new ArrayBuffer(4));
function bf16Ordinal(x: number): number {
  bits.setFloat32(0, x, true);
  const h = bits.getUint32(0, true) >>> 16;
  return h & 0x8000 ? -(h & 0x7fff) : h;  // monotone in the value, so a distance is a count of ulps
}

/** Largest distance in bf16 ulps (values rounded to bf16 first); NaN on either side is Infinity. */
export function maxBf16Ulp(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(got[i]) || Number.isNaN(want[i])) return Infinity;
    m = Math.max(m, Math.abs(bf16Ordinal(got[i]) - bf16Ordinal(want[i])));
  }
  return m;
}

export interface Tolerance {
  /** Reductions and anything that sums: normalised mean squared error. */
  nmse?: number;
  /** Elementwise ops: the largest distance in bf16 ulps. */
  ulp?: number;
}

/**
 * Asserts got matches want within tol; the message reads as test-backend-ops does:
 * `rmsnorm bf16[13, 4096] cuda:0: NMSE 3e-4 > 1e-5`.
 */
export function compare(label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): void {
  expect(got.length, `${label}: length`).toBe(want.length);
  if (tol.nmse !== undefined) {
    const e = nmse(got, want);
    expect(e <= tol.nmse, `${label}: NMSE ${e.toExponential(2)} > ${tol.nmse}`).toBe(true);
  }
  if (tol.ulp !== undefined) {
    const u = maxBf16Ulp(got, want);
    expect(u <= tol.ulp, `${label}: ${u} bf16 ulps > ${tol.ulp}`).toBe(true);
  }
}

/** "rmsnorm bf16[13, 64] cuda:0": the line a case prints and its failures start with. */
export const caseLabel = (op: string, dtype: DType, shape: readonly number[], device: Device): string => `${op} ${dtype}[${shape.join(', ')}] ${device}`;
