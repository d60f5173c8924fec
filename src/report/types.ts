// Plain data the reports are made from. The storm runner builds a RunReport;
// nothing here refers to live objects, so a RunReport can be serialised as is
// (report.json) and rendered again later.

/** Which side broke a rule (names of plugstorm.trace.v1.Verdict.Side). */
export type VerdictSide = "host" | "guest" | "channel" | "unspecified";
/** How bad a violation is (names of plugstorm.trace.v1.Verdict.Severity). */
export type VerdictSeverity = "warning" | "error" | "fatal" | "unspecified";

/**
 * A checker verdict, accepted structurally: the checker's own Verdict type fits
 * whether it spells side/severity as names or as the trace enum's numbers.
 */
export interface ReportVerdict {
  rule: string;
  side?: VerdictSide | string | number | null;
  severity?: VerdictSeverity | string | number | null;
  /** Guest device name (cdce0). */
  device?: string | null;
  /** QEMU id (nic<N>). */
  nicId?: string | null;
  holders?: readonly string[] | null;
  message: string;
  /** Trace time of the record that broke the rule, when the checker knows it. */
  tNs?: number | null;
  /** 0-based index of the record that broke the rule. */
  recordIndex?: number | null;
  /** The rule's one-line statement, when the checker attaches it. */
  statement?: string | null;
  /** The events that led there, oldest first, when the checker gives them. */
  history?: readonly { text: string; tNs?: number }[] | null;
  /**
   * Set when the verdict is a consequence of an earlier one (docs/cascades.md):
   * ordinal is the cause's position in the report's verdict list.
   */
  cause?: { ordinal: number; rule: string; device?: string; nicId?: string; recordIndex?: number; thread?: string } | null;
}

/** Bytes of a trace that could not be read and so were not checked (proto/TRACE.md "Damage"). */
export interface TraceDamageReport {
  /** Bytes skipped in all. */
  bytes: number;
  regions: readonly {
    offset: number;
    bytes: number;
    kind: "corrupt" | "truncated";
    detail: string;
    /** Records read before the region. */
    atRecord: number;
    /** Records lost in it; null when that cannot be told. */
    recordsLost: number | null;
  }[];
}

/** A rule the run was checked against; every rule becomes one JUnit test case. */
export interface ReportRule {
  id: string;
  /** One-line statement of the rule. */
  statement?: string;
  /** The design principle it comes from. */
  principle?: string | number | null;
  /**
   * The checker's judgement when it gives one: passed, violated, not-exercised
   * (nothing in the run tested it), not-observed (the guest cannot show it),
   * not-in-profile (another OS's rule, left out of the reports).
   */
  status?: string;
}

/**
 * The checker's summary (src/model Summary fits), accepted structurally. Only
 * the fields reports use are named; anything else it carries is kept in
 * report.json untouched.
 */
export interface ReportSummary {
  /** Rules checked (ids or full descriptions). */
  rules?: readonly (string | ReportRule)[];
  /** What the guest could not observe: judged "not observed", never pass/fail. */
  notObserved?: readonly string[];
}

export type ExitStatus =
  | { status: "clean" }
  | { status: "violations" }
  /** Stopped at the time limit it was given (--time-limit), no violation found until then: a planned end, not a failure. */
  | { status: "time-limit" }
  /** Stopped from the live view (its Stop), no violation found until then; reason: stopText's words. */
  | { status: "stopped"; reason: string }
  /** Stopped once its trace reached --max-trace-bytes, no violation found until then; reason: how many bytes. */
  | { status: "trace-limit"; reason: string }
  | { status: "aborted"; reason: string };

export interface RunCounts {
  /** Add/remove cycles completed. */
  cycles: number;
  /** Guest frames received. */
  frames: number;
  /** Frames lost (seq gaps). */
  framesLost: number;
  /** Frames that failed CRC or decode. */
  corrupt: number;
}

/** A guest command (a fault, hold, traffic step...) the guest agent refused. */
export interface RejectedCommand {
  /** The host action that sent it (the trace's action id). */
  actionId: number;
  /** The telemetry command: "injectFault", "holdRefs", ... */
  command: string;
  /** The NIC it named ("" for none) and its arguments in words: "fault leak-ref, arg netdev". */
  nic: string;
  args: string;
  /** The guest's error number and message. */
  error: number;
  message: string;
  tNs: number;
}

/**
 * A bug injected into the sim kernel and the times it struck: changed what
 * the kernel did. One that never struck was not tested by the run, whatever
 * the rules say; needs (then only) says what its trigger needs.
 */
export interface BugStrikes {
  bug: string;
  strikes: number;
  needs?: string;
}

