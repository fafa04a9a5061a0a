import { describe, expect, it } from 'vitest';
import { DataType, encodeModel, int64s, tensor, type GraphSpec } from '../../bench/onnx/proto.js';
import { createSession, ort, runF32 } from '../../bench/onnx/session.js';

// Every field the encoder writes is checked by what onnxruntime does with it: a wrong field number
// either fails to load or silently drops the value, which these expectations would notice.
const run = async (g: GraphSpec, feeds: Record<string, ort.Tensor>): Promise<Float32Array> => {
  const session = await createSession(encodeModel(g), { optimization: 'disabled' });
  try {
    return await runF32(session, feeds, g.outputs[0].name);
  } finally {
    await session.release();
  }
};

const f32 = (data: number[], dims: number[]) => new ort.Tensor('float32', Float32Array.from(data), dims);

describe('ONNX protobuf encoder, checked by onnxruntime-node', () => {
  it('writes float attributes (LeakyRelu alpha) and float initializers', async () => {
    const y = await run(
      {
        name: 'leaky',
        nodes: [
          { op: 'Add', inputs: ['x', 'bias'], outputs: ['s'] },
          { op: 'LeakyRelu', inputs: ['s'], outputs: ['y'], attrs: { alpha: { float: 0.25 } } },
        ],
        initializers: [tensor('bias', [3], Float32Array.of(1, -1, 0.5))],
        inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [3] }],
        outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [3] }],
      },
      { x: f32([-3, 2, 1], [3]) },
    );
    expect(Array.from(y)).toEqual([-0.5, 1, 1.5]);
  });

  it('writes int and ints attributes (Transpose perm, Softmax axis) and int64 initializers (Reshape)', async () => {
    const y = await run(
      {
        name: 'reshape_transpose',
        nodes: [
          { op: 'Reshape', inputs: ['x', 'shape'], outputs: ['r'] },
          { op: 'Transpose', inputs: ['r'], outputs: ['t'], attrs: { perm: [1, 0] } },
          { op: 'Softmax', inputs: ['t'], outputs: ['y'], attrs: { axis: 0 } },
        ],
        initializers: [int64s('shape', [2, 3])],
        inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [6] }],
        outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [3, 2] }],
      },
      { x: f32([0, 0, 0, 0, Math.log(3), 0], [6]) },
    );
    // x as [2,3] is [[0,0,0],[0,ln3,0]]; transposed [3,2]; softmax over axis 0 (down each column).
    const third = 1 / 3;
    const expected = [third, 0.2, third, 0.6, third, 0.2];
    y.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
  });

  it('writes int32 initializers and symbolic and fixed dimensions', async () => {
    const g: GraphSpec = {
      name: 'int32_add',
      nodes: [
        { op: 'Add', inputs: ['x', 'one'], outputs: ['s'] },
        { op: 'Cast', inputs: ['s'], outputs: ['y'], attrs: { to: DataType.FLOAT } },
      ],
      initializers: [tensor('one', [1, 2], Int32Array.of(1, -7))],
      inputs: [{ name: 'x', elemType: DataType.INT32, shape: ['batch', 2] }],
      outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: ['batch', 2] }],
    };
    const i32 = (data: number[], dims: number[]) => new ort.Tensor('int32', Int32Array.from(data), dims);
    expect(Array.from(await run(g, { x: i32([5, 5], [1, 2]) }))).toEqual([6, -2]);
    expect(Array.from(await run(g, { x: i32([0, 1, 2, 3, 4, 5], [3, 2]) }))).toEqual([1, -6, 3, -4, 5, -2]);
    // The fixed second dimension reached ORT: a [1, 3] input is refused.
    await expect(run(g, { x: i32([1, 2, 3], [1, 3]) })).rejects.toThrow(/dimension|shape/i);
  });

  it('refuses malformed tensors and attributes, naming them', () => {
    expect(() => tensor('w', [2, 3], new Float32Array(5))).toThrow(/initializer 'w': dims \[2, 3\] need 6 values, got 5/);
    const g: GraphSpec = {
      name: 'bad_attr',
      nodes: [{ op: 'LeakyRelu', inputs: ['x'], outputs: ['y'], attrs: { alpha: 0.5 } }],
      initializers: [],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1] }],
      outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [1] }],
    };
    expect(() => encodeModel(g)).toThrow(/attribute 'alpha': 0.5 is not an integer/);
  });
});
