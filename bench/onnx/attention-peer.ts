import { performance } from 'node:perf_hooks';
import { DataType, encodeModel, scalar, tensor } from './proto.js';
import { createSession, ort, runF32 } from './session.js';

/**
 * ORT running causal attention as plain ops (MatMul, additive mask, Softmax, MatMul) in f32 over
 * [B·H, T, D]: the unfused formulation, which materialises the T×T scores. Returns median ms.
 */
export async function ortAttentionPeer(BH: number, T: number, D: number, opts: { minMs?: number } = {}): Promise<{ msPerIter: number; iters: number }> {
  const mask = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e30;
  const model = encodeModel({
    name: 'attention',
    nodes: [
      { op: 'Transpose', inputs: ['K'], outputs: ['Kt'], attrs: { perm: [0, 2, 1] } },
      { op: 'MatMul', inputs: ['Q', 'Kt'], outputs: ['S0'] },
      { op: 'Mul', inputs: ['S0', 'scale'], outputs: ['S1'] },
      { op: 'Add', inputs: ['S1', 'mask'], outputs: ['S'] },
      { op: 'Softmax', inputs: ['S'], outputs: ['P'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['P', 'V'], outputs: ['O'] },
    ],
    initializers: [scalar('scale', 1 / Math.sqrt(D)), tensor('mask', [T, T], mask)],
    inputs: ['Q', 'K', 'V'].map((name) => ({ name, elemType: DataType.FLOAT, shape: [BH, T, D] })),
    outputs: [{ name: 'O', elemType: DataType.FLOAT, shape: [BH, T, D] }],
  });
  const session = await createSession(model);
  try {
    const x = () => new ort.Tensor('float32', Float32Array.from({ length: BH * T * D }, () => Math.random() * 2 - 1), [BH, T, D]);
    const feeds = { Q: x(), K: x(), V: x() };
    await runF32(session, feeds, 'O');
    const times: number[] = [];
    const start = performance.now();
    while (times.length < 3 || performance.now() - start < (opts.minMs ?? 1000)) {
      const t0 = performance.now();
      await runF32(session, feeds, 'O');
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { msPerIter: times[times.length >> 1], iters: times.length };
  } finally {
    await session.release();
  }
}
