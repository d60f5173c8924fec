// Where a run's records go: a trace file (src/trace's append-only writer), or
// nowhere when a run is only asked for its verdicts (shrinking).

import type { plugstorm } from "../gen/plugstorm.js";
import { TraceWriter, type TraceWriteError } from "../trace/index.js";

export interface TraceOut {
  append(record: plugstorm.trace.v1.IRecord): void;
  /** Bytes the trace file holds, counting what is still buffered (0 with no file). */
  readonly size: number;
  /** The first write that failed (the file then ends there, marked incomplete). */
  readonly error: TraceWriteError | undefined;
  close(): Promise<void>;
}

export async function openTraceOut(
  path: string | null,
  header: plugstorm.trace.v1.ITraceHeader | null,
  onError: (err: TraceWriteError) => void = () => {},
): Promise<TraceOut> {
  if (path === null || header === null) return { append() {}, size: 0, error: undefined, close: async () => {} };
  const w = TraceWriter.create(path, header, { onError });
  return {
    append: (r) => {
      w.append(r);
    },
    get size() {
      return w.size;
    },
    get error() {
      return w.error;
    },
    close: async () => w.close(),
  };
}
