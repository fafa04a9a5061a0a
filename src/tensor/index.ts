export { Tensor, withScope, keep, memoryStats, parseDevice, type DType, type Device, type HostArray } from './tensor.js';
export { f32ToBf16, bf16ToF32, roundBf16 } from './bf16.js';
export * as ops from './ops.js';
export { native } from './native.js';
