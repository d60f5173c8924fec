// What the checker says: verdicts as they arise and a summary at the end.

import type { CapabilityName } from "./events.js";
import type { LatencyStats } from "./histogram.js";
import type { ProfileName, Severity, Side } from "./rules.js";

export interface HistoryEntry {
  index: number;
  tNs: number;
  text: string;
}

export interface Verdict {
  rule: string;
  statement: string;
  principle: number | null;
  side: Side;
  severity: Severity;
  /** Guest device name (cdce0); "" when the rule is about no guest device. */
  device: string;
  /** QEMU id (nic<N>); "" when the device was never joined to a host add. */
  nicId: string;
  /** Holders involved: still holding, releasing wrongly, or acquiring late. */
  holders: string[];
  message: string;
  /** Record that broke the rule; for a deadline, the record that started it. */
  recordIndex: number;
  /** Trace time at which the rule broke (a deadline's due time for liveness rules). */
  tNs: number;
  /** The last events of this device, oldest first. */
  history: HistoryEntry[];
}

/**
 * passed: judged and never broken. violated: broken at least once.
 * not-exercised: observable, but nothing in the trace gave it a case to judge.
 * not-observed: the guest lacks a capability the rule needs (neither pass nor fail).
 * not-in-profile: the rule belongs to another OS profile.
 */
export type RuleStatus = "passed" | "violated" | "not-exercised" | "not-observed" | "not-in-profile";

export interface RuleReport {
  id: string;
  statement: string;
  principle: string;
  severity: Severity;
  side: Side;
  status: RuleStatus;
  checks: number;
  violations: number;
}

export interface DriverLatency {
  driver: string;
  /** Host add (or attach begin) -> attach returned. */
  attach: LatencyStats;
  /** Detach begin -> detach returned (success). */
  detach: LatencyStats;
  /** Host remove -> softc freed. */
  removal: LatencyStats;
  /** Drain begin -> drain end, all object kinds. */
  drain: LatencyStats;
}

export interface PendingExpectation {
  rule: string;
  device: string;
  nicId: string;
  dueNs: number;
}

export interface Summary {
  profile: ProfileName;
  /** Events the model consumed. */
  events: number;
  endTNs: number;
  guestFrames: number;
  /** Capabilities from the last Hello; null when no Hello was seen (all assumed). */
  capabilities: CapabilityName[] | null;
  devicesSeen: number;
  liveDevices: number;
  nicsAdded: number;
  nicsRemoved: number;
  /** Host add -> guest attach -> host remove -> guest free, completed. */
  cycles: number;
  detaches: number;
  vetoes: number;
  maxRefsHeld: { count: number; device: string; nicId: string; tNs: number };
  framesLost: number;
  corruptFrames: number;
  verdicts: {
    total: number;
    bySide: Record<Side, number>;
    bySeverity: Record<Severity, number>;
  };
  latency: DriverLatency[];
  rules: RuleReport[];
  notExercised: string[];
  notObserved: string[];
  /** Deadlines not yet due when the trace ended (neither kept nor broken). */
  pending: PendingExpectation[];
  pendingCount: number;
}

export interface CheckResult {
  verdicts: Verdict[];
  summary: Summary;
}
