import protobuf from 'protobufjs';

// The subset of onnx/onnx.proto (proto2) that the builders need, with the field numbers of the
// real schema so onnxruntime parses what we write. Fields we never set are left out.
const schema = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
  }
  optional string name = 1;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  repeated int64 ints = 8;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional GraphProto graph = 7;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}

message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

const ModelProto = protobuf.parse(schema, { keepCase: true }).root.lookupType('onnx.ModelProto');

/** TensorProto.DataType values (data_type and elem_type are plain int32 fields in onnx.proto). */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7 } as const;
export type ElemType = (typeof DataType)[keyof typeof DataType];

const AttrType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

/** IR version 8 is the first to carry opset 17, which every op here has had since. */
export const IR_VERSION = 8;
export const OPSET = 17;

export interface TensorInit {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

/** An initializer; raw_data is little-endian, which is what typed arrays hold on every platform Node runs on. */
export function tensor(name: string, dims: number[], data: Float32Array | BigInt64Array | Int32Array): TensorInit {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new Error(`initializer '${name}': dims [${dims.join(', ')}] need ${count} values, got ${data.length}`);
  }
  const data_type = data instanceof Float32Array ? DataType.FLOAT : data instanceof BigInt64Array ? DataType.INT64 : DataType.INT32;
  return { name, dims, data_type, raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export const int64s = (name: string, values: number[]): TensorInit =>
  tensor(name, [values.length], BigInt64Array.from(values, (v) => BigInt(v)));

export const scalar = (name: string, value: number): TensorInit => tensor(name, [], Float32Array.of(value));

export type AttrValue = number | number[] | { float: number };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  /** Plain numbers and arrays encode as INT/INTS; a float attribute is written {float: x}. */
  attrs?: Record<string, AttrValue>;
}

function attribute(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute '${name}': ${v} is not an integer; wrap float attributes as {float: x}`);
    return { name, type: AttrType.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: v };
  return { name, type: AttrType.FLOAT, f: v.float };
}

export interface ValueSpec {
  name: string;
  elemType: number;
  /** A number is a fixed size, a string a symbolic one. */
  shape: (number | string)[];
}

function valueInfo(v: ValueSpec): Record<string, unknown> {
  const dim = v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name: v.name, type: { tensor_type: { elem_type: v.elemType, shape: { dim } } } };
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  initializers: TensorInit[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
}

/** Serialises a single-graph ModelProto in the default ONNX domain. */
export function encodeModel(g: GraphSpec): Uint8Array {
  const msg = {
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'polytune',
    graph: {
      name: g.name,
      node: g.nodes.map((n, k) => ({
        name: `${n.op}_${k}`,
        op_type: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([name, v]) => attribute(name, v)),
      })),
      initializer: g.initializers,
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
  };
  const err = ModelProto.verify(msg);
  if (err) throw new Error(`ONNX graph '${g.name}': ${err}`);
  return ModelProto.encode(ModelProto.fromObject(msg)).finish();
}
