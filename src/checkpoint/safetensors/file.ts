import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { canConvert, convertBytes, dtypeSize, type StDtype } from './dtypes.js';
import { buildHeader, parseHeader, parseHeaderLength, type Header, type TensorEntry } from './header.js';

/** Read chunk when loading: large enough that syscalls are noise, small enough that the staging copy never matters. */
export const DEFAULT_CHUNK_BYTES = 16 << 20;
/**
 * Bytes checksummed and then written per step when saving: small enough to stay in a core's L2
 * cache between the CRC pass and the kernel's copy into the page cache, large enough that the
 * syscalls are noise.
 */
export const DEFAULT_WRITE_CHUNK_BYTES = 1 << 20;
/** Writes at least this large skip the staging buffer. */
const DIRECT_BYTES = 64 << 10;
/** The staging buffer only ever holds writes smaller than DIRECT_BYTES. */
const STAGE_BYTES = 1 << 20;

export interface SafetensorsFile {
  file: string;
  fileSize: number;
  header: Header;
}

export interface TensorInfo extends TensorEntry {
  file: string;
}

/**
 * Where one tensor's bytes go on load: `write` receives them in order, already in `dtype`; the
 * bytes live in a reused buffer, so write must copy them before returning.
 */
export interface TensorDest {
  dtype: StDtype;
  write(byteOffset: number, bytes: Uint8Array): void;
}

/** Called once per tensor, in file order, before any of its bytes are read. */
export type TensorSink = (info: TensorInfo) => TensorDest;

/**
 * One tensor to save: its bytes (in `dtype`, row-major, little-endian) are pulled in ranges. The
 * writer only reads what `read` returns, and only until its next call, so `read` may return a view
 * of the tensor's own memory rather than a copy.
 */
export interface TensorSource {
  name: string;
  dtype: StDtype;
  shape: readonly number[];
  read(byteOffset: number, byteLength: number): Uint8Array;
  /** Called once the tensor is written: views `read` handed out may end (see Tensor.endBytesViews). */
  done?(): void;
}

export function readHeader(file: string): SafetensorsFile {
  const fd = openFile(file, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    const len = parseHeaderLength(readExactly(fd, file, 0, Math.min(8, fileSize)), fileSize, file);
    const header = parseHeader(readExactly(fd, file, 8, len), fileSize, file);
    return { file, fileSize, header };
  } finally {
    closeSync(fd);
  }
}

export interface ReadOptions {
  chunkBytes?: number;
  /** Expected CRC-32 of each tensor's stored bytes; a tensor listed here that differs is an error. */
  expectCrc32?: Record<string, number>;
}

/**
 * Streams every tensor of a file into the destinations the sink gives, through one reusable chunk
 * buffer, so a file far larger than memory's headroom loads without a second full copy.
 */
