// TensorBoard event files (`report: ["tensorboard"]`): TFRecord framing (length, masked CRC-32C of
// the length, payload, masked CRC-32C of the payload) around tensorflow.Event protos, encoded with
// protobufjs from the message definitions below (the subset of event.proto / summary.proto used).
import { appendFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { osError } from './run-folder.js';

const PROTO = `
syntax = "proto3";
package tensorflow;
message Summary {
  message Value {
    string node_name = 7;
    string tag = 1;
    oneof value { float simple_value = 2; }
  }
  repeated Value value = 1;
}
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
  }
}
`;

export const tfProtos = (() => {
  const root = protobuf.parse(PROTO, { keepCase: true }).root;
  return { Event: root.lookupType('tensorflow.Event'), Summary: root.lookupType('tensorflow.Summary') };
})();

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as TFRecord uses. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15 and add a constant, so CRCs of CRCs stay distinct. */
export const maskCrc = (crc: number): number => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

export function tfRecord(payload: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + payload.length + 4);
  out.writeBigUInt64LE(BigInt(payload.length), 0);
  out.writeUInt32LE(maskCrc(crc32c(out.subarray(0, 8))), 8);
  out.set(payload, 12);
  out.writeUInt32LE(maskCrc(crc32c(payload)), 12 + payload.length);
  return out;
}

/** One events file per process, appended to and flushed at every write, as TensorBoard reads it live. */
export class TensorBoardWriter {
  readonly file: string;

  constructor(dir: string) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw osError(`creating the TensorBoard folder ${dir}`, e);
    }
    this.file = join(dir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${hostname()}.${process.pid}`);
    this.write({ wall_time: Date.now() / 1000, file_version: 'brain.Event:2' });
  }

  scalars(step: number, values: Record<string, number>): void {
    const value = Object.entries(values)
      .filter(([, v]) => Number.isFinite(v))
      .map(([tag, v]) => ({ tag, simple_value: v }));
    if (value.length) this.write({ wall_time: Date.now() / 1000, step, summary: { value } });
  }

  private write(event: Record<string, unknown>): void {
    const { Event } = tfProtos;
    const bytes = Event.encode(Event.fromObject(event)).finish();
    try {
      appendFileSync(this.file, tfRecord(bytes));
    } catch (e) {
      throw osError(`appending to the TensorBoard file ${this.file}`, e);
    }
  }
}
