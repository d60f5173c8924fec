// The reference model of correct detach: automata, reference ledgers, rules
// and the streaming checker. Pure and deterministic: no I/O, no clocks, and
// nothing of the rest of the project is imported here.

export type {
  At,
  BusName,
  CapabilityName,
  ChannelKind,
  DetachStepName,
  DeviceEvent,
  DevicePhase,
  ExecContext,
  GuestOsName,
  HostAddEvent,
  HostOutcome,
  IfPhase,
  MachineEvent,
  MachineKind,
  ModelEvent,
  ModulePhase,
  ObjectKind,
  VetoReason,
  VnodePhase,
} from "./events.js";
export { ALL_CAPABILITIES, describeEvent, isGuestEvent } from "./events.js";
export { RULES, RULE_BY_ID, ruleById, isRuleId, BUG_RULES, BUG_CLASS_RULES } from "./rules.js";
export type { Rule, RuleId, ProfileName, Severity, Side, Observation } from "./rules.js";
export { AUTOMATA, Monitor, DEVICE_STATES, DEVICE_EVENTS, IF_STATES, IF_EVENTS } from "./automata.js";
export type { Automaton, DeviceState, DeviceInput, IfState, IfInput, Transition, Forbidden } from "./automata.js";
export { DEFAULT_DEADLINES, DEADLINE_FIELDS, resolveDeadlines } from "./deadlines.js";
export type { Deadlines } from "./deadlines.js";
export { LogHistogram } from "./histogram.js";
export { formatElapsedMs, formatMs, formatNs } from "./duration.js";
export { NicMatcher, type NicKeys, type NicMatcherOptions } from "./nic-match.js";
export type { LatencyStats } from "./histogram.js";
export { Checker, checkEvents } from "./checker.js";
export type { CheckerOptions } from "./checker.js";
export type {
  CheckResult,
  DriverLatency,
  HistoryEntry,
  PendingExpectation,
  RuleReport,
  RuleStatus,
  Summary,
  Verdict,
} from "./verdict.js";
export { rulesMarkdown, automataDot, automataMermaid, cutoffsMarkdown, transitionsMarkdown, CUTOFFS, FREE_SEMANTICS, PROFILE_NOTES } from "./docs.js";
export { CascadeTracker, groupCascades, canBeConsequence, type CauseRef, type Cascade, type ThreadActivity } from "./cascade.js";
