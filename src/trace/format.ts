// The trace file layout of proto/TRACE.md: magic, version, then entries of
// varint length || message || CRC-32C(length || message).

import { crc32cRange } from "../telemetry/index.js";

export const TRACE_MAGIC = new Uint8Array([0x89, 0x50, 0x53, 0x54, 0x52, 0x0d, 0x0a, 0x1a]);
export const TRACE_VERSION = 1;
/** Magic plus the uint32 version. */
export const PREAMBLE_BYTES = TRACE_MAGIC.length + 4;
/** The largest message an entry may hold; anything longer is corruption. */
export const MAX_ENTRY_BYTES = 64 * 1024 * 1024;

/** The file's first bytes. */
export function preamble(): Uint8Array {
  const b = new Uint8Array(PREAMBLE_BYTES);
  b.set(TRACE_MAGIC);
  new DataView(b.buffer).setUint32(TRACE_MAGIC.length, TRACE_VERSION, true);
  return b;
}

/** A file that is not a trace at all (as opposed to a trace with a bad tail). */
export class TraceFormatError extends Error {
  constructor(
    readonly where: string,
    readonly offset: number,
    detail: string,
  ) {
    super(`${where}: not a plugstorm trace: ${detail} (at byte ${offset})`);
    this.name = "TraceFormatError";
  }
}

/** Checks magic and version; returns undefined when fine, else what is wrong. */
export function checkPreamble(b: Uint8Array): string | undefined {
  if (b.length < PREAMBLE_BYTES) return `file is ${b.length} bytes, shorter than the ${PREAMBLE_BYTES}-byte preamble`;
  for (let i = 0; i < TRACE_MAGIC.length; i++) if (b[i] !== TRACE_MAGIC[i]) return "bad magic (expected \\x89PSTR\\r\\n\\x1a)";
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(TRACE_MAGIC.length, true);
  if (v !== TRACE_VERSION) return `unsupported trace version ${v} (this plugstorm reads ${TRACE_VERSION})`;
  return undefined;
}

/** The byte offset checkPreamble's problem is at: the version's (8) when the magic is good, else 0. */
export function preambleProblemOffset(b: Uint8Array): number {
  if (b.length < PREAMBLE_BYTES) return 0;
  for (let i = 0; i < TRACE_MAGIC.length; i++) if (b[i] !== TRACE_MAGIC[i]) return 0;
  return TRACE_MAGIC.length;
}

/** Appends one entry for msg to out at pos (out must have room: entrySize(msg.length)). Returns the new pos. */
export function writeEntry(out: Uint8Array, pos: number, msg: Uint8Array): number {
  const start = pos;
  let n = msg.length;
  while (n > 0x7f) {
    out[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[pos++] = n;
  out.set(msg, pos);
  pos += msg.length;
  const crc = crc32cRange(out, start, pos);
  out[pos++] = crc & 0xff;
  out[pos++] = (crc >>> 8) & 0xff;
  out[pos++] = (crc >>> 16) & 0xff;
  out[pos++] = crc >>> 24;
  return pos;
}

/** Upper bound of an entry's size for a message of n bytes. */
export function entrySize(n: number): number {
  return n + 5 + 4;
}

export type EntryParse =
  | { kind: "ok"; msgStart: number; msgEnd: number; next: number }
  /** Not enough bytes yet: a reader with more input retries; at end of file this is a truncated tail. */
  | { kind: "short"; detail: string }
  | { kind: "corrupt"; detail: string };

/** Parses the entry at b[pos..end). */
export function parseEntry(b: Uint8Array, pos: number, end: number): EntryParse {
  let len = 0;
  let shift = 0;
  let p = pos;
  for (;;) {
    if (p >= end) return { kind: "short", detail: "length cut off" };
    const byte = b[p++]!;
    if (shift === 28 && byte > 0x0f) return { kind: "corrupt", detail: "length varint overflows 32 bits" };
    len += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) break;
    shift += 7;
  }
  if (len > MAX_ENTRY_BYTES) return { kind: "corrupt", detail: `entry claims ${len} bytes, over the ${MAX_ENTRY_BYTES}-byte limit` };
  const msgStart = p;
  const msgEnd = p + len;
  if (msgEnd + 4 > end) return { kind: "short", detail: `entry of ${len} bytes cut off after ${Math.max(0, end - msgStart)}` };
  const want = (b[msgEnd]! | (b[msgEnd + 1]! << 8) | (b[msgEnd + 2]! << 16) | (b[msgEnd + 3]! << 24)) >>> 0;
  if (crc32cRange(b, pos, msgEnd) !== want) return { kind: "corrupt", detail: "CRC mismatch" };
  return { kind: "ok", msgStart, msgEnd, next: msgEnd + 4 };
}
