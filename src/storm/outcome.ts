// Why a run ended, as a type, and the one place that turns how a run ended
// into its status and its process exit code. The CLI takes the exit code from
// here; the runner takes the status; neither works either out on its own.

/** Why a run stopped; the first reason wins. */
export type StopReason =
  /** The storm ran every step it had (or its duration passed). */
  | { kind: "completed" }
  /** The first violation, and the storm (or the caller) said stop there. */
  | { kind: "violation" }
  /** Ctrl-C or a termination request, through the caller's signal. */
  | { kind: "signal"; signal: "SIGINT" | "SIGTERM" }
  /** The caller aborted its signal with no more said (a library user, a campaign worker). */
  | { kind: "interrupted" }
  /** --time-limit (the caller's signal aborted with a TimeoutError). */
  | { kind: "time-limit" }
  /** The live view's stop control. */
  | { kind: "live-stop" }
  /** The trace file reached --max-trace-bytes. */
  | { kind: "max-trace-bytes"; bytes: number }
  /** The machine exited on its own. */
  | { kind: "machine-died"; detail: string }
  /** A real guest kernel panicked: it answers nothing more. */
  | { kind: "guest-panicked" }
  /** The trace file could not be written (disk full, I/O error). */
  | { kind: "write-error"; message: string }
  /** Whoever read the command's output went away. */
  | { kind: "output-closed" }
  /** The run hit an error it could not go on past: no QEMU, no image, a machine that would not boot, a failed QMP call. */
  | { kind: "failed"; message: string }
  /** Any other reason a caller aborted with. */
  | { kind: "error"; message: string };

export type StopKind = StopReason["kind"];

/** abortReason of a run stopped by its live view's stop control. */
export const LIVE_STOP_REASON = "stopped from the live view";

/** abortReason of a run stopped by its trace size limit. */
export function traceLimitReason(bytes: number): string {
  return `trace size limit: the trace reached ${bytes} bytes (--max-trace-bytes)`;
}

/** The words a trace's storm-end mark and RunResult.abortReason use ("done" for a completed run). */
export function stopText(r: StopReason): string {
  switch (r.kind) {
    case "completed":
      return "done";
    case "violation":
      return "violation";
    case "signal":
    case "interrupted":
      return "interrupted";
    case "time-limit":
      // Not "deadline": the model's deadlines are another thing, judged per device.
      return "time limit";
    case "live-stop":
      return LIVE_STOP_REASON;
    case "max-trace-bytes":
      return traceLimitReason(r.bytes);
    case "machine-died":
      return r.detail;
    case "guest-panicked":
      return "guest panicked";
    case "write-error":
    case "failed":
    case "error":
      return r.message;
    case "output-closed":
      return "output closed";
  }
}

const KINDS: ReadonlySet<string> = new Set<StopKind>([
  "completed",
  "violation",
  "signal",
  "interrupted",
  "time-limit",
  "live-stop",
  "max-trace-bytes",
  "machine-died",
  "guest-panicked",
  "write-error",
  "output-closed",
  "failed",
  "error",
]);

function isStopReason(v: unknown): v is StopReason {
  return typeof v === "object" && v !== null && KINDS.has((v as { kind?: unknown }).kind as string);
}

/**
 * The stop reason an AbortSignal's reason stands for: a StopReason as is, a
 * TimeoutError (AbortSignal.timeout, --time-limit) the time limit, another
 * Error its message, "interrupted" or an AbortError a plain interruption.
 */
export function stopReasonOf(reason: unknown): StopReason {
  if (isStopReason(reason)) return reason;
  if (reason === "interrupted" || reason === undefined) return { kind: "interrupted" };
  if (typeof reason === "string") return { kind: "error", message: reason };
  if (reason instanceof Error && reason.name === "TimeoutError") return { kind: "time-limit" };
  if (reason instanceof Error && reason.name !== "AbortError") return { kind: "error", message: reason.message };
  return { kind: "interrupted" };
}

/**
 * A stop reason as a trace's storm-end mark holds it (JSON), each kind's
 * fields checked: undefined for anything else, so that a hand-made or
 * damaged mark is not taken for a reason the run never had.
 */
