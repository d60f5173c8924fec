// checkTrace: a saved trace file judged against the model, streamed record by
// record, with the profile and deadlines its header recorded (what `plugstorm
// check` does, for library users).

import { TraceChecker, type CheckResult, type Deadlines, type ProfileName } from "./check/index.js";
import { DEADLINE_PHASES, modelDeadlinesFromMs, type DeadlinePhase } from "./storm/index.js";
import { readTrace, type TraceStatus } from "./trace/index.js";

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
  let index = 0;
  let lastT = 0;
  let regions = 0;
  for await (const batch of trace.batches()) {
    const damaged = trace.damaged;
    for (const r of batch) {
      // Damage is judged where it sits, as `plugstorm check` does: a damaged trace is never clean.
      for (; regions < damaged.length && damaged[regions]!.atRecord <= index; regions++) checker.damaged(damaged[regions]!, lastT);
      checker.push(r, index++);
      lastT = Math.max(lastT, Number(r.tNs ?? 0));
    }
  }
  const status = trace.status!;
  for (; regions < status.damaged.length; regions++) checker.damaged(status.damaged[regions]!, lastT);
  return { ...checker.finish(lastT), profile, records: index, tail: status };
}
