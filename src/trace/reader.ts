// Trace readers: from a Buffer (tests, tools) and from a file as an async
// iterator (traces of long storms do not fit in memory as objects). Both stop
// at the first entry that is not whole and good and say where (proto/TRACE.md).

import { open } from "node:fs/promises";
import { plugstorm } from "../gen/plugstorm.js";
import { checkPreamble, parseEntry, preambleProblemOffset, PREAMBLE_BYTES, TraceFormatError } from "./format.js";

type TraceHeader = plugstorm.trace.v1.TraceHeader;
type TraceRecord = plugstorm.trace.v1.Record;

/** How a read ended. */
export interface TraceStatus {
  /** Records read (all good). */
  records: number;
  /** "clean": the file ended after a whole entry; otherwise the tail from `offset` is unusable. */
  tail: "clean" | "truncated" | "corrupt";
  /** Byte offset where the good part ends (file size when clean). */
  offset: number;
  /** Bytes from offset to the end of the file that were not read as records. */
  bytesLeft: number;
  /** What was wrong with the tail, for people. */
  detail?: string;
}

export interface ParsedTrace {
  header: TraceHeader;
  records: TraceRecord[];
  status: TraceStatus;
}

function decodeHeader(b: Uint8Array, where: string): { header: TraceHeader; next: number } {
  const bad = checkPreamble(b);
  if (bad) throw new TraceFormatError(where, preambleProblemOffset(b), bad);
  const e = parseEntry(b, PREAMBLE_BYTES, b.length);
  if (e.kind !== "ok") throw new TraceFormatError(where, PREAMBLE_BYTES, `header entry ${e.kind === "short" ? "cut off" : "corrupt"}: ${e.detail}`);
  try {
    return { header: plugstorm.trace.v1.TraceHeader.decode(b.subarray(e.msgStart, e.msgEnd)), next: e.next };
  } catch (err) {
    throw new TraceFormatError(where, PREAMBLE_BYTES, `header does not decode: ${(err as Error).message}`);
  }
}

/** Decodes a record entry's message, or says why it is corrupt. */
function decodeRecord(b: Uint8Array, start: number, end: number): TraceRecord | string {
  try {
    return plugstorm.trace.v1.Record.decode(b.subarray(start, end));
  } catch (err) {
    return `record does not decode: ${(err as Error).message}`;
  }
}

/** Reads a whole trace held in memory. Throws TraceFormatError if it is not a trace. */
export function parseTrace(bytes: Uint8Array, where = "trace"): ParsedTrace {
  const { header, next } = decodeHeader(bytes, where);
  const records: TraceRecord[] = [];
  let pos = next;
  const end = bytes.length;
  while (pos < end) {
    const e = parseEntry(bytes, pos, end);
    if (e.kind !== "ok") {
      return { header, records, status: { records: records.length, tail: e.kind === "short" ? "truncated" : "corrupt", offset: pos, bytesLeft: end - pos, detail: e.detail } };
    }
    const r = decodeRecord(bytes, e.msgStart, e.msgEnd);
    if (typeof r === "string") return { header, records, status: { records: records.length, tail: "corrupt", offset: pos, bytesLeft: end - pos, detail: r } };
    records.push(r);
    pos = e.next;
  }
  return { header, records, status: { records: records.length, tail: "clean", offset: pos, bytesLeft: 0 } };
}

const CHUNK = 256 * 1024;

/**
 * A trace file being read: the header is read on open; iterate for records
 * (once). `status` is set when the iteration has ended, also by break.
 */
export class TraceFile implements AsyncIterable<TraceRecord> {
  status: TraceStatus | undefined;
  private used = false;

  constructor(
    readonly path: string,
    readonly header: TraceHeader,
    private readonly firstRecordOffset: number,
  ) {}

  async *[Symbol.asyncIterator](): AsyncIterator<TraceRecord> {
    if (this.used) throw new Error(`trace ${this.path} is already being read; open it again to re-read`);
    this.used = true;
    const fh = await open(this.path, "r");
    let count = 0;
    let fileOff = this.firstRecordOffset; // file offset of buf[0]
    let buf: Buffer = Buffer.alloc(0);
    let pos = 0;
    let eof = false;
    try {
      for (;;) {
        const e = parseEntry(buf, pos, buf.length);
        if (e.kind === "ok") {
          const r = decodeRecord(buf, e.msgStart, e.msgEnd);
          if (typeof r === "string") {
            this.status = { records: count, tail: "corrupt", offset: fileOff + pos, bytesLeft: await this.left(fh, fileOff + pos), detail: r };
            return;
          }
          pos = e.next;
          count++;
          this.status = { records: count, tail: "clean", offset: fileOff + pos, bytesLeft: 0 };
          yield r;
          continue;
        }
        if (e.kind === "corrupt") {
          this.status = { records: count, tail: "corrupt", offset: fileOff + pos, bytesLeft: await this.left(fh, fileOff + pos), detail: e.detail };
          return;
        }
        if (eof) {
          const left = buf.length - pos;
          this.status = left === 0
            ? { records: count, tail: "clean", offset: fileOff + pos, bytesLeft: 0 }
            : { records: count, tail: "truncated", offset: fileOff + pos, bytesLeft: left, detail: e.detail };
          return;
        }
        // Need more bytes: keep the unread part and read on (a big entry grows the buffer).
        const rest = buf.subarray(pos);
        const more = Buffer.allocUnsafe(Math.max(CHUNK, rest.length));
        const { bytesRead } = await fh.read(more, 0, more.length, fileOff + buf.length);
        if (bytesRead === 0) eof = true;
        fileOff += pos;
        buf = Buffer.concat([rest, more.subarray(0, bytesRead)]);
        pos = 0;
      }
    } finally {
      if (this.status === undefined) this.status = { records: count, tail: "clean", offset: fileOff + pos, bytesLeft: 0 };
      await fh.close();
    }
  }

  private async left(fh: import("node:fs/promises").FileHandle, offset: number): Promise<number> {
    return Math.max(0, (await fh.stat()).size - offset);
  }
}

/**
 * Opens a trace: reads and checks the preamble and header (throws
 * TraceFormatError if the file is not a trace, or the fs error if unreadable).
 */
export async function readTrace(path: string): Promise<TraceFile> {
  const fh = await open(path, "r");
  try {
    // Headers hold the scenario text: read until the header entry is whole.
    let size = 64 * 1024;
    const total = (await fh.stat()).size;
    for (;;) {
      const b = Buffer.alloc(Math.min(size, total));
      const { bytesRead } = await fh.read(b, 0, b.length, 0);
      const view = b.subarray(0, bytesRead);
      const bad = checkPreamble(view);
      if (bad) throw new TraceFormatError(path, preambleProblemOffset(view), bad);
      const e = parseEntry(view, PREAMBLE_BYTES, view.length);
      if (e.kind === "short" && bytesRead < total) {
        size *= 4;
        continue;
      }
      const { header, next } = decodeHeader(view, path);
      return new TraceFile(path, header, next);
    }
  } finally {
    await fh.close();
  }
}
