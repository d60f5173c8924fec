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
  out.set(msg, pos + lengthBytes(msg.length));
  return sealEntry(out, pos, msg.length);
}

/** Bytes of an entry's length varint for a message of n bytes. */
export function lengthBytes(n: number): number {
  let k = 1;
  for (let l = n >>> 7; l > 0; l >>>= 7) k++;
  return k;
}

/**
 * Completes the entry at pos around the n-byte message already placed at
 * pos + lengthBytes(n) (encoded there in place, or copied by writeEntry):
 * writes its length before it and its CRC after it. Returns the entry's end.
 */
export function sealEntry(out: Uint8Array, pos: number, n: number): number {
  const start = pos;
  let l = n;
  while (l > 0x7f) {
    out[pos++] = (l & 0x7f) | 0x80;
    l >>>= 7;
  }
  out[pos++] = l;
  pos += n;
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

/** Reads a base-128 varint at b[p..end); returns [value, next] or a reason. */
function varint(b: Uint8Array, p: number, end: number): [number, number] | "short" | "bad" {
  let v = 0;
  for (let shift = 0; shift < 64; shift += 7) {
    if (p >= end) return "short";
    const byte = b[p++]!;
    if (shift < 49) v += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [v, p];
  }
  return "bad";
}

/**
 * Whether msg bytes b[start..avail) can begin a Record as the writer writes
 * it: top-level fields t_ns (1, varint) and one or more bodies (10..21,
 * length-delimited), at least one body, each field inside msgEnd. Cheap: it
 * walks fields, not their contents, so a resynchronising reader can reject
 * most offsets of a damaged region without a CRC over a length it claims.
 * "more" means the walk reached avail before msgEnd with nothing wrong yet.
 */
export function recordShape(b: Uint8Array, start: number, msgEnd: number, avail: number): "yes" | "no" | "more" {
  const end = Math.min(msgEnd, avail);
  let p = start;
  let bodies = 0;
  while (p < msgEnd) {
    if (p >= end) return "more";
    const tag = varint(b, p, end);
    if (tag === "short") return end < msgEnd ? "more" : "no";
    if (tag === "bad") return "no";
    const field = Math.floor(tag[0] / 8);
    const wire = tag[0] & 7;
    p = tag[1];
    if (field === 1 && wire === 0) {
      const v = varint(b, p, end);
      if (v === "short") return end < msgEnd ? "more" : "no";
      if (v === "bad") return "no";
      p = v[1];
    } else if (field >= 10 && field <= 21 && wire === 2) {
      const n = varint(b, p, end);
      if (n === "short") return end < msgEnd ? "more" : "no";
      if (n === "bad") return "no";
      p = n[1] + n[0];
      bodies++;
    } else {
      return "no";
    }
  }
  return p === msgEnd && bodies > 0 ? "yes" : "no";
}

export type ResyncScan =
  /** A good entry (length, whole, CRC, Record shape) starts at pos; the caller still decodes it. */
  | { kind: "found"; pos: number; msgStart: number; msgEnd: number; next: number }
  /** Cannot tell for the entry at pos without bytes past end: read more, keep from pos. */
  | { kind: "more"; pos: number }
  /** No entry starts in [from, end) and end is the end of the file. */
  | { kind: "none" };

/**
 * The resynchronisation search of proto/TRACE.md "Damage": the smallest
 * offset >= from at which a good entry begins. eof says end is the file's end
 * (an entry that would run past it cannot be good).
 */
export function findNextEntry(b: Uint8Array, from: number, end: number, eof: boolean): ResyncScan {
  for (let p = from; p < end; p++) {
    const len = varint(b, p, end);
    if (len === "short") {
      if (eof) continue;
      return { kind: "more", pos: p };
    }
    if (len === "bad" || len[0] > MAX_ENTRY_BYTES) continue;
    const msgStart = len[1];
    const msgEnd = msgStart + len[0];
    const shape = recordShape(b, msgStart, msgEnd, end);
    if (shape === "no") continue;
    if (msgEnd + 4 > end) {
      if (eof) continue;
      return { kind: "more", pos: p };
    }
    if (shape === "more") continue; // cannot happen once the message is whole
    const want = (b[msgEnd]! | (b[msgEnd + 1]! << 8) | (b[msgEnd + 2]! << 16) | (b[msgEnd + 3]! << 24)) >>> 0;
    if (crc32cRange(b, p, msgEnd) !== want) continue;
    return { kind: "found", pos: p, msgStart, msgEnd, next: msgEnd + 4 };
  }
  return { kind: "none" };
}

/**
 * Where the entry at b[p] would end by its own length field (for counting the
 * records a damaged region held): -1 when the length is malformed, -2 when it
 * is cut off at end.
 */
export function chainNext(b: Uint8Array, p: number, end: number): number {
  const len = varint(b, p, end);
  if (len === "short") return -2;
  if (len === "bad" || len[0] > MAX_ENTRY_BYTES) return -1;
  return len[1] + len[0] + 4;
}
