// Append-only trace writer. Entries are buffered and written whole, with one
// write per flush, so a killed process leaves a file that ends on an entry
// boundary, and a live run's file is never more than ~100 ms behind.

import { closeSync, openSync, writeSync } from "node:fs";
import { plugstorm } from "../gen/plugstorm.js";
import { entrySize, MAX_ENTRY_BYTES, preamble, writeEntry } from "./format.js";

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

  private constructor(
    readonly path: string,
    fd: number,
    opts: TraceWriterOptions,
  ) {
    this.fd = fd;
    this.interval = opts.flushIntervalMs ?? 100;
    this.maxBuffer = opts.maxBufferBytes ?? 1024 * 1024;
    this.buf = new Uint8Array(Math.min(this.maxBuffer, 64 * 1024) + 64);
    openWriters.add(this);
    if (openWriters.size === 1) process.on("exit", flushAll);
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

  get closed(): boolean {
    return this.fd === undefined;
  }

  /** Appends a record; returns its 0-based index. Throws after close(). */
  append(record: plugstorm.trace.v1.IRecord): number {
    if (this.fd === undefined) throw new Error(`trace ${this.path} is closed`);
    this.putEntry(plugstorm.trace.v1.Record.encode(record).finish());
    if (this.used >= this.maxBuffer) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.interval);
      // A trace waiting for its next flush must not keep the process alive.
      this.timer.unref();
    }
    return this.count++;
  }

  /** Writes everything buffered now. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.fd === undefined || this.used === 0) return;
    let off = 0;
    while (off < this.used) off += writeSync(this.fd, this.buf, off, this.used - off);
    this.written += this.used;
    this.used = 0;
  }

  /** Flushes and closes; idempotent. */
  close(): void {
    if (this.fd === undefined) return;
    try {
      this.flush();
    } finally {
      openWriters.delete(this);
      if (openWriters.size === 0) process.off("exit", flushAll);
      closeSync(this.fd);
      this.fd = undefined;
    }
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