export interface RunReport {
  /** "plugstorm 0.1.0". */
  toolVersion: string;
  scenarioName: string;
  /** The run's seed; a string when it does not fit a double exactly. */
  seed: number | string;
  profiles: {
    /** Machine profile name or JSON. */
    machine: string;
    /** "sim", "linux-guest", "netbsd-guest". */
    guest: string;
    /** "netbsd", "linux". */
    model: string;
  };
  /** Wall clock at the start, ms since the Unix epoch. */
  startedAtMs: number;
  durationMs: number;
  /** A command line that runs the same storm again. */
  reproduce: string;
  exit: ExitStatus;
  verdicts: readonly ReportVerdict[];
  summary?: ReportSummary | null;
  /** Rules checked, when the summary does not list them. */
  rules?: readonly (string | ReportRule)[];
  counts: RunCounts;
  /** Where the trace was written, if anywhere (relative to the output folder or absolute). */
  traceFile?: string;
  /** Set when the report was made from a damaged trace: what was not checked. */
  traceDamage?: TraceDamageReport;
  /** What the guest agent said it cannot observe, each "WHAT: why" (its Hello's unavailable list): the rules that need it are not checked. */
  notObserved?: string[];
  /** The accelerator QEMU ran with and, when auto chose it or KVM fell back, why (accelText): "tcg (auto: /dev/kvm does not exist)". */
  accel?: string;
  /** Guest commands the guest agent refused: the storm did not do all it says. */
  rejectedCommands?: readonly RejectedCommand[];
  /** The sim machine's injected bugs (--bug, machine.bugs, fault steps), each with its strikes. */
  bugStrikes?: readonly BugStrikes[];
  timeline: Timeline;
}

// ------------------------------------------------------------------ timeline

/** A bar on a lane; endNs absent means it never finished before the run ended. */
export interface Span {
  phase: SpanPhase;
  startNs: number;
  endNs?: number;
  /** Short extra text: errno, outcome, drained object kind, flags. */
  note?: string;
  /** True when the phase ended badly (refused, veto, attach error). */
  failed?: boolean;
}

export type HostPhase = "device_add" | "device_del" | "removal";
export type GuestPhase = "attach" | "detach" | "drain";
export type SpanPhase = HostPhase | GuestPhase;

export interface PointEvent {
  kind: "device_deleted" | "deactivate" | "free";
  tNs: number;
  note?: string;
}

export interface ViolationMark {
  tNs: number;
  rule: string;
  severity: VerdictSeverity;
  message: string;
  holders: string[];
  device?: string;
}

/** A device-side fault that took effect on an emulated NIC (usb-redir kinds). */
export interface FaultMark {
  tNs: number;
  /** stall, status, pending, late, disconnect-after-control, malformed. */
  fault: string;
  /** Where it hit: "bulk-in 0x81", "control bRequest 6 wValue 0x200", "configuration descriptor". */
  endpoint: string;
  /** What the host got: stall, ioerror, pending, "late 50 ms", disconnect, or the malformation. */
  status: string;
}

/** One device (one QEMU id, or one guest device the host never added). */
export interface DeviceLane {
  /** nic<N>, or "guest:<name>" for a guest device that no host add explains. */
  key: string;
  nicId?: string;
  nicKind?: string;
  bus?: string;
  /** Guest device names seen for this NIC (cdce0, ...). */
  devices: string[];
  /** Guest driver (cdce, ne, cdc_ether). */
  driver?: string;
  firstNs: number;
  lastNs: number;
  host: Span[];
  guest: Span[];
  points: PointEvent[];
  /** References held over time: [tNs, count] steps, count after each change. */
  refs: Array<[number, number]>;
  violations: ViolationMark[];
  /** Device-side faults (emulated NICs), at most a bounded number; faultsDropped counts the rest. */
  faults?: FaultMark[];
  faultsDropped?: number;
  /** Older detail of this lane was dropped to bound memory; detail starts here. */
  truncatedBeforeNs?: number;
  /** Order (from 0) of this lane's first violation among the run's violations. */
  firstViolation?: number;
}

/** Devices whose detail was dropped to bound memory, grouped by kind. */
export interface LaneAggregate {
  group: string;
  devices: number;
  violations: number;
  hostSpans: number;
  guestSpans: number;
}

export interface ChannelMark {
  tNs: number;
  kind: "seq_gap" | "corrupt" | "oversize" | "disconnected" | "ack_timeout" | "session_start";
  /** Frames lost for gaps, bytes skipped for corrupt/oversize. */
  amount: number;
}

export interface LatencyStats {
  /** Guest driver for guest phases, NIC kind for host phases. */
  driver: string;
  /** attach, detach, drain:<kind>, device_add, device_del, removal, add→attached, del→freed. */
  phase: string;
  n: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  maxNs: number;
}

export interface Timeline {
  startNs: number;
  endNs: number;
  /** Lanes kept in detail, ordered by first appearance. */
  lanes: DeviceLane[];
  /** Every device seen, including those aggregated. */
  devicesSeen: number;
  /** The lane limit in force. */
  maxLanes: number;
  aggregated: LaneAggregate[];
  /** Violations that name no device. */
  runViolations: ViolationMark[];
  channel: ChannelMark[];
  /** Channel marks not kept (beyond the limit). */
  channelMarksDropped: number;
  latency: LatencyStats[];
  records: number;
}
