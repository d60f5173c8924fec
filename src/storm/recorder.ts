// Where every record of a run goes, in one order: the trace file, the live
// view, the report's timeline and the live checker, whose verdicts are
// recorded in turn. Counts records (a record's index is its place in the
// trace) and says when the trace reaches its size bound.
//
// Records wait in a queue and go through the stages a batch at a time: the
// checker over the whole batch first (which places each verdict record right
// after the record that raised it, as every later record's index depends on
// it), then the trace over the batch and its verdicts, then the live view,
// then the timeline. Each stage costs a storm 2-4x as much run one record at
// a time between the others as over many records in a row (their code and
// data then stay in the caches); so each walks a record's keys on its own,
// where one walk served the trace and the timeline of each record in turn.
// A verdict's hook is called once its record passed every stage. A run whose verdicts change what it does next (it
// stops at the first violation, or on a real guest's panic) sets a batch of
// one: each record through every stage as it comes, its verdicts acted on at
// once. Either way the trace, the verdicts and their places are the same.
//
// A queued guest frame is not the telemetry decoder's last frame any more,
// but for the last queued one: the readers of the decoder's hand-off (the
// checker's adapter, the timeline) read the others from their members. The
// hand-off is keyed by the frame, so it stays right for whichever frame it
// names. (Keeping each queued frame's hand-off and putting it back in the
// drain measured no faster.)

import type { plugstorm } from "../gen/plugstorm.js";
import type { TimelineCollector } from "../report/index.js";
import type { LiveChecker, StormVerdict } from "./checking.js";
import type { TraceOut } from "./trace-out.js";
import { KEPT_FRAMES } from "../telemetry/index.js";

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

/**
 * Records a batching run queues before they go through the stages. At most
 * the telemetry's kept canonical frames (KEPT_FRAMES): a guest frame pushed
 * out of that ring before its trace entry is written is encoded anew. In the
 * storm bench with trace and reports, 256 read under 128 in each of twelve
 * pairs (median 7% less CPU); 512 no better than 256 (docs/benchmarks.md,
 * Round 13).
 */
export const RECORD_BATCH = KEPT_FRAMES;

/**
 * Wall time a record may wait in the queue when no more come (the machine
 * idle, the run paused from the live view, a real machine's I/O): what the
 * live view, the progress line and the printed verdicts may lag behind.
 * While records come, a batch fills in well under a millisecond.
 */
const DRAIN_AFTER_MS = 4;

/**
 * Bytes under the trace's bound from which every record is drained as it
 * comes: the run then stops at the record that reaches the bound, as with a
 * batch of one. (Exact as long as one batch encodes to less than this.)
 */
export const BOUND_MARGIN_BYTES = 4 * 1024 * 1024;

