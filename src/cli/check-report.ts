// The four reports (text, JSON, JUnit, HTML) of `plugstorm check --report DIR`:
// a RunReport made from a saved trace and its check, damage included.

import { toReportVerdict, type CheckedVerdict, type Summary } from "../check/index.js";
import type { plugstorm } from "../gen/plugstorm.js";
import { accelText, type BugStrikes, type RejectedCommand, type RunReport, type Timeline } from "../report/index.js";
import { TOOL_VERSION, exitStatusOf, runEndOf, type RunEndNote } from "../storm/index.js";
import type { TraceStatus } from "../trace/index.js";

export interface TraceCheckFacts {
  path: string;
  header: plugstorm.trace.v1.TraceHeader;
  profile: string;
  verdicts: readonly CheckedVerdict[];
  summary: Summary;
  status: TraceStatus;
  timeline: Timeline;
  records: number;
  /** The run's STARTED machine record, when the machine started. */
  started?: plugstorm.trace.v1.IMachineEvent;
  /** What the trace says of the run beyond its verdicts (RunNotesReader), as the storm's own report has it. */
  notes?: TraceRunNotes;
}

export interface TraceRunNotes {
  bugStrikes: readonly BugStrikes[];
  rejectedCommands: readonly RejectedCommand[];
  notObserved: readonly string[];
  /** Why the run ended, when its trace says. */
  end: RunEndNote | undefined;
}

export function traceRunReport(f: TraceCheckFacts): RunReport {
  const h = f.header;
  const ended = runEndOf(f.notes?.end, f.verdicts.filter((v) => v.severity !== "warning").length);
  const report: RunReport = {
    toolVersion: TOOL_VERSION,
    scenarioName: h.scenarioName || f.path,
    seed: Number(h.seed ?? 0),
    profiles: { machine: h.machineProfile || "", guest: h.guestProfile || "", model: f.profile },
    startedAtMs: Number(h.wallClockStartMs ?? 0),
    durationMs: (f.timeline.endNs - Math.min(f.timeline.startNs, f.timeline.endNs)) / 1e6,
    reproduce: `plugstorm check ${f.path}`,
    exit: exitStatusOf(ended.status, ended.abortReason),
    verdicts: f.verdicts.map((v) => toReportVerdict(v, { history: true })),
    summary: f.summary as unknown as RunReport["summary"],
    counts: { cycles: f.summary.cycles, frames: f.summary.guestFrames, framesLost: f.summary.framesLost, corrupt: f.summary.corruptFrames },
    traceFile: f.path,
    timeline: f.timeline,
  };
  const accel = startedAccel(h.machineProfile ?? "", f.started);
  if (accel !== undefined) report.accel = accel;
  if (f.notes && f.notes.notObserved.length > 0) report.notObserved = [...f.notes.notObserved];
  if (f.notes && f.notes.rejectedCommands.length > 0) report.rejectedCommands = [...f.notes.rejectedCommands];
  if (f.notes && f.notes.bugStrikes.length > 0) report.bugStrikes = f.notes.bugStrikes.map((b) => ({ ...b }));
  if (f.status.damaged.length > 0) report.traceDamage = { bytes: f.status.bytesSkipped, regions: f.status.damaged.map((d) => ({ ...d })) };
  return report;
}

/**
 * The accelerator a QEMU run used, as the storm's own report says it
 * (accelText): from the trace's STARTED record, the reason too where the
 * trace has it. Undefined when the trace does not say (the machine never
 * started, or a sim run): the machine line keeps the storm file's accel.
 */
function startedAccel(machineJson: string, started: plugstorm.trace.v1.IMachineEvent | undefined): string | undefined {
  if (!started?.accel) return undefined;
  let m: unknown;
  try {
    m = JSON.parse(machineJson);
  } catch {
    return undefined;
  }
  if (typeof m !== "object" || m === null || (m as { type?: unknown }).type !== "qemu") return undefined;
  const requested = (m as { accel?: unknown }).accel;
  return accelText(typeof requested === "string" ? requested : "auto", started.accel, started.accelReason ?? "");
}
