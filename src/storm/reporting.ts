// From a finished run to the RunReport src/report renders (text, JSON, JUnit,
// HTML). The timeline is collected live from the same records the trace holds.

import { writeReports, type RunReport, type Timeline } from "../report/index.js";
import type { RunResult } from "./runner.js";
import { TOOL_VERSION } from "./version.js";

export function buildRunReport(r: RunResult, startedAtMs: number, timeline: Timeline, rules?: readonly string[]): RunReport {
  const spec = r.spec;
  const report: RunReport = {
    toolVersion: TOOL_VERSION,
    scenarioName: spec.name,
    seed: r.seed,
    profiles: {
      machine: JSON.stringify(spec.machine),
      guest: spec.machine.type === "sim" ? "sim" : spec.machine.profile,
      model: spec.model,
    },
    startedAtMs,
    durationMs: r.durationMs,
    reproduce: r.reproduce,
    exit:
      r.status === "clean"
        ? { status: "clean" }
        : r.status === "violations"
          ? { status: "violations" }
          : { status: "aborted", reason: r.abortReason ?? "aborted" },
    verdicts: r.verdicts.map((v) => v.report),
    summary: (r.summary ?? null) as RunReport["summary"],
    counts: { cycles: r.cyclesDone, frames: r.frames, framesLost: r.framesLost, corrupt: r.corrupt },
    timeline,
  };
  if (rules) report.rules = rules;
  if (r.traceFile) report.traceFile = "trace.pstrace";
  return report;
}

/** Writes the report files; returns their paths and the text summary. */
export async function writeRunReports(outDir: string, report: RunReport): Promise<{ files: string[]; text: string }> {
  return writeReports(outDir, report);
}