export class Recorder {
  /** Records that went through the checker: the index the next one gets. */
  private count = 0;
  private readonly verdictList: StormVerdict[] = [];
  private failingCount = 0;
  private isFull = false;
  /** Records queued at which the queue drains (1: as each comes). */
  private batch: number;
  /**
   * The queue: its first `queued` entries. The arrays here are reused, each
   * entry written over: emptying an array gives back its storage, which the
   * next push allocates again.
   */
  private queue: IRecord[] = [];
  private queued = 0;
  /** The queue's other array: a drain takes the queue and leaves this one for what its hooks append. */
  private spare: IRecord[] = [];
  /** What the checker passed on, in trace order: records, their indexes, and the verdict each verdict record carries. */
  private out: IRecord[] = [];
  private outIndex: number[] = [];
  private outVerdict: (StormVerdict | null)[] = [];
  private outN = 0;
  private draining = false;
  /** Nothing but the checker reads this run's records: no trace is written, no live view or timeline takes them (see tally). */
  private readonly checkerOnly: boolean;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly trace: TraceOut,
    private readonly checker: LiveChecker,
    private readonly timeline: TimelineCollector | null,
    private readonly live: LiveSink | undefined,
    private readonly maxTraceBytes: number,
    private readonly hooks: RecorderHooks,
    /** Records a batch holds: 1 when a verdict may change what the run does next. */
    batch = 1,
  ) {
    this.batch = batch;
    this.checkerOnly = !trace.writes && !live && !timeline;
    if (trace.size + BOUND_MARGIN_BYTES >= maxTraceBytes) this.batch = 1;
  }

  /** Records so far (the queue drained first). */
  get records(): number {
    this.drain();
    return this.count;
  }

  /** Verdicts so far (the queue drained first). */
  get verdicts(): StormVerdict[] {
    this.drain();
    return this.verdictList;
  }

  get failing(): number {
    this.drain();
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

  /** One record to the live view, whose trouble stays its own (as in header()). */
  private toLive(rec: IRecord, index: number): void {
    try {
      this.live!.record(rec, index);
    } catch {
      // As in header().
    }
  }

  append(rec: IRecord): void {
    // A batch of one (a run that stops at its first violation: every judged
    // run of a shrink) takes this same path, draining at each record, not a
    // path of its own: the storm's runs warm this one, and code V8 optimised
    // with it inlined (the step code, the session's handlers, the sim's
    // emits) was thrown away at the first record of a shrink's first run
    // that took a branch they never had, then optimised again only once
    // each had run often enough, in the bench's timed shrinks.
    const n = this.queued;
    this.queue[n] = rec;
    this.queued = n + 1;
    if (n + 1 >= this.batch) this.drain();
    else if (n === 0) this.armTimer();
  }

  mark(tNs: number, name: string, detail = ""): void {
    if (this.tally()) return;
    this.append({ tNs, mark: { name, detail } });
  }

  /**
   * Counts a record the checker takes no model event from (a mark, a guest
   * command, a clock sample, a QMP command or reply: see recordToEvent in
   * src/check/adapter.ts) in its place without its being made, when only the
   * checker reads this run's records (a judged run: the shrinker's) and no
   * record waits before it. False when the caller must append it. A judged
   * run makes about a quarter of its records of these kinds, each of which
   * went through every stage only to be counted.
   */
  tally(): boolean {
    if (!this.checkerOnly || this.queued !== 0 || this.draining) return false;
    this.count++;
    return true;
  }

  /** Records a verdict (the checker's at the end of a run) at tNs, after every record before it. */
  verdict(v: StormVerdict, tNs: number): void {
    this.drain();
    this.draining = true;
    try {
      this.raise(v, tNs);
      this.passOn();
    } finally {
      this.draining = false;
    }
    // What its hook appended.
    this.drain();
  }

  /** Every queued record through every stage, in order. */
  drain(): void {
    if (this.draining || this.queued === 0) return;
    this.draining = true;
    try {
      // Records the verdicts' hooks append come in a queue of their own, drained in turn.
      while (this.queued > 0) {
        const q = this.queue;
        const n = this.queued;
        this.queue = this.spare;
        this.queued = 0;
        this.spare = q;
        for (let i = 0; i < n; i++) this.check(q[i]!);
        this.passOn();
      }
    } finally {
      this.draining = false;
    }
  }

  /** The checker's stage: the record's index, then its verdicts' records right after it. */
  private check(rec: IRecord): void {
    const index = this.count++;
    this.place(rec, index, null);
    const verdicts = this.checker.push(rec, index);
    if (verdicts.length > 0) {
      const tNs = Number(rec.tNs ?? 0);
      for (const v of verdicts) this.raise(v, tNs);
    }
  }

  /** A verdict's record, placed next in trace order and checked in turn (as any record). */
  private raise(v: StormVerdict, tNs: number): void {
    this.verdictList.push(v);
    if (v.failing) this.failingCount++;
    const rec: IRecord = { tNs, verdict: v.record };
    const index = this.count++;
    this.place(rec, index, v);
    const more = this.checker.push(rec, index);
    for (const w of more) this.raise(w, tNs);
  }

  /** Next in what the checker passed on: the record, its index, and the verdict it carries (null for any other record). */
  private place(rec: IRecord, index: number, v: StormVerdict | null): void {
    const n = this.outN++;
    this.out[n] = rec;
    this.outIndex[n] = index;
    this.outVerdict[n] = v;
  }

  /** What the checker passed on, through the trace, the live view and the timeline; a verdict's hook after its record. */
  private passOn(): void {
    const out = this.out;
    const outIndex = this.outIndex;
    const outVerdict = this.outVerdict;
    const trace = this.trace;
    const live = this.live;
    const timeline = this.timeline;
    const n = this.outN;
    try {
      if (trace.writes) {
        for (let i = 0; i < n; i++) {
          trace.append(out[i]!);
          if (!this.isFull) this.checkBound();
        }
      } else if (!this.isFull) this.checkBound();
      if (live) for (let i = 0; i < n; i++) this.toLive(out[i]!, outIndex[i]!);
      if (timeline) for (let i = 0; i < n; i++) timeline.push(out[i]!);
      for (let i = 0; i < n; i++) {
        const v = outVerdict[i];
        if (v) this.hooks.verdict(v);
      }
    } finally {
      this.outN = 0;
    }
  }

  private checkBound(): void {
    const size = this.trace.size;
    if (size >= this.maxTraceBytes) {
      this.isFull = true;
      this.hooks.full(this.maxTraceBytes);
    } else if (this.batch > 1 && size + BOUND_MARGIN_BYTES >= this.maxTraceBytes) this.batch = 1;
  }

  /** Drains the queue once records stop coming for a while (see DRAIN_AFTER_MS). */
  private armTimer(): void {
    const t = this.timer;
    if (t !== null) t.refresh();
    else {
      this.timer = setTimeout(this.onTimer, DRAIN_AFTER_MS);
      this.timer.unref();
    }
  }

  private readonly onTimer = (): void => this.drain();

  /** The run's end: everything queued through, no timer left; a record after this goes through as it comes. */
  close(): void {
    this.batch = 1;
    this.drain();
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
