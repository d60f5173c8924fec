// Saved traces (proto/TRACE.md) as replay sources, read with src/trace's readers.
import { damageNote, parseTrace, readTrace, type TraceStatus } from "../trace/index.js";
import type { TraceSource } from "./replay.js";

function tailNote(s: TraceStatus | undefined): string | undefined {
  if (!s || s.damaged.length === 0) return undefined;
  return `trace damaged: ${damageNote(s)}`;
}

/** Opens a trace file; throws (naming the file and offset) if it is not a trace. */
export async function openTraceFile(path: string): Promise<TraceSource> {
  const f = await readTrace(path);
  return { header: f.header, records: f, end: () => tailNote(f.status) };
}

/** A trace uploaded by the page, held in memory. */
export async function openTraceBytes(bytes: Uint8Array): Promise<TraceSource> {
  const p = parseTrace(bytes, "uploaded trace");
  async function* records(): AsyncGenerator<(typeof p.records)[number]> {
    yield* p.records;
  }
  return { header: p.header, records: records(), end: () => tailNote(p.status) };
}
