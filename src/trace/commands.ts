// The whole of `plugstorm trace cat` and `plugstorm trace export`, as functions
// returning exit codes (0 done, 2 the trace could not be read or the output
// not written), so the CLI and tests call the same thing.

import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import type { Writable } from "node:stream";
import type { plugstorm } from "../gen/plugstorm.js";
import { encodePerfetto, toChromeJson } from "./perfetto.js";
import { damageNote, readTrace, type DamagedRegion, type TraceFile, type TraceStatus } from "./reader.js";
import { formatHeader, formatRecord, headerToJson, recordToJson } from "./text.js";
import { RecordFilter } from "./filter.js";
import { buildTimeline } from "./timeline.js";

export interface TraceCatOptions {
  /** JSON lines ({"type":"header"|"record"|"status",...}) instead of text. */
  json?: boolean;
  /** Default process.stdout. */
  out?: Writable;
  /** Where "cannot read" goes; default process.stderr. */
  err?: Writable;
  /** Only the records of this NIC (QEMU id). */
  nic?: string;
  /** Only records at or after this trace time (ns). */
  fromNs?: number;
  /** Only records at or before this trace time (ns). */
  toNs?: number;
}

class Batched {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly out: Writable) {}
  async line(s: string): Promise<void> {
    this.parts.push(s, "\n");
    this.size += s.length + 1;
    if (this.size >= 64 * 1024) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const chunk = this.parts.join("");
    this.parts = [];
    this.size = 0;
    try {
      if (!this.out.write(chunk)) await once(this.out, "drain");
    } catch (e) {
      throw new OutputError(e);
    }
  }
}

/** Writing our output failed (the reader went away, a full disk): not a problem with the trace. */
class OutputError extends Error {
  constructor(readonly failure: unknown) {
    super(failure instanceof Error ? failure.message : String(failure));
  }
  get brokenPipe(): boolean {
    return (this.failure as NodeJS.ErrnoException | undefined)?.code === "EPIPE";
  }
}

/**
 * Why a trace could not be read, without the path (the reader's own messages
 * start with it, and every caller says "cannot read trace PATH: " first).
 */
export function whyUnreadable(path: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "is a directory";
  const m = e instanceof Error ? e.message : String(e);
  return m.startsWith(`${path}: `) ? m.slice(path.length + 2) : m;
}

async function open(path: string, command: string, err: Writable): Promise<TraceFile | undefined> {
  try {
    return await readTrace(path);
  } catch (e) {
    err.write(`plugstorm ${command}: cannot read trace ${path}: ${whyUnreadable(path, e)}\n`);
    return undefined;
  }
}

function tailNote(s: TraceStatus): string {
  return `trace damaged: ${damageNote(s)}; ${s.records} good record(s) read${s.tail !== "clean" ? `; it ends ${s.tail} at byte ${s.offset}` : ""}`;
}

/** Where a damaged region sits among the records, for a line between them. */
function regionNote(d: DamagedRegion): string {
  const lost = d.recordsLost === null ? "records lost: unknown" : `${d.recordsLost} record${d.recordsLost === 1 ? "" : "s"} lost`;
  return `damaged: ${d.bytes} byte(s) skipped at byte ${d.offset} (${d.kind}: ${d.detail}; ${lost})`;
}

