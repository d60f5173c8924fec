// checkTrace: a saved trace file judged against the model, streamed record by
// record, with the profile and deadlines its header recorded (what `plugstorm
// check` does, for library users).

import { TraceChecker, type CheckResult, type Deadlines, type ProfileName } from "./check/index.js";
import {
  DEADLINE_PHASES,
  RunNotesReader,
  modelDeadlinesFromMs,
  runEndOf,
  type BugStrikes,
  type DeadlinePhase,
  type RejectedCommand,
  type RunStatus,
  type StopReason,
} from "./storm/index.js";
import type { plugstorm } from "./gen/plugstorm.js";
import { readTrace, type TraceFile, type TraceStatus } from "./trace/index.js";

export interface CheckTraceOptions {
  /** Default: the profile the trace header names, else "netbsd". */
  profile?: ProfileName;
  /** Deadlines over the trace header's own (model field names). */
  deadlines?: Partial<Deadlines>;
}

export interface TraceCheck extends CheckResult {
  profile: ProfileName;
  /** Records checked. */
  records: number;
  /** How the trace ended: a truncated or corrupt tail was not checked. */
  tail: TraceStatus;
  /**
   * How the run ended, as its own RunResult says, from the trace's storm-end
   * mark and this check's failing verdicts (`plugstorm check --json` gives
   * the same): a trace that does not say (a crash cut it) is taken as run to
   * its end, and its stop is null.
   */
  status: RunStatus;
  abortReason: string | null;
  stop: StopReason | null;
  /** What the run said of itself in its trace, as its RunResult has it. */
  bugStrikes: BugStrikes[];
  rejectedCommands: RejectedCommand[];
  notObserved: string[];
}

/** Checks a trace file; throws if it is not a trace (TraceFormatError) or cannot be read. */
export async function checkTrace(path: string, opts: CheckTraceOptions = {}): Promise<TraceCheck> {
  const trace = await readTrace(path);
  const h = trace.header;
  const profile: ProfileName = opts.profile ?? (h.modelProfile === "linux" ? "linux" : "netbsd");
  const ms: Partial<Record<DeadlinePhase, number>> = {};
  try {
    const d = JSON.parse(h.deadlines || "{}") as Record<string, unknown>;
    for (const p of DEADLINE_PHASES) if (typeof d[p] === "number") ms[p] = d[p] as number;
  } catch {
    // A header without readable deadlines: the model's defaults.
  }
  const checker = new TraceChecker({ profile, deadlines: { ...modelDeadlinesFromMs(ms), ...opts.deadlines } });
  const notes = new RunNotesReader();
  const { records, lastT, status } = await checkRecords(trace, checker, (r) => notes.push(r));
  const result = checker.finish(lastT);
  const end = runEndOf(notes.end, result.verdicts.filter((v) => v.severity !== "warning").length);
  return {
    ...result,
    profile,
    records,
    tail: status,
    status: end.status,
    abortReason: end.abortReason ?? null,
    stop: notes.end?.stop ?? null,
    bugStrikes: notes.bugStrikes,
    rejectedCommands: notes.rejectedCommands,
    notObserved: notes.notObserved,
  };
}

/**
 * Pushes a trace file's records into a checker, a batch at a time, and judges
 * each damaged region where it sits among them (a damaged trace is never
 * clean); `each` sees every record after the checker has. Returns the
 * records checked, the latest record time (for finish) and how the read ended.
 */
export async function checkRecords(
  trace: TraceFile,
  checker: TraceChecker,
  each?: (r: plugstorm.trace.v1.Record) => void,
): Promise<{ records: number; lastT: number; status: TraceStatus }> {
  let index = 0;
  let lastT = 0;
  let regions = 0;
  for await (const batch of trace.batches()) {
    const damaged = trace.damaged;
    for (const r of batch) {
      for (; regions < damaged.length && damaged[regions]!.atRecord <= index; regions++) checker.damaged(damaged[regions]!, lastT);
      checker.push(r, index++);
      each?.(r);
      lastT = Math.max(lastT, Number(r.tNs ?? 0));
    }
  }
  const status = trace.status!;
  for (; regions < status.damaged.length; regions++) checker.damaged(status.damaged[regions]!, lastT);
  return { records: index, lastT, status };
}
