// Trace readers: from a Buffer (tests, tools) and from a file as an async
// iterator (traces of long storms do not fit in memory as objects). Both read
// past damage: after an entry that is not whole and good they resynchronise
// at the next good entry and count what they skipped (proto/TRACE.md "Damage").

import { open } from "node:fs/promises";
import protobuf from "protobufjs/minimal.js";
import { plugstorm } from "../gen/plugstorm.js";
import { chainNext, checkPreamble, findNextEntry, parseEntry, preambleProblemOffset, PREAMBLE_BYTES, recordShape, TraceFormatError } from "./format.js";

type TraceHeader = plugstorm.trace.v1.TraceHeader;
type TraceRecord = plugstorm.trace.v1.Record;

/** Bytes of a trace that were not read as records. */
export interface DamagedRegion {
  /** File offset where the damage starts. */
  offset: number;
  /** Bytes skipped from offset to the next good entry (or to the end of the file). */
  bytes: number;
  /** corrupt: bad bytes; truncated: the file ends inside an entry. */
  kind: "corrupt" | "truncated";
  /** What was wrong at offset, for people. */
  detail: string;
  /** Records read before the region: the number the next good record gets. */
  atRecord: number;
  /**
   * Records whose bytes were lost, when the damaged bytes chain by their own
   * length fields exactly to the next good entry (a cut tail counts 1); null
   * when that cannot be told.
   */
  recordsLost: number | null;
}

/** How a read ended. */
export interface TraceStatus {
  /** Records read (all good). */
  records: number;
  /** How the file ends: after a whole entry ("clean"), or inside damage that runs to the end. */
  tail: "clean" | "truncated" | "corrupt";
  /** Byte offset where the good part ends (file size when the tail is clean). */
  offset: number;
  /** Bytes from offset to the end of the file that were not read as records. */
  bytesLeft: number;
  /** What was wrong with the tail, for people. */
  detail?: string;
  /** Every region skipped, in file order, the damaged tail included. Empty: the trace is intact. */
  damaged: DamagedRegion[];
  /** Sum of the regions' bytes. */
  bytesSkipped: number;
}

export interface ParsedTrace {
  header: TraceHeader;
  records: TraceRecord[];
  status: TraceStatus;
}

/** True when nothing of the trace was skipped. */
export function traceIntact(s: TraceStatus): boolean {
  return s.damaged.length === 0;
}

