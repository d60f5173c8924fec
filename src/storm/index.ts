// Public face of storms: the scenario format and its validation, the seeded
// scheduler, the runner, shrinking, and a VM fixture for ava tests.
export type * from "./spec.js";
export { NIC_KINDS, HOLDER_KINDS, GUEST_PROFILES, DEADLINE_PHASES, DEFAULT_DEADLINES_MS, DRIVER_MODULES, busOf } from "./spec.js";
export { parseStorm, validateStorm, checkStormNode, parseDurationNs, formatIssue, ScenarioError, MAX_DURATION_NS, Checker as YamlChecker, type ScenarioIssue } from "./validate.js";
export { loadStorm, loadStormFile } from "./load.js";
export { bugListIssues, bugTargets, type BugTargets } from "./bug-targets.js";
export { StepSource, expandSteps, drawDuration } from "./schedule.js";
export { MAX_SEED, Rng } from "../sim/index.js";
export {
  runStorm,
  defaultOutDir,
  LIVE_STOP_REASON,
  DEFAULT_MAX_TRACE_BYTES,
  exitCodeOf,
  stopText,
  type StopReason,
  type ExitCode,
  type RunOptions,
  type RunResult,
  type RunStatus,
  type StormProgress,
  type StormController,
  type LiveSink,
} from "./runner.js";
export type { BugStrikes, RejectedCommand } from "./result.js";
export { RunNotesReader, runEndOf, type RunEndNote } from "./run-notes.js";
export { statusOf, stoppedEarlyText } from "./outcome.js";
export { exitStatusOf } from "./reporting.js";
export { modelDeadlines, modelDeadlinesFromMs, toStormVerdict, type StormVerdict } from "./checking.js";
export { shrinkStorm, normalizeSteps, searchSmallest, ShrinkError, type ShrinkOptions, type ShrinkResult } from "./shrink.js";
export { specToInput, stormToYaml, stepToInput, withYamlHeader } from "./write.js";
export { DEFAULT_STORM } from "./default.js";
export { qemuProfileFor, createMachine, repoRoot, MachineSetupError, checkedQemuProfile } from "./machines.js";
export { startVm, type VmFixture, type VmFixtureOptions } from "./fixture.js";
export { TOOL_VERSION } from "./version.js";
export { GuestSession } from "./session.js";