export function readTensors(st: SafetensorsFile, sink: TensorSink, opts: ReadOptions = {}): void {
  const chunk = alignedChunk(opts.chunkBytes);
  const buf = Buffer.allocUnsafeSlow(chunk);
  const fd = openFile(st.file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size !== st.fileSize) throw new Error(`${st.file}: file changed size from ${st.fileSize} to ${size} bytes since its header was read`);
    for (const t of st.header.tensors) {
      const dest = sink({ ...t, file: st.file });
      if (!canConvert(t.dtype, dest.dtype)) throw new Error(`${st.file}: tensor '${t.name}' has dtype ${t.dtype}, which cannot be loaded as ${dest.dtype}`);
      const ratio = dtypeSize(dest.dtype) / dtypeSize(t.dtype);
      const expect = opts.expectCrc32?.[t.name];
      let crc = 0;
      for (let off = 0; off < t.end - t.begin; off += chunk) {
        const len = Math.min(chunk, t.end - t.begin - off);
        const got = readFully(fd, buf, len, st.header.dataStart + t.begin + off);
        if (got !== len) throw new Error(`${st.file}: tensor '${t.name}' ends early: file truncated at byte ${st.header.dataStart + t.begin + off + got}`);
        const bytes = buf.subarray(0, len);
        if (expect !== undefined) crc = crc32(bytes, crc);
        dest.write(off * ratio, convertBytes(bytes, t.dtype, dest.dtype));
      }
      if (expect !== undefined && crc !== expect) {
        throw new Error(`${st.file}: tensor '${t.name}' fails its checksum (crc32 ${crc.toString(16)}, expected ${expect.toString(16)}): the file is corrupt`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

export interface WriteOptions {
  /** Dtype to store each tensor as (default: its own); BF16 and F32 convert into each other. */
  storeAs?: (src: TensorSource) => StDtype;
  metadata?: Record<string, string>;
  chunkBytes?: number;
  /** fsync before close (default true), so a completed save survives a power cut. */
  fsync?: boolean;
}

export interface WriteResult {
  bytes: number;
  /** CRC-32 of each tensor's stored bytes, for verifying the file later. */
  crc32: Record<string, number>;
}

/** Writes one safetensors file, pulling each tensor's bytes chunk by chunk from its source. */
export function writeSafetensors(file: string, sources: readonly TensorSource[], opts: WriteOptions = {}): WriteResult {
  const byName = new Map(sources.map((s) => [s.name, s]));
  const stored = new Map<string, StDtype>();
  for (const s of sources) {
    const to = opts.storeAs?.(s) ?? s.dtype;
    if (!canConvert(s.dtype, to)) throw new Error(`${file}: tensor '${s.name}' is ${s.dtype} and cannot be stored as ${to}`);
    stored.set(s.name, to);
  }
  const { bytes: head, layout } = buildHeader(sources.map((s) => ({ name: s.name, dtype: stored.get(s.name)!, shape: s.shape })), opts.metadata);
  const chunk = alignedChunk(opts.chunkBytes ?? DEFAULT_WRITE_CHUNK_BYTES);
  const out = new StagedWriter(openFile(file, 'w'), Math.min(chunk, STAGE_BYTES));
  const crcs: Record<string, number> = {};
  try {
    out.write(head);
    for (const t of layout) {
      const src = byName.get(t.name)!;
      const srcBytes = (t.end - t.begin) * (dtypeSize(src.dtype) / dtypeSize(t.dtype));
      const step = Math.max(8, Math.floor((chunk * dtypeSize(src.dtype)) / dtypeSize(t.dtype) / 8) * 8);
      let crc = 0;
      for (let off = 0; off < srcBytes; off += step) {
        const len = Math.min(step, srcBytes - off);
        const raw = src.read(off, len);
        if (raw.byteLength !== len) throw new Error(`${file}: source of tensor '${t.name}' returned ${raw.byteLength} bytes for a ${len}-byte read at ${off}`);
        const bytes = convertBytes(raw, src.dtype, t.dtype);
        // Checksummed right before it is written, so the copy into the page cache reads it from
        // cache rather than memory (the write chunk is sized for that).
        crc = crc32(bytes, crc);
        out.write(bytes);
      }
      crcs[t.name] = crc;
      src.done?.();
    }
    out.flush();
    if (opts.fsync ?? true) fsyncSync(out.fd);
  } finally {
    closeSync(out.fd);
  }
  return { bytes: out.written, crc32: crcs };
}

/**
 * Coalesces small writes (the header, norm weights) into one buffer; anything of at least
 * DIRECT_BYTES (or a full stage) goes straight from the caller's memory to the file after
 * whatever is staged, since copying it would cost more than the syscall it saves.
 */
class StagedWriter {
  private buf: Buffer;
  private used = 0;
  written = 0;
  constructor(
    readonly fd: number,
    size: number,
  ) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }
  write(bytes: Uint8Array): void {
    let pos = 0;
    if (bytes.byteLength >= Math.min(DIRECT_BYTES, this.buf.byteLength)) {
      this.flush();
      while (pos < bytes.byteLength) pos += writeSync(this.fd, bytes, pos, bytes.byteLength - pos, this.written + pos);
      this.written += pos;
      return;
    }
    while (pos < bytes.byteLength) {
      const n = Math.min(this.buf.byteLength - this.used, bytes.byteLength - pos);
      this.buf.set(bytes.subarray(pos, pos + n), this.used);
      this.used += n;
      pos += n;
      if (this.used === this.buf.byteLength) this.flush();
    }
  }
  flush(): void {
    let off = 0;
    while (off < this.used) off += writeSync(this.fd, this.buf, off, this.used - off, this.written + off);
    this.written += this.used;
    this.used = 0;
  }
}

function alignedChunk(n = DEFAULT_CHUNK_BYTES): number {
  if (!(n >= 8)) throw new Error(`chunkBytes must be at least 8, got ${n}`);
  return Math.floor(n / 8) * 8;
}

function openFile(file: string, flags: string): number {
  try {
    return openSync(file, flags);
  } catch (e) {
    throw new Error(`${file}: cannot open: ${(e as Error).message}`);
  }
}

/** Reads up to len bytes, stopping early only at the end of the file; returns the count read. */
function readFully(fd: number, buf: Uint8Array, len: number, pos: number): number {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function readExactly(fd: number, file: string, pos: number, len: number): Uint8Array {
  const buf = Buffer.allocUnsafe(len);
  const got = readFully(fd, buf, len, pos);
  if (got !== len) throw new Error(`${file}: unexpected end of file at byte ${pos + got}`);
  return buf;
}
