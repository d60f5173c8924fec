// plugstorm as a library: run storms (on the sim machine or QEMU), keep a VM
// for many storms, check saved traces, read them, talk QMP. Everything else
// in dist/ is internal and may change.

export {
  runStorm,
  loadStorm,
  loadStormFile,
  parseStorm,
  validateStorm,
  shrinkStorm,
  startVm,
  stormToYaml,
  ScenarioError,
  ShrinkError,
  LIVE_STOP_REASON,
  DEFAULT_MAX_TRACE_BYTES,
  DEFAULT_STORM,
  exitCodeOf,
  type StopReason,
  type ExitCode,
  type RunOptions,
  type RunResult,
  type RunStatus,
  type BugStrikes,
  type RejectedCommand,
  type StormProgress,
  type StormController,
  type StormVerdict,
  type LiveSink,
  type StormInput,
  type StormSpec,
  type ScenarioIssue,
  type ShrinkOptions,
  type ShrinkResult,
  type VmFixture,
  type VmFixtureOptions,
} from "./storm/index.js";
export { checkTrace, type CheckTraceOptions, type TraceCheck } from "./check-trace.js";
export { TraceChecker, checkRecords, formatVerdict, type CheckResult, type Verdict, type Summary, type RuleReport, type Deadlines, type ProfileName } from "./check/index.js";
export { RULES, ruleById, type Rule, type Severity, type Side } from "./model/index.js";
export {
  readTrace,
  parseTrace,
  TraceWriter,
  TraceFormatError,
  TraceWriteError,
  INCOMPLETE_MARK,
  type TraceFile,
  type TraceStatus,
  type ParsedTrace,
  type TraceWriterOptions,
} from "./trace/index.js";
export { QmpClient } from "./qmp/index.js";
export type {
  Machine,
  MachineClock,
  MachineObservation,
  MachineObserver,
  NicKind,
  NicBus,
  NicInfo,
  NicOpResult,
  NicOutcome,
  AddNicRequest,
  AddNicOptions,
  RemoveNicOptions,
  ExitInfo,
} from "./hotplug/index.js";
export { startLiveServer, serveTrace, type LiveFeed, type TraceServer } from "./serve/index.js";
export { plugstorm as proto } from "./gen/plugstorm.js";
