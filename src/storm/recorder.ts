// Where every record of a run goes, in one order: the trace file, the live
// view, the report's timeline and the live checker, whose verdicts are
// recorded in turn. Counts records (a record's index is its place in the
// trace) and says when the trace reaches its size bound.

import type { plugstorm } from "../gen/plugstorm.js";
import type { TimelineCollector } from "../report/index.js";
// The walk alone (a leaf module), as the encoder and the timeline import it.
import { pinRecordBody, unpinRecordBody } from "../trace/record-body.js";
import type { LiveChecker, StormVerdict } from "./checking.js";
import type { TraceOut } from "./trace-out.js";

type IRecord = plugstorm.trace.v1.IRecord;

/** Where a run's records go as they happen; calls must not throw or block (the runner guards anyway). */
export interface LiveSink {
  header(h: plugstorm.trace.v1.ITraceHeader): void;
  record(rec: IRecord, index: number): void;
}

export interface RecorderHooks {
  /** A verdict was recorded. */
  verdict(v: StormVerdict): void;
  /** The trace just reached maxTraceBytes (called once). */
  full(bytes: number): void;
}

export class Recorder {
  /** Records so far: the index the next one gets. */
  records = 0;
  readonly verdicts: StormVerdict[] = [];
  private failingCount = 0;
  private isFull = false;
  /**
   * Whether a record's body is walked once for both its readers (the trace
   * encoder and the timeline): with one of them or neither (a run with no
   * output, each of a shrink's runs) the walk would be made for no one, or
   * for the one reader that walks the record itself anyway.
   */
  private readonly pinBody: boolean;

  constructor(
    private readonly trace: TraceOut,
    private readonly checker: LiveChecker,
    private readonly timeline: TimelineCollector | null,
    private readonly live: LiveSink | undefined,
    private readonly maxTraceBytes: number,
    private readonly hooks: RecorderHooks,
  ) {
    this.pinBody = trace.writes && timeline !== null;
  }

  get failing(): number {
    return this.failingCount;
  }

  header(h: plugstorm.trace.v1.ITraceHeader): void {
    const live = this.live;
    if (!live) return;
    try {
      live.header(h);
    } catch {
      // A live view that throws never stops a run: its trouble is its own; the trace on disk stays complete.
    }
  }

  append(rec: IRecord): number {
    const index = this.records++;
    const trace = this.trace;
    // The trace's encoder and the timeline both find the record's body by
    // walking its keys: one walk serves both (the checker, which may append
    // verdicts in turn, comes after the unpin).
    const pin = this.pinBody && Object.getPrototypeOf(rec) === Object.prototype;
    if (pin) pinRecordBody(rec);
    try {
      trace.append(rec);
      // What is appended after the stop (the end marks, the checker's last verdicts) is small and bounded.
      if (!this.isFull && trace.size >= this.maxTraceBytes) {
        this.isFull = true;
        this.hooks.full(this.maxTraceBytes);
      }
      // Called in place, not through a helper taking a closure: that was an allocation per record.
      const live = this.live;
      if (live) {
        try {
          live.record(rec, index);
        } catch {
          // As in header().
        }
      }
      this.timeline?.push(rec);
    } finally {
      if (pin) unpinRecordBody();
    }
    const verdicts = this.checker.push(rec, index);
    if (verdicts.length > 0) {
      const tNs = Number(rec.tNs ?? 0);
      for (const v of verdicts) this.verdict(v, tNs);
    }
    return index;
  }

  mark(tNs: number, name: string, detail = ""): void {
    this.append({ tNs, mark: { name, detail } });
  }

  /** Records a verdict (the checker's, live or at the end) at tNs. */
  verdict(v: StormVerdict, tNs: number): void {
    this.verdicts.push(v);
    if (v.failing) this.failingCount++;
    this.append({ tNs, verdict: v.record });
    this.hooks.verdict(v);
  }
}