export function stopReasonFrom(v: unknown): StopReason | undefined {
  if (!isStopReason(v)) return undefined;
  const o = v as unknown as Record<string, unknown>;
  const ok = (field: string): boolean => typeof o[field] === "string";
  switch (v.kind) {
    case "signal":
      return o["signal"] === "SIGINT" || o["signal"] === "SIGTERM" ? { kind: "signal", signal: o["signal"] } : undefined;
    case "max-trace-bytes":
      return typeof o["bytes"] === "number" && Number.isSafeInteger(o["bytes"]) && o["bytes"] > 0 ? { kind: v.kind, bytes: o["bytes"] } : undefined;
    case "machine-died":
      return ok("detail") ? { kind: v.kind, detail: o["detail"] as string } : undefined;
    case "write-error":
    case "failed":
    case "error":
      return ok("message") ? { kind: v.kind, message: o["message"] as string } : undefined;
    default:
      return { kind: v.kind };
  }
}

const TRACE_LIMIT_TEXT = /^trace size limit: the trace reached (\d+) bytes \(--max-trace-bytes\)$/;

/**
 * The stop reason stopText's words stand for, for a storm-end mark that has
 * only them (traces written before the mark held the stop itself). Words
 * of no planned end are an error with those words: the status they give is
 * the same (aborted, or violations), but for a failed run with violations.
 */
export function stopReasonOfText(text: string): StopReason {
  switch (text) {
    case "done":
      return { kind: "completed" };
    case "violation":
      return { kind: "violation" };
    case "interrupted":
      return { kind: "interrupted" };
    case "time limit":
      return { kind: "time-limit" };
    case LIVE_STOP_REASON:
      return { kind: "live-stop" };
    case "guest panicked":
      return { kind: "guest-panicked" };
    case "output closed":
      return { kind: "output-closed" };
  }
  const limit = TRACE_LIMIT_TEXT.exec(text);
  const bytes = limit ? Number(limit[1]) : NaN;
  return Number.isSafeInteger(bytes) ? { kind: "max-trace-bytes", bytes } : { kind: "error", message: text };
}

/** What the storm printed after its summary when it stopped before its end: the same words for a rebuilt run (check). */
export function stoppedEarlyText(reason: string, cycles: number | undefined): string {
  return `stopped early: ${reason}${cycles === 0 ? ", before the first cycle completed" : ""}`;
}

/** Stops the user asked for, or set a bound for: a run that ends by one of them is not a failure. */
function stoppedAsAsked(r: StopReason): boolean {
  switch (r.kind) {
    case "completed":
    case "violation":
    case "signal":
    case "interrupted":
    case "time-limit":
    case "live-stop":
    case "max-trace-bytes":
      return true;
    default:
      return false;
  }
}

/**
 * clean: ran to its end (or to the violation it was told to stop at) and found
 * nothing; violations: found some, however it ended. Three planned ends, each
 * with nothing found until then: time-limit, stopped at the --time-limit it
 * was given; stopped, by the live view's Stop; trace-limit, its trace reached
 * --max-trace-bytes. aborted: stopped before its end otherwise (a signal, an
 * error, a dead machine).
 */
export type RunStatus = "clean" | "violations" | "time-limit" | "stopped" | "trace-limit" | "aborted";

/** 0 clean, 1 violations, 2 aborted by an error, 130/143 stopped by SIGINT/SIGTERM (128 + signal number, as shells expect). */
export type ExitCode = 0 | 1 | 2 | 130 | 143;

export interface RunEnd {
  stop: StopReason;
  /** Failing verdicts the run reached. */
  failing: number;
  /** Files (trace or reports) that could not be written. */
  writeErrors: number;
}

/** A run that failed (could not set up, say) judged nothing worth calling a violation. */
export function statusOf(end: RunEnd): RunStatus {
  if (end.stop.kind === "failed") return "aborted";
  if (end.failing > 0) return "violations";
  switch (end.stop.kind) {
    case "completed":
    case "violation":
      return "clean";
    case "time-limit":
      return "time-limit";
    case "live-stop":
      return "stopped";
    case "max-trace-bytes":
      return "trace-limit";
    default:
      return "aborted";
  }
}

/**
 * The process exit code of a run: 2 when a file could not be written or the
 * run failed (whatever else happened), then 1 for violations (an
 * interrupted run that found some too), 130/143 for a signal, 0 for the other
 * stops the user asked for, 2 for everything else (a dead machine, ...).
 */
export function exitCodeOf(end: RunEnd): ExitCode {
  if (end.writeErrors > 0 || end.stop.kind === "failed") return 2;
  if (end.failing > 0) return 1;
  if (end.stop.kind === "signal") return end.stop.signal === "SIGINT" ? 130 : 143;
  return stoppedAsAsked(end.stop) ? 0 : 2;
}
