// Append-only trace writer. Entries are buffered and written whole, with one
// write per flush, so a killed process leaves a file that ends on an entry
// boundary, and a live run's file is never more than ~100 ms behind.

import { closeSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { plugstorm } from "../gen/plugstorm.js";
import { entrySize, lengthBytes, MAX_ENTRY_BYTES, preamble, sealEntry, writeEntry } from "./format.js";
import { encodeRecordInto, encodedBuffer, entrySealed } from "./record-encoder.js";
import { retainCanonicalFrames } from "../telemetry/canonical-frames.js";

/**
 * The flush timer is unref'd so a trace never keeps a process alive; a process
 * that exits with records still buffered writes them on the way out.
 */
const openWriters = new Set<TraceWriter>();
function flushAll(): void {
  for (const w of openWriters) {
    try {
      w.flush();
    } catch {
      // Exiting anyway: one unwritable trace must not stop the others.
    }
  }
}

export interface TraceWriterOptions {
  /** Longest time an appended record waits in memory (default 100 ms). */
  flushIntervalMs?: number;
  /** Flush as soon as this much is buffered (default 1 MiB). */
  maxBufferBytes?: number;
  /**
   * Called once, at the first write that fails (disk full, I/O error): the
   * writer then stops writing (see TraceWriter.error). Never called for create().
   */
  onError?: (err: TraceWriteError) => void;
}

/** Name of the mark record a writer appends, if it still can, after a write failed: the trace ends early there. */
export const INCOMPLETE_MARK = "trace-incomplete";

/** A write to a trace file that failed; the message names the file. */
export class TraceWriteError extends Error {
  constructor(
    readonly path: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    super(`cannot write ${path}: ${ioErrorText(cause)}`, { cause });
    this.name = "TraceWriteError";
  }
}

/** "no space left on device (ENOSPC)" from Node's "ENOSPC: no space left on device, write". */
export function ioErrorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e.code === "string" && typeof e.message === "string") {
    const m = /^[A-Z0-9_]+: (.*?)(?:, \w+(?: '.*')?)?$/.exec(e.message);
    return `${m ? m[1] : e.message} (${e.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The buffer of the last writer closed, for the next one: a storm's grows to
 * ~1 MiB by doubling (~2 MiB allocated, in the large-object space, which
 * brings the next full GC nearer), and a campaign's worker opens a writer
 * per job. Only one is kept, the largest.
 */
let spare: Uint8Array | undefined;
const EMPTY = new Uint8Array(0);

function takeSpareBuffer(): Uint8Array | undefined {
  const b = spare;
  spare = undefined;
  return b;
}

/** Larger buffers (a huge record, a large maxBufferBytes) are not kept alive for a writer that may never come. */
const MAX_SPARE_BYTES = 4 * 1024 * 1024;

function keepSpareBuffer(b: Uint8Array): void {
  if (b.length <= MAX_SPARE_BYTES && (spare === undefined || b.length > spare.length)) spare = b;
}

export class TraceWriter {
  private fd: number | undefined;
  private buf: Uint8Array;
  private used = 0;
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  private written = 0;
  private readonly interval: number;
  private readonly maxBuffer: number;
  private failure: TraceWriteError | undefined;
  private dropped = 0;
  /** The last record appended (its tNs dates the INCOMPLETE_MARK); kept, not its tNs: a double read out of each record to store was an allocation per record. */
  private lastRecord: plugstorm.trace.v1.IRecord | null = null;
  /** Records in the file (count at the last successful flush). */
  private flushedRecords = 0;

  private readonly onError: ((err: TraceWriteError) => void) | undefined;

  private constructor(
    readonly path: string,
    fd: number,
    opts: TraceWriterOptions,
  ) {
    this.fd = fd;
    this.onError = opts.onError;
    this.interval = opts.flushIntervalMs ?? 100;
    this.maxBuffer = opts.maxBufferBytes ?? 1024 * 1024;
    this.buf = takeSpareBuffer() ?? new Uint8Array(Math.min(this.maxBuffer, 64 * 1024) + 64);
    openWriters.add(this);
    if (openWriters.size === 1) process.on("exit", flushAll);
    // Frames decoded from now on keep their received bytes for putRecord to copy.
    retainCanonicalFrames(1);
  }

  /**
   * Creates (or truncates) path and writes the preamble and header at once,
   * so even a run that dies before its first record leaves a readable trace.
   */
  static create(path: string, header: plugstorm.trace.v1.ITraceHeader, opts: TraceWriterOptions = {}): TraceWriter {
    const fd = openSync(path, "w");
    const w = new TraceWriter(path, fd, opts);
    w.put(preamble());
    w.putEntry(plugstorm.trace.v1.TraceHeader.encode(header).finish());
    w.flush();
    // A trace that cannot even hold its header is no trace: say so now.
    if (w.failure) {
      const err = w.failure;
      w.close();
      throw err;
    }
    return w;
  }

  /** Records appended so far; the index the next one gets. */
  get records(): number {
    return this.count;
  }

  /** Bytes written to the file so far (not counting the buffer). */
  get bytesWritten(): number {
    return this.written;
  }

  /** Size of the file once everything appended is written: bytes written plus bytes buffered. */
  get size(): number {
    return this.written + this.used;
  }

  /** The first write that failed; from then on appended records are dropped (counted in `dropped`). */
  get error(): TraceWriteError | undefined {
    return this.failure;
  }

  /** Records appended after a write failed, not in the file. */
  get droppedRecords(): number {
    return this.dropped;
  }

  get closed(): boolean {
    return this.fd === undefined;
  }

  /** Appends a record; returns its 0-based index. Throws after close(). */
  append(record: plugstorm.trace.v1.IRecord): number {
    if (this.fd === undefined) throw new Error(`trace ${this.path} is closed`);
    const index = this.count++;
    if (this.failure) {
      this.dropped++;
      return index;
    }
    this.lastRecord = record;
    this.putRecord(record);
    if (this.used >= this.maxBuffer) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.interval);
      // A trace waiting for its next flush must not keep the process alive.
      this.timer.unref();
    }
    return index;
  }

  /** Writes everything buffered now. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.fd === undefined || this.used === 0 || this.failure) return;
    let off = 0;
    try {
      // At explicit offsets: after a failed write the file is cut back, and the next write must land at the cut.
      while (off < this.used) off += writeSync(this.fd, this.buf, off, this.used - off, this.written + off);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.written += this.used;
    this.used = 0;
    this.flushedRecords = this.count;
  }

  /**
   * A write failed (disk full, I/O error): cut the file back to the last whole
   * flush, so it reads clean to there, and end it with an INCOMPLETE_MARK
   * record if that still fits (the cut freed at least the failed write's bytes).
   * Nothing is written after that; the error goes to onError, never thrown
   * (flushes run from timers and from exit).
   */
  private fail(cause: unknown): void {
    const fd = this.fd!;
    this.failure = new TraceWriteError(this.path, (cause as NodeJS.ErrnoException | undefined)?.code, cause);
    this.dropped += this.count - this.flushedRecords;
    this.used = 0;
    try {
      ftruncateSync(fd, this.written);
      const mark = plugstorm.trace.v1.Record.encode({ tNs: this.lastRecord?.tNs ?? 0, mark: { name: INCOMPLETE_MARK, detail: this.failure.message } }).finish();
      const out = new Uint8Array(entrySize(mark.length));
      const end = writeEntry(out, 0, mark);
      let off = 0;
      try {
        while (off < end) off += writeSync(fd, out, off, end - off, this.written + off);
        this.written += end;
      } catch {
        ftruncateSync(fd, this.written);
      }
    } catch {
      // The file cannot even be cut back: a reader finds a truncated tail, which it reports as such.
    }
    try {
      this.onError?.(this.failure);
    } catch {
      // The owner's trouble; the writer has stopped either way.
    }
  }

  /** Flushes and closes; idempotent. */
  close(): void {
    if (this.fd === undefined) return;
    try {
      this.flush();
    } finally {
      openWriters.delete(this);
      if (openWriters.size === 0) process.off("exit", flushAll);
      retainCanonicalFrames(-1);
      closeSync(this.fd);
      this.fd = undefined;
      keepSpareBuffer(this.buf);
      this.buf = EMPTY;
    }
  }

  /**
   * The record's entry, encoded in place: the message one byte past the
   * entry's start (where a length under 128 goes; a longer one moves it),
   * then the CRC. Records off the hand-written encoder's path go through
   * protobufjs; both give the same bytes.
   */
  private putRecord(record: plugstorm.trace.v1.IRecord): void {
    this.reserve(64);
    const start = this.used;
    const end = encodeRecordInto(record, this.buf, start + 1);
    if (end < 0) {
      this.putEntry(plugstorm.trace.v1.Record.encode(record).finish());
      return;
    }
    let buf = encodedBuffer();
    const len = end - start - 1;
    if (len > MAX_ENTRY_BYTES) throw new RangeError(`trace record of ${len} bytes is over the ${MAX_ENTRY_BYTES}-byte limit`);
    const n = lengthBytes(len);
    if (end + n - 1 + 4 > buf.length) {
      const nb = new Uint8Array(Math.max(buf.length * 2, end + n + 4));
      nb.set(buf.subarray(0, end));
      buf = nb;
    }
    this.buf = buf;
    if (entrySealed(end)) {
      // A guest frame's entry: its CRC was taken as the frame's bytes were copied in (n is 1).
      buf[start] = len;
      this.used = end + 4;
      return;
    }
    if (n > 1) buf.copyWithin(start + n, start + 1, end);
    this.used = sealEntry(buf, start, len);
  }

  private putEntry(msg: Uint8Array): void {
    if (msg.length > MAX_ENTRY_BYTES) throw new RangeError(`trace record of ${msg.length} bytes is over the ${MAX_ENTRY_BYTES}-byte limit`);
    this.reserve(entrySize(msg.length));
    this.used = writeEntry(this.buf, this.used, msg);
  }

  private put(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  private reserve(n: number): void {
    if (this.used + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.used + n) size *= 2;
    const nb = new Uint8Array(size);
    nb.set(this.buf.subarray(0, this.used));
    this.buf = nb;
  }
}