/** One line on what a damaged trace lost ("" when intact). */
export function damageNote(s: TraceStatus): string {
  if (s.damaged.length === 0) return "";
  const lost = s.damaged.map((d) => d.recordsLost);
  const known = lost.every((n) => n !== null);
  const n = lost.reduce<number>((a, b) => a + (b ?? 0), 0);
  const regions = s.damaged.length === 1 ? "1 damaged region" : `${s.damaged.length} damaged regions`;
  const recs = known ? `${n} record${n === 1 ? "" : "s"} lost` : n > 0 ? `at least ${n} records lost` : "an unknown number of records lost";
  const first = s.damaged[0]!;
  const where = first.atRecord === 0 ? "before the first record" : `after record #${first.atRecord - 1}`;
  return `${s.bytesSkipped} byte${s.bytesSkipped === 1 ? "" : "s"} not checked in ${regions} (${recs}); first at byte ${first.offset} ${where}: ${first.kind}, ${first.detail}`;
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

/**
 * Decodes record entries' messages where they lie in a buffer. One protobufjs
 * Reader serves every record of the buffer, moved to each record's bytes,
 * rather than a view and a Reader made per record (the view alone was ~4%
 * of a read's CPU profile).
 */
class RecordDecoder {
  private buf: Uint8Array | undefined;
  private reader: protobuf.Reader | undefined;

  /** The record in b[start, end), or why it is corrupt. */
  decode(b: Uint8Array, start: number, end: number): TraceRecord | string {
    let r = this.reader;
    if (r === undefined || this.buf !== b) {
      r = this.reader = protobuf.Reader.create(b);
      this.buf = b;
    }
    // A failed decode leaves the reader anywhere: both bounds are set for every record.
    r.pos = start;
    r.len = end;
    try {
      return plugstorm.trace.v1.Record.decode(r);
    } catch (err) {
      return `record does not decode: ${(err as Error).message}`;
    }
  }
}

/**
 * True when the entry at pos, not yet whole in buf, already cannot be a
 * Record: a damaged length claiming megabytes is not read in before it is judged.
 */
function notARecord(buf: Uint8Array, pos: number, end: number): boolean {
  const next = chainNext(buf, pos, end);
  if (next < 0) return false;
  let p = pos;
  while (buf[p]! & 0x80) p++;
  const msgStart = p + 1;
  const msgEnd = next - 4;
  return recordShape(buf, msgStart, msgEnd, end) === "no";
}

interface OpenRegion {
  offset: number;
  kind: "corrupt" | "truncated";
  detail: string;
  atRecord: number;
  /** Where the chain of length fields from offset has got to; -1 once broken. */
  chain: number;
  links: number;
}

type Step =
  | { kind: "record"; record: TraceRecord; next: number }
  /** Read more; keep the buffer from keep on. */
  | { kind: "more"; keep: number }
  | { kind: "end" };

/**
 * The reading of entries after the header, over a window of the file:
 * buf[0] is at file offset base. Shared by the in-memory and file readers so
 * both read the same records and report the same damage.
 */
class EntryReader {
  records = 0;
  readonly damaged: DamagedRegion[] = [];
  private readonly decoder = new RecordDecoder();
  private open: OpenRegion | null = null;
  /** Where the search for the next good entry goes on (file offset). */
  private searchFrom = 0;
  /** Offset just after the last good entry. */
  goodEnd: number;

  constructor(firstRecordOffset: number) {
    this.goodEnd = firstRecordOffset;
  }

  step(buf: Uint8Array, pos: number, base: number, eof: boolean): Step {
    const end = buf.length;
    for (;;) {
      if (this.open === null) {
        if (pos >= end) {
          if (eof) return { kind: "end" };
          return { kind: "more", keep: pos };
        }
        const e = parseEntry(buf, pos, end);
        if (e.kind === "ok") {
          const r = this.decoder.decode(buf, e.msgStart, e.msgEnd);
          if (typeof r !== "string") {
            this.records++;
            this.goodEnd = base + e.next;
            return { kind: "record", record: r, next: e.next };
          }
          this.begin(base + pos, "corrupt", r);
        } else if (e.kind === "short") {
          // Judged on the bytes there are, the same in both readers: a damaged
          // length claiming megabytes is not read in before it is judged.
          if (notARecord(buf, pos, end)) this.begin(base + pos, "corrupt", "the bytes after the length are not a Record");
          else if (!eof) return { kind: "more", keep: pos };
          else this.begin(base + pos, "truncated", e.detail);
        } else {
          this.begin(base + pos, "corrupt", e.detail);
        }
      }
      // In damage: follow the length chain as far as the bytes go, then search.
      const o = this.open!;
      let from = this.searchFrom - base;
      for (;;) {
        const f = findNextEntry(buf, from, end, eof);
        this.follow(buf, base, f.kind === "none" ? end : f.pos, eof);
        if (f.kind === "more") {
          this.searchFrom = base + f.pos;
          // Keep the bytes the chain still needs to read too.
          const chainAt = o.chain >= 0 && o.chain < base + f.pos ? o.chain - base : f.pos;
          return { kind: "more", keep: Math.max(0, Math.min(f.pos, chainAt)) };
        }
        if (f.kind === "none") {
          this.close(base + end, true);
          return { kind: "end" };
        }
        const r = this.decoder.decode(buf, f.msgStart, f.msgEnd);
        if (typeof r === "string") {
          from = f.pos + 1;
          continue;
        }
        this.close(base + f.pos, false);
        this.records++;
        this.goodEnd = base + f.next;
        return { kind: "record", record: r, next: f.next };
      }
    }
  }

  private begin(offset: number, kind: OpenRegion["kind"], detail: string): void {
    this.open = { offset, kind, detail, atRecord: this.records, chain: offset, links: 0 };
    this.searchFrom = offset + 1;
  }

  /** Advances the length chain over the bytes in buf before limit (file offsets via base). */
  private follow(buf: Uint8Array, base: number, limit: number, eof: boolean): void {
    const o = this.open!;
    while (o.chain >= 0 && o.chain - base < limit && o.chain - base >= 0) {
      const next = chainNext(buf, o.chain - base, buf.length);
      if (next === -2 && !eof) return; // cut by the window: read on the next step
      if (next < 0) {
        o.chain = -1;
        return;
      }
      o.chain = base + next;
      o.links++;
    }
  }

  private close(at: number, atEof: boolean): void {
    const o = this.open!;
    let lost: number | null = null;
    if (atEof && o.kind === "truncated") lost = 1;
    else if (o.chain === at) lost = o.links;
    // An entry that seemed cut off by the end of the file but has good entries
    // after it was a damaged length, not a truncation.
    const kind = !atEof && o.kind === "truncated" ? "corrupt" : o.kind;
    const detail = kind === o.kind ? o.detail : `length runs past the end of the file (${o.detail})`;
    this.damaged.push({ offset: o.offset, bytes: at - o.offset, kind, detail, atRecord: o.atRecord, recordsLost: lost });
    this.open = null;
  }

  status(fileSize: number): TraceStatus {
    const bytesSkipped = this.damaged.reduce((n, d) => n + d.bytes, 0);
    const last = this.damaged[this.damaged.length - 1];
    if (last && last.offset + last.bytes === fileSize && last.offset >= this.goodEnd) {
      return { records: this.records, tail: last.kind, offset: last.offset, bytesLeft: last.bytes, detail: last.detail, damaged: this.damaged, bytesSkipped };
    }
    return { records: this.records, tail: "clean", offset: fileSize, bytesLeft: 0, damaged: this.damaged, bytesSkipped };
  }
}

/** Reads a whole trace held in memory. Throws TraceFormatError if it is not a trace. */
export function parseTrace(bytes: Uint8Array, where = "trace"): ParsedTrace {
  const { header, next } = decodeHeader(bytes, where);
  const records: TraceRecord[] = [];
  const reader = new EntryReader(next);
  let pos = next;
  for (;;) {
    const s = reader.step(bytes, pos, 0, true);
    if (s.kind !== "record") break;
    records.push(s.record);
    pos = s.next;
  }
  return { header, records, status: reader.status(bytes.length) };
}

const CHUNK = 256 * 1024;

/**
 * A trace file being read: the header is read on open; iterate for records
 * (once). `status` is set when the iteration has ended, also by break; while
 * it runs, `damaged` lists the regions skipped so far (a region is listed
 * before the first record after it is yielded).
 */
export class TraceFile implements AsyncIterable<TraceRecord> {
  status: TraceStatus | undefined;
  private used = false;
  private reader: EntryReader | undefined;

  constructor(
    readonly path: string,
    readonly header: TraceHeader,
    private readonly firstRecordOffset: number,
  ) {}

  /** Damaged regions met so far. */
  get damaged(): readonly DamagedRegion[] {
    return this.reader?.damaged ?? [];
  }

  [Symbol.asyncIterator](): AsyncIterator<TraceRecord> {
    return this.read(0) as AsyncGenerator<TraceRecord>;
  }

  /**
   * The records in batches of up to maxRecords; a batch goes out when full
   * or before the reader waits on the file. A reader of a long trace then
   * waits once a batch, not once a record (`npm run bench -- trace`:
   * 0.64-0.68x the time of reading record by record, the promise per record
   * being the difference). Instead of the records, iterate these (once). A batch's damage is in `damaged`
   * when the batch comes; each region's atRecord places it among the
   * records (the index of the first good record after it). `status` on a
   * break counts the whole batch as read.
   */
  batches(maxRecords = 4096): AsyncIterable<TraceRecord[]> {
    if (!(maxRecords >= 1)) throw new RangeError(`batches: maxRecords must be at least 1, got ${maxRecords}`);
    return { [Symbol.asyncIterator]: () => this.read(maxRecords) as AsyncGenerator<TraceRecord[]> };
  }

  /** The reading loop: records one by one (batch 0) or in batches of up to `batch`. */
  private async *read(batch: number): AsyncGenerator<TraceRecord | TraceRecord[]> {
    if (this.used) throw new Error(`trace ${this.path} is already being read; open it again to re-read`);
    this.used = true;
    const fh = await open(this.path, "r");
    const reader = new EntryReader(this.firstRecordOffset);
    this.reader = reader;
    let base = this.firstRecordOffset; // file offset of buf[0]
    let buf: Buffer = Buffer.alloc(0);
    let pos = 0;
    let eof = false;
    let ended = false;
    let out: TraceRecord[] = [];
    try {
      for (;;) {
        const s = reader.step(buf, pos, base, eof);
        if (s.kind === "record") {
          pos = s.next;
          if (batch === 0) yield s.record;
          else if (out.push(s.record) >= batch) {
            yield out;
            out = [];
          }
          continue;
        }
        // Whatever is whole goes out before waiting on the file.
        if (out.length > 0) {
          yield out;
          out = [];
        }
        if (s.kind === "end") {
          ended = true;
          return;
        }
        // Need more bytes: keep the unread part and read on (a big entry grows the buffer).
        const rest = buf.subarray(s.keep);
        const more = Buffer.allocUnsafe(Math.max(CHUNK, rest.length));
        const { bytesRead } = await fh.read(more, 0, more.length, base + buf.length);
        if (bytesRead === 0) eof = true;
        base += s.keep;
        pos -= s.keep;
        if (pos < 0) pos = 0;
        buf = Buffer.concat([rest, more.subarray(0, bytesRead)]);
      }
    } finally {
      // A reading stopped early (break) describes what it read; a finished one the whole file.
      this.status = ended ? reader.status(base + buf.length) : { ...reader.status(reader.goodEnd), records: reader.records };
      await fh.close();
    }
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
