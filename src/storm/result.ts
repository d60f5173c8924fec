// What a finished run hands back: its own module, so the runner and the
// report builder both depend on it and not on each other.

import type { StormVerdict } from "./checking.js";
import type { ExitCode, RunStatus, StopReason } from "./outcome.js";
import type { Step, StormSpec } from "./spec.js";
import type { BugStrikes, RejectedCommand } from "../report/index.js";

export type { ExitCode, RunStatus, StopReason } from "./outcome.js";
export type { BugStrikes, RejectedCommand } from "../report/index.js";

export interface RunResult {
  status: RunStatus;
  /**
   * 0 clean, 1 violations, 2 aborted by a set-up error, a machine error or a
   * file that could not be written, 130/143 stopped by SIGINT/SIGTERM (the
   * caller's signal aborted with a "signal" StopReason). An interrupted run
   * with violations is 1; a run stopped at its time limit, its trace size
   * limit or from the live view is 0 (status "time-limit", "trace-limit",
   * "stopped") or 1. Worked out by exitCodeOf (outcome.ts) alone.
   */
  exitCode: ExitCode;
  /** Why the run stopped ("completed" when it ran to its end). */
  stop: StopReason;
  /** Why the run ended early, in words (stopText): "interrupted", "time limit", "violation", a machine error. */
  abortReason?: string;
  seed: number;
  spec: StormSpec;
  outDir: string | null;
  traceFile: string | null;
  reportFiles: string[];
  /** The text summary (also in summary.txt when reports were written). */
  reportText?: string;
  /**
   * Files that could not be written (disk full, I/O error), with why: the
   * trace (then cut back to its last whole flush and marked incomplete) or
   * reports. Any makes exitCode 2; the other reports are written all the same.
   */
  writeErrors: Array<{ file: string; message: string }>;
  verdicts: StormVerdict[];
  /** Rules the failing verdicts name, in order of first appearance. */
  failedRules: string[];
  summary: unknown;
  cyclesDone: number;
  records: number;
  frames: number;
  framesLost: number;
  corrupt: number;
  durationMs: number;
  machineEndNs: number;
  /** The steps actually executed, in order: an explicit storm that replays this run. */
  executed: Step[];
  reproduce: string;
  /** What the guest agent said it cannot observe, each "WHAT: why" (Hello.unavailable): not checked, never a pass. */
  notObserved: string[];
  /** The accelerator the machine started with ("sim" on the sim machine) and why; absent when the run did not start the machine. */
  accel?: { used: string; reason: string };
  /** Guest commands (steps such as fault, hold, unload) the guest agent refused: the storm did not do what it says. */
  rejectedCommands: RejectedCommand[];
  /** Each bug injected into the sim kernel and the times it struck in this run; empty on QEMU and without bugs. */
  bugStrikes: BugStrikes[];
}
