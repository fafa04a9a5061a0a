import { dtypeSize, isStDtype, knownDtypes, type StDtype } from './dtypes.js';

/** Same bound as the reference implementation: a larger header is a corrupt or hostile file. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  name: string;
  dtype: StDtype;
  shape: number[];
  /** Byte offsets relative to the start of the data section (after the 8 + N header bytes). */
  begin: number;
  end: number;
}

export interface Header {
  /** In data order (by begin offset). */
  tensors: TensorEntry[];
  metadata?: Record<string, string>;
  /** Absolute file offset of the data section: 8 + header length. */
  dataStart: number;
  dataBytes: number;
}

export const numelOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Reads the little-endian u64 header length and checks it against the file size. */
export function parseHeaderLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8) throw new Error(`${file}: ${fileSize} bytes is too short for a safetensors file (no 8-byte header length)`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new Error(`${file}: header length ${n} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8n + n > BigInt(fileSize)) {
    throw new Error(`${file}: header length ${n} runs past the end of the file (${fileSize} bytes)`);
  }
  return Number(n);
}

/** Parses and validates the JSON header; every tensor's bytes must tile the data section exactly. */
export function parseHeader(json: Uint8Array, fileSize: number, file: string): Header {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new Error(`${file}: header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: header is not a JSON object`);
  const dataStart = 8 + json.byteLength;
  const dataBytes = fileSize - dataStart;
  let metadata: Record<string, string> | undefined;
  const tensors: TensorEntry[] = [];
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(v, file);
      continue;
    }
    tensors.push(parseEntry(name, v, file));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const t of tensors) {
    if (t.begin < pos) throw new Error(`${file}: tensor '${t.name}' data_offsets [${t.begin}, ${t.end}] overlap the previous tensor (ends at ${pos})`);
    if (t.begin > pos) throw new Error(`${file}: data bytes [${pos}, ${t.begin}) before tensor '${t.name}' belong to no tensor`);
    pos = t.end;
  }
  if (pos > dataBytes) {
    const t = tensors.find((x) => x.end > dataBytes)!;
    throw new Error(`${file}: tensor '${t.name}' data_offsets [${t.begin}, ${t.end}] run past the end of the data (${dataBytes} bytes; file truncated?)`);
  }
  if (pos < dataBytes) throw new Error(`${file}: ${dataBytes - pos} trailing data bytes after offset ${pos} belong to no tensor`);
  return { tensors, metadata, dataStart, dataBytes };
}

function parseMetadata(v: unknown, file: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file}: __metadata__ must be an object of strings`);
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') throw new Error(`${file}: __metadata__.${k} must be a string, got ${JSON.stringify(s)}`);
  }
  return v as Record<string, string>;
}

function parseEntry(name: string, v: unknown, file: string): TensorEntry {
  const where = `${file}: tensor '${name}'`;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: entry is not an object`);
  const e = v as Record<string, unknown>;
  if (!isStDtype(e.dtype)) throw new Error(`${where}: unknown dtype ${JSON.stringify(e.dtype)} (known: ${knownDtypes()})`);
  const isUint = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (!Array.isArray(e.shape) || !e.shape.every(isUint)) throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`);
  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isUint)) {
    throw new Error(`${where}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(off)}`);
  }
  const [begin, end] = off as number[];
  if (end < begin) throw new Error(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
  const want = numelOf(e.shape) * dtypeSize(e.dtype);
  if (end - begin !== want) {
    throw new Error(`${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${e.dtype}[${e.shape.join(', ')}] needs ${want}`);
  }
  return { name, dtype: e.dtype, shape: e.shape.slice(), begin, end };
}

export interface EntrySpec {
  name: string;
  dtype: StDtype;
  shape: readonly number[];
}

/**
 * Lays tensors out as the reference writer does (larger elements first, then by name), and
 * serialises the header with its keys in the reference order, padded with spaces to 8 bytes.
 */
export function buildHeader(specs: readonly EntrySpec[], metadata?: Record<string, string>): { bytes: Uint8Array; layout: TensorEntry[] } {
  const seen = new Set<string>();
  for (const s of specs) {
    if (s.name === '__metadata__') throw new Error(`tensor name '__metadata__' is reserved by the safetensors format`);
    if (seen.has(s.name)) throw new Error(`tensor '${s.name}' is given twice`);
    seen.add(s.name);
  }
  const ordered = [...specs].sort((a, b) => dtypeSize(b.dtype) - dtypeSize(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const layout: TensorEntry[] = [];
  // Built by hand: a JS object would move integer-like tensor names ahead of the others.
  const parts: string[] = metadata ? [`"__metadata__":${JSON.stringify(metadata)}`] : [];
  let pos = 0;
  for (const s of ordered) {
    const end = pos + numelOf(s.shape) * dtypeSize(s.dtype);
    layout.push({ name: s.name, dtype: s.dtype, shape: s.shape.slice(), begin: pos, end });
    parts.push(`${JSON.stringify(s.name)}:${JSON.stringify({ dtype: s.dtype, shape: s.shape, data_offsets: [pos, end] })}`);
    pos = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return { bytes, layout };
}
