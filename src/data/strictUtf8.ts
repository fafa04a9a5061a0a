import { validCharLen } from '../tokenizer/utf8.js';

/**
 * Text inputs are decoded strictly: a byte sequence that is not UTF-8 is an error that says where it
 * is, never a silent U+FFFD that would then be trained on.
 */
export class InvalidUtf8 extends Error {
  constructor(
    /** Index of the first bad byte in the decoded buffer. */
    readonly index: number,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'InvalidUtf8';
  }
}

// ignoreBOM: a U+FEFF inside the text is kept; callers strip a leading byte-order mark themselves.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export const UTF8_BOM = [0xef, 0xbb, 0xbf] as const;

export const startsWithBom = (b: Uint8Array) => b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;

/** Index of the first byte that does not start a well-formed UTF-8 character, or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    if (bytes[i] < 0x80) {
      i++;
      continue;
    }
    const n = validCharLen(bytes, i, bytes.length);
    if (n === 0) return i;
    i += n;
  }
  return -1;
}

/** What the bad bytes look like, so the message can say how to fix the file. */
function guessEncoding(bytes: Uint8Array, i: number): string {
  if (i <= 1 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))) {
    return 'it starts with a UTF-16 byte-order mark: convert it with `iconv -f UTF-16 -t UTF-8`';
  }
  const b = bytes[i];
  const next = bytes[i + 1];
  // In Latin-1 / Windows-1252 text a letter like é is one high byte, rarely followed by a UTF-8
  // continuation byte (0x80-0xbf); a broken UTF-8 sequence usually is.
  if (b >= 0x80 && (next === undefined || next < 0x80 || next > 0xbf)) {
    return 'it looks like Latin-1 or Windows-1252 text: convert it with `iconv -f WINDOWS-1252 -t UTF-8`';
  }
  return 'the text must be UTF-8';
}

/** Decodes UTF-8 or throws InvalidUtf8 naming the first bad byte (relative to `bytes`). */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    const i = firstInvalidUtf8(bytes);
    // TextDecoder and the validator agree on what is malformed; -1 would be a bug in one of them.
    const at = i < 0 ? bytes.length : i;
    const shown = [...bytes.subarray(at, at + 4)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    throw new InvalidUtf8(at, `bytes ${shown || '(end of input)'}; ${guessEncoding(bytes, at)}`);
  }
}

/** Counts "\n" bytes in bytes[from, to): line numbers of positions inside a record. */
export function countNewlines(bytes: Uint8Array, from = 0, to = bytes.length): number {
  let n = 0;
  for (let i = from; i < to; i++) if (bytes[i] === 10) n++;
  return n;
}

/** Sizes in decimal megabytes, as limits are given: "300.0 MB". */
export const formatMB = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e5 ? 3 : 1)} MB`;