/** Prints a trace: a header block, one line per record, a note if the tail is bad. Returns 0, 2 if unreadable or the output cannot be written, 141 (quietly) if the reader went away. */
export async function traceCat(path: string, opts?: TraceCatOptions): Promise<number>;
/** The same, with the output stream first. */
export async function traceCat(path: string, out: Writable, opts?: Omit<TraceCatOptions, "out">): Promise<number>;
export async function traceCat(path: string, a?: TraceCatOptions | Writable, b?: Omit<TraceCatOptions, "out">): Promise<number> {
  const opts: TraceCatOptions = isWritable(a) ? { ...b, out: a } : (a ?? {});
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const trace = await open(path, "trace cat", err);
  if (!trace) return 2;
  const w = new Batched(out);
  const filtering = opts.nic !== undefined || opts.fromNs !== undefined || opts.toNs !== undefined;
  const filter = filtering ? new RecordFilter(opts) : undefined;
  try {
    if (opts.json) await w.line(JSON.stringify({ type: "header", ...headerToJson(trace.header) }));
    else await w.line(formatHeader(trace.header));
    let i = 0;
    let shown = 0;
    let regions = 0;
    for await (const r of trace) {
      // Damage is shown where it sits, whatever the filter: a filtered view must not look whole.
      for (; regions < trace.damaged.length; regions++) {
        const d = trace.damaged[regions]!;
        await w.line(opts.json ? JSON.stringify({ type: "damaged", ...d }) : `# ${regionNote(d)}`);
      }
      if (filter === undefined || filter.accepts(r)) {
        await w.line(opts.json ? JSON.stringify({ type: "record", ...recordToJson(r, i) }) : formatRecord(r, trace.header, i));
        shown++;
      }
      i++;
    }
    const s = trace.status!;
    for (; regions < s.damaged.length; regions++) {
      const d = s.damaged[regions]!;
      await w.line(opts.json ? JSON.stringify({ type: "damaged", ...d }) : `# ${regionNote(d)}`);
    }
    if (opts.json) await w.line(JSON.stringify({ type: "status", ...s, ...(filtering ? { shown } : {}) }));
    else {
      const count = filtering ? `${shown} of ${s.records} records shown` : `${s.records} records`;
      await w.line(s.damaged.length === 0 ? `# ${count}` : `# ${count}; ${tailNote(s)}`);
    }
    await w.flush();
  } catch (e) {
    // A reader that went away (`| head`) ends us quietly, as SIGPIPE ends a Unix tool.
    if (e instanceof OutputError && e.brokenPipe) return 141;
    err.write(`plugstorm trace cat: ${e instanceof OutputError ? `cannot write output: ${e.message}` : `cannot read trace ${path}: ${whyUnreadable(path, e)}`}\n`);
    return 2;
  }
  return 0;
}

export interface TraceExportOptions {
  /** Write a Perfetto trace (protobuf) here. */
  perfetto?: string;
  /** Write a Chrome JSON trace here. */
  chrome?: string;
  err?: Writable;
}

/** Exports a trace for trace viewers. Returns 0, or 2 if the trace is unreadable or an output cannot be written. */
export async function traceExport(path: string, opts: TraceExportOptions): Promise<number>;
/** The same, with one output path and its format (default perfetto). */
export async function traceExport(path: string, outPath: string, opts?: { format?: "perfetto" | "chrome"; err?: Writable }): Promise<number>;
export async function traceExport(
  path: string,
  a: TraceExportOptions | string,
  b?: { format?: "perfetto" | "chrome"; err?: Writable },
): Promise<number> {
  const opts: TraceExportOptions =
    typeof a === "string" ? { [(b?.format ?? "perfetto") === "chrome" ? "chrome" : "perfetto"]: a, ...(b?.err ? { err: b.err } : {}) } : a;
  const err = opts.err ?? process.stderr;
  if (!opts.perfetto && !opts.chrome) {
    err.write("plugstorm trace export: no output asked for (perfetto or chrome)\n");
    return 2;
  }
  const trace = await open(path, "trace export", err);
  if (!trace) return 2;
  const records: plugstorm.trace.v1.Record[] = [];
  try {
    for await (const r of trace) records.push(r);
  } catch (e) {
    err.write(`plugstorm trace export: cannot read trace ${path}: ${whyUnreadable(path, e)}\n`);
    return 2;
  }
  if (trace.status && trace.status.damaged.length > 0) err.write(`plugstorm trace export: ${path}: ${tailNote(trace.status)}\n`);
  const tl = buildTimeline(records);
  try {
    if (opts.perfetto) await writeFile(opts.perfetto, encodePerfetto(tl));
    if (opts.chrome) await writeFile(opts.chrome, JSON.stringify(toChromeJson(tl)));
  } catch (e) {
    err.write(`plugstorm trace export: cannot write: ${(e as Error).message}\n`);
    return 2;
  }
  return 0;
}

function isWritable(x: unknown): x is Writable {
  return x !== null && typeof x === "object" && typeof (x as Writable).write === "function";
}
