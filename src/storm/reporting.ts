// From a finished run to the RunReport src/report renders (text, JSON, JUnit,
// HTML). The timeline is collected live from the same records the trace holds.

import { renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPORT_FILES, accelText, renderText, reportBodies, type ExitStatus, type RunReport, type Timeline } from "../report/index.js";
import { ioErrorText, makeDirs } from "../trace/index.js";
import type { RunStatus } from "./outcome.js";
import type { RunResult } from "./result.js";
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
    exit: exitStatusOf(r.status, r.abortReason),
    verdicts: r.verdicts.map((v) => v.report),
    summary: (r.summary ?? null) as RunReport["summary"],
    counts: { cycles: r.cyclesDone, frames: r.frames, framesLost: r.framesLost, corrupt: r.corrupt },
    timeline,
  };
  if (rules) report.rules = rules;
  if (r.traceFile) report.traceFile = "trace.pstrace";
  if (r.notObserved.length > 0) report.notObserved = [...r.notObserved];
  if (r.accel && spec.machine.type === "qemu") report.accel = accelText(spec.machine.accel, r.accel.used, r.accel.reason);
  if (r.rejectedCommands.length > 0) report.rejectedCommands = [...r.rejectedCommands];
  if (r.bugStrikes.length > 0) report.bugStrikes = r.bugStrikes.map((b) => ({ ...b }));
  return report;
}

/**
 * report.json's exit: the run's status, and why it stopped (stopText's words,
 * abortReason) where that is more than the status says. One mapping for a
 * storm's reports and those check --report rebuilds from its trace.
 */
export function exitStatusOf(status: RunStatus, abortReason: string | undefined): ExitStatus {
  switch (status) {
    case "clean":
    case "violations":
    case "time-limit":
      return { status };
    case "stopped":
    case "trace-limit":
    case "aborted":
      return { status, reason: abortReason ?? status };
  }
}

/**
 * Writes the report files, each to a temporary name renamed into place (a
 * reader never sees half a report). A file that cannot be written (disk full,
 * I/O error) leaves no temporary file behind and does not stop the others:
 * returns the paths written, the text summary (whether or not summary.txt
 * could be written) and each failure naming its file. The files are written
 * synchronously: at the end of a run nothing else waits on the loop, and
 * each asynchronous write (a trip through libuv's thread pool and a promise)
 * cost a storm more CPU than the writing itself.
 */
export async function writeRunReports(outDir: string, report: RunReport): Promise<{ files: string[]; text: string; errors: Array<{ file: string; message: string }> }> {
  const paths = REPORT_FILES.map((n) => join(outDir, n));
  const text = renderText(report, paths);
  const render = reportBodies(report, text);
  const files: string[] = [];
  const errors: Array<{ file: string; message: string }> = [];
  try {
    makeDirs(outDir);
  } catch (err) {
    return { files, text, errors: [{ file: outDir, message: err instanceof Error ? err.message : String(err) }] };
  }
  // One at a time: on a nearly full disk the small files go first and the big one can fail alone.
  for (const [i, path] of paths.entries()) {
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, render[i]!(), "utf8");
      renameSync(tmp, path);
      files.push(path);
    } catch (err) {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // Left behind: the error below names the file that failed.
      }
      errors.push({ file: path, message: `cannot write ${path}: ${ioErrorText(err)}` });
    }
  }
  return { files, text, errors };
}
