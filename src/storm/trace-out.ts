// Where a run's records go: a trace file (src/trace's append-only writer), or
// nowhere when a run is only asked for its verdicts (shrinking).

import type { plugstorm } from "../gen/plugstorm.js";
import { TraceWriter, type TraceWriteError } from "../trace/index.js";

export interface TraceOut {
  append(record: plugstorm.trace.v1.IRecord): void;
  /** Whether append() encodes records (false: they go nowhere). */
  readonly writes: boolean;
  /** Bytes the trace file holds, counting what is still buffered (0 with no file). */
  readonly size: number;
  /** The first write that failed (the file then ends there, marked incomplete). */
  readonly error: TraceWriteError | undefined;
  close(): Promise<void>;
}

/**
 * Every run's TraceOut is one of these, with a file or without: the recorder
 * reads append and size once per record, and one class keeps that call site
 * to one hidden class. (An object literal with accessors, made per run, was a
 * hidden class per run: after a few runs the site went megamorphic.)
 */
class WriterOut implements TraceOut {
  readonly writes: boolean;

  constructor(private readonly writer: TraceWriter | null) {
    this.writes = writer !== null;
  }

  append(record: plugstorm.trace.v1.IRecord): void {
    if (this.writer !== null) this.writer.append(record);
  }

  get size(): number {
    return this.writer === null ? 0 : this.writer.size;
  }

  get error(): TraceWriteError | undefined {
    return this.writer === null ? undefined : this.writer.error;
  }

  async close(): Promise<void> {
    this.writer?.close();
  }
}

/** Where a run with no trace file sends its records: nowhere (they are counted and checked all the same). */
export const NO_TRACE_OUT: TraceOut = new WriterOut(null);

export async function openTraceOut(
  path: string | null,
  header: plugstorm.trace.v1.ITraceHeader | null,
  onError: (err: TraceWriteError) => void = () => {},
): Promise<TraceOut> {
  if (path === null || header === null) return NO_TRACE_OUT;
  return new WriterOut(TraceWriter.create(path, header, { onError }));
}
