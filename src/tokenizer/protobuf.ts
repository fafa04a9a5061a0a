/**
 * Just enough of the protobuf wire format for ModelProto: a reader that reports where a
 * file goes wrong (offset and field) and a writer. A schema-driven library would parse the
 * same bytes, but a 250k-piece model is 250k nested messages, and a hand-rolled loop over
 * them is several times faster than generic decoding (see the README's tokenizer notes).
 */
import { ByteBuilder } from './utf8.js';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

export class ProtoError extends Error {}

export class ProtoReader {
  pos: number;
  private readonly view: DataView;

  constructor(
    readonly buf: Uint8Array,
    readonly start: number,
    readonly end: number,
    /** Which message is being read, for error messages. */
    readonly what: string,
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  fail(msg: string): never {
    throw new ProtoError(`${this.what}: ${msg} at byte ${this.pos}`);
  }

  varint(): number {
    // Values above 2^53 only occur in fields we skip; precision there does not matter.
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** int32 fields are sign-extended to 64 bits on the wire, so -1 arrives as 2^64-1. */
  int32(): number {
    const v = this.varint();
    return v >= 2 ** 63 ? v - 2 ** 64 : v > 0x7fffffff ? v - 2 ** 32 : v;
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  float(): number {
    if (this.pos + 4 > this.end) this.fail('truncated float');
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Returns [start, end) of a length-delimited field's payload. */
  lengthDelimited(): [number, number] {
    const len = this.varint();
    const s = this.pos;
    if (len > this.end - s) this.fail(`length ${len} runs past the end of the message (${this.end - s} bytes left)`);
    this.pos = s + len;
    return [s, s + len];
  }

  /** Reads a tag; returns [fieldNumber, wireType]. */
  tag(): [number, number] {
    const t = this.varint();
    const field = Math.floor(t / 8);
    const wire = t % 8;
    if (field === 0) this.fail('field number 0 is not valid protobuf');
    return [field, wire];
  }

  expectWire(field: number, wire: number, expected: number, name: string): void {
    if (wire !== expected) this.fail(`field ${name} (#${field}) has wire type ${wire}, expected ${expected}`);
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        if (this.pos + 8 > this.end) this.fail('truncated fixed64');
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_FIXED32:
        if (this.pos + 4 > this.end) this.fail('truncated fixed32');
        this.pos += 4;
        return;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
  }
}

export class ProtoWriter extends ByteBuilder {
  private static readonly enc = new TextEncoder();

  constructor() {
    super(1024);
  }

  private rawVarint(v: number): void {
    this.reserve(10);
    if (v < 0) {
      // Negative int32 values are written as 64-bit two's complement (10 bytes), as protoc does.
      let lo = v >>> 0;
      let hi = 0xffffffff;
      for (let i = 0; i < 9; i++) {
        this.buf[this.len++] = (lo & 0x7f) | 0x80;
        lo = (lo >>> 7) | ((hi & 0x7f) << 25);
        hi >>>= 7;
      }
      this.buf[this.len++] = lo & 0x01;
      return;
    }
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.len++] = v;
  }

  private tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  varint(field: number, v: number): void {
    this.tag(field, WIRE_VARINT);
    this.rawVarint(v);
  }

  bool(field: number, v: boolean): void {
    this.varint(field, v ? 1 : 0);
  }

  float(field: number, v: number): void {
    this.tag(field, WIRE_FIXED32);
    this.reserve(4);
    new DataView(this.buf.buffer).setFloat32(this.len, v, true);
    this.len += 4;
  }

  bytes(field: number, v: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.rawVarint(v.length);
    this.append(v, 0, v.length);
  }

  string(field: number, v: string): void {
    this.bytes(field, ProtoWriter.enc.encode(v));
  }

  message(field: number, write: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    write(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}
