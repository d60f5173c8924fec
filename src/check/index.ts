// Checks traces against the model: live (one record at a time, as the storm
// records them) or offline (a saved trace). The same records give the same
// verdicts either way; verdict records already in a trace are ignored.

import { plugstorm } from "../gen/plugstorm.js";
import { CascadeTracker, Checker, RULE_BY_ID, formatNs, ruleById, type CauseRef, type CheckResult, type Deadlines, type DeviceEvent, type HostAddEvent, type MachineEvent, type ProfileName, type RuleReport, type Summary, type Verdict } from "../model/index.js";
import { adaptRecord, type Adapted } from "./adapter.js";
import { ConsolePanicWatch } from "./console.js";

const MachKind = plugstorm.trace.v1.MachineEvent.Kind;

export { recordToEvent, toWire } from "./adapter.js";
export { ConsolePanicWatch } from "./console.js";
export { toReportVerdict, type ReportVerdictOptions } from "./report-verdict.js";
export type { CauseRef, CheckResult, Deadlines, ProfileName, Summary, Verdict, RuleReport, DriverLatency } from "../model/index.js";

export interface TraceCheckerOptions {
  profile: ProfileName;
  deadlines?: Partial<Deadlines>;
  onVerdict?: (v: Verdict) => void;
  /** Each verdict's events that led there (default true; see CheckerOptions.histories). */
  histories?: boolean;
  /**
   * Whether a verdict is marked with the cause it is a consequence of
   * (CheckedVerdict.cause; default true). False for a caller that never
   * groups findings (the shrinker's judged runs): nothing follows the
   * threads and joins that marking needs, every record.
   */
  causes?: boolean;
  /** Each driver's latencies for the summary (default true; see CheckerOptions.latencies). */
  latencies?: boolean;
  /** Each verdict's message and holders' descriptions (default true; see CheckerOptions.texts). */
  texts?: boolean;
}

const NONE: readonly Verdict[] = Object.freeze([]) as readonly Verdict[];

/**
 * Bytes of a trace its reader skipped (src/trace DamagedRegion fits): what
 * was there was not checked, so a damaged trace is never clean.
 */
export interface TraceDamage {
  offset: number;
  bytes: number;
  kind: "corrupt" | "truncated";
  detail: string;
  /** Records read before the damage. */
  atRecord: number;
  /** Records lost, or null when that cannot be told. */
  recordsLost: number | null;
}

/**
 * The rule a damaged trace breaks (src/model/rules/trace.ts). It is judged
 * here, where records are read, not in the model: the model sees events, and
 * damage is the absence of them.
 */
export const TRACE_INTACT = ruleById("trace-intact");

/** The verdict for one damaged region; tNs is the time of the last good record before it. */
export function damageVerdict(d: TraceDamage, tNs: number): Verdict {
  const lost = d.recordsLost === null ? "an unknown number of records" : `${d.recordsLost} record${d.recordsLost === 1 ? "" : "s"}`;
  return {
    rule: TRACE_INTACT.id,
    statement: TRACE_INTACT.statement,
    principle: null,
    side: TRACE_INTACT.side,
    severity: TRACE_INTACT.severity,
    device: "",
    nicId: "",
    holders: [],
    message: `${d.bytes} byte${d.bytes === 1 ? "" : "s"} at byte ${d.offset} not checked (${d.kind}: ${d.detail}); ${lost} lost${d.kind === "truncated" ? "; the trace ends there" : "; checking resumed at the next good record"}`,
    recordIndex: d.atRecord,
    tNs,
    history: [],
  };
}

/** A verdict with its place in a cascade: cause set when it is a consequence (src/model/cascade.ts). */
export type CheckedVerdict = Verdict & { cause?: CauseRef };

export class TraceChecker {
  private readonly checker: Checker;
  /** Null when verdicts are not marked with their causes (TraceCheckerOptions.causes). */
  private readonly cascade: CascadeTracker | null;
  private readonly console = new ConsolePanicWatch();
  /** Verdicts of damage, each with the number of model verdicts before it (for the merged order). */
  private readonly damageVerdicts: { v: Verdict; after: number }[] = [];
  private modelVerdicts = 0;

  constructor(opts: TraceCheckerOptions) {
    const outer = opts.onVerdict;
    this.cascade = opts.causes === false ? null : new CascadeTracker();
    this.checker = new Checker({
      profile: opts.profile,
      deadlines: opts.deadlines,
      histories: opts.histories,
      latencies: opts.latencies,
      texts: opts.texts,
      onVerdict: (v) => {
        this.modelVerdicts++;
        this.classify(v);
        outer?.(v);
      },
    });
    this.onVerdict = outer;
  }

  private readonly onVerdict: ((v: Verdict) => void) | undefined;

  private classify(v: Verdict): void {
    if (this.cascade === null) return;
    const cause = this.cascade.verdict(v);
    if (cause) (v as CheckedVerdict).cause = cause;
  }

  /**
   * Reports bytes the reader skipped before the next record; tNs is the
   * time of the last good record. Returns the verdict it makes.
   */
  damaged(d: TraceDamage, tNs: number): Verdict[] {
    const v = damageVerdict(d, tNs);
    this.classify(v);
    this.damageVerdicts.push({ v, after: this.modelVerdicts });
    this.onVerdict?.(v);
    return [v];
  }

  /** Checks one record (index = its 0-based position in the trace); returns the verdicts it caused. */
  push(record: plugstorm.trace.v1.IRecord, index: number): Verdict[] {
    const adapted = this.adapted;
    const e = adaptRecord(record, index, adapted);
    if (e === null) {
      // Console output maps to no event: the panic watch reads it here.
      const m = record.machine;
      if (!m || m.kind !== MachKind.CONSOLE) return NONE as Verdict[];
      const panic = this.console.feed(m.text ?? "");
      if (panic === null) return NONE as Verdict[];
      return this.checker.push({ type: "panic", t: record.tNs ?? 0, index, message: panic, device: "" }) as Verdict[];
    }
    // The type and time from the adapter, and the fields in helpers of one event type each: read from events of every type, each would be a slow megamorphic load.
    const type = adapted.type;
    if (type === "machine") this.machine(e as MachineEvent);
    const out = this.checker.pushTyped(e, type, adapted.t) as Verdict[];
    if (this.cascade === null) return out;
    if (type === "device") this.deviceActivity(e as DeviceEvent, index);
    else if (type === "host-add") this.hostAdd(e as HostAddEvent);
    return out;
  }

  /** Where the adapter leaves each event's type and time. */
  private readonly adapted: Adapted = { type: "guest-other", t: 0 };

  private machine(e: MachineEvent): void {
    if (e.kind === "started") this.console.reset();
  }

  private deviceActivity(e: DeviceEvent, index: number): void {
    const k = e.kind;
    this.cascade!.deviceEvent(e.thread, e.name, e.serial, k === "detach-begin" || k === "detach-end" || k === "free" ? k : "other", index);
  }

  private hostAdd(e: HostAddEvent): void {
    this.cascade!.hostAdd(e.nicId, e.bus, e.port);
  }

  /** Judges deadlines due before tNs with no record (live runs: call on a timer with the trace clock). */
  advance(tNs: number): Verdict[] {
    return this.checker.advance(tNs) as Verdict[];
  }

  /** finish() without the result: judges the deadlines due before endTNs; finish() later summarises (Checker.close). */
  close(endTNs?: number): void {
    this.checker.close(endTNs);
  }

  /** Judges deadlines due before endTNs (default: last record time) and summarises; damage verdicts sit where the damage was. */
  finish(endTNs?: number): CheckResult {
    const r = this.checker.finish(endTNs);
    const damaged = this.damageVerdicts;
    const verdicts: Verdict[] = [];
    let d = 0;
    r.verdicts.forEach((v, i) => {
      while (d < damaged.length && damaged[d]!.after <= i) verdicts.push(damaged[d++]!.v);
      verdicts.push(v);
    });
    while (d < damaged.length) verdicts.push(damaged[d++]!.v);
    const s = r.summary;
    const intact: RuleReport = {
      id: TRACE_INTACT.id,
      statement: TRACE_INTACT.statement,
      principle: "",
      severity: TRACE_INTACT.severity,
      side: TRACE_INTACT.side,
      status: damaged.length > 0 ? "violated" : "passed",
      checks: 1,
      violations: damaged.length,
    };
    const summary: Summary = {
      ...s,
      rules: [...s.rules.filter((x) => x.id !== TRACE_INTACT.id), intact],
      verdicts: {
        total: s.verdicts.total + damaged.length,
        bySide: { ...s.verdicts.bySide, channel: s.verdicts.bySide.channel + damaged.length },
        bySeverity: { ...s.verdicts.bySeverity, error: s.verdicts.bySeverity.error + damaged.length },
      },
    };
    return { verdicts, summary };
  }
}

/** Checks a whole trace (records in order, index = position). */
export function checkRecords(
  records: Iterable<plugstorm.trace.v1.IRecord>,
  opts: TraceCheckerOptions & { endTNs?: number },
): CheckResult {
  const c = new TraceChecker(opts);
  let i = 0;
  for (const r of records) c.push(r, i++);
  return c.finish(opts.endTNs);
}

function secs(ns: number): string {
  return `${(ns / 1e9).toFixed(6)} s`;
}

/**
 * Where a verdict happened, each time named: the record that broke the rule
 * (or started the deadline) with its time, and for a deadline when it ran out.
 */
export function verdictWhere(v: Verdict): string {
  const rule = RULE_BY_ID.get(v.rule);
  const startT = v.history.find((h) => h.index === v.recordIndex)?.tNs;
  if (rule?.liveness) {
    return `at record #${v.recordIndex}${startT !== undefined ? ` (t=${secs(startT)})` : ""}; deadline ran out at t=${secs(v.tNs)}`;
  }
  return `at record #${v.recordIndex} (t=${secs(startT ?? v.tNs)})`;
}

/** A verdict for people: what broke, where, and the events that led there. */
export function formatVerdict(v: Verdict): string {
  const who = v.device ? `${v.device}${v.nicId ? ` (${v.nicId})` : ""}` : v.nicId || "-";
  const lines = [`${v.severity.toUpperCase()} [${v.side}] ${v.rule}: ${who} ${verdictWhere(v)}`];
  const cause = (v as CheckedVerdict).cause;
  if (cause) lines.push(`  consequence of verdict ${cause.ordinal + 1} (${cause.rule} on ${cause.device}${cause.nicId ? ` (${cause.nicId})` : ""}, which blocks thread ${cause.thread})`);
  lines.push(`  ${v.message}`);
  if (v.holders.length) lines.push(`  holders: ${v.holders.join(", ")}`);
  lines.push(`  rule: ${v.statement}${v.principle !== null ? ` (principle ${v.principle})` : ""}`);
  if (v.history.length) {
    lines.push("  events that led there:");
    for (const h of v.history) lines.push(`    ${h.text}`);
  }
  return lines.join("\n");
}

/** The end-of-run summary for people: counts, latencies per driver, rule statuses. */
export function formatSummary(s: Summary): string {
  const v = s.verdicts;
  const lines = [
    `profile ${s.profile}: ${s.events} events, ${s.guestFrames} guest frames, ${s.cycles} cycles, ${s.nicsAdded} NICs added, ${s.nicsRemoved} removed, ${s.devicesSeen} guest devices (${s.liveDevices} live at end)`,
    `verdicts: ${v.total} (host ${v.bySide.host}, guest ${v.bySide.guest}, channel ${v.bySide.channel}; fatal ${v.bySeverity.fatal}, error ${v.bySeverity.error}, warning ${v.bySeverity.warning})`,
    `frames lost ${s.framesLost}, corrupt ${s.corruptFrames}; most references held at once: ${s.maxRefsHeld.count}${s.maxRefsHeld.device ? ` on ${s.maxRefsHeld.device}${s.maxRefsHeld.nicId ? ` (${s.maxRefsHeld.nicId})` : ""}` : ""}`,
  ];
  for (const l of s.latency) {
    const f = (name: string, x: typeof l.attach) => (x.count ? `${name} p50 ${formatNs(x.p50Ns)} p99 ${formatNs(x.p99Ns)} max ${formatNs(x.maxNs)} (n=${x.count})` : "");
    lines.push(`  ${l.driver}: ${[f("attach", l.attach), f("detach", l.detach), f("removal", l.removal), f("drain", l.drain)].filter(Boolean).join("; ")}`);
  }
  if (s.pendingCount) lines.push(`deadlines not yet due at the end: ${s.pendingCount}`);
  const by = (st: string) => s.rules.filter((r) => r.status === st).map((r) => r.id);
  for (const st of ["violated", "passed", "not-exercised", "not-observed"]) {
    const ids = by(st);
    if (ids.length) lines.push(`${st}: ${ids.join(", ")}`);
  }
  return lines.join("\n");
}

const SIDE: Record<Verdict["side"], plugstorm.trace.v1.Verdict.Side> = {
  host: plugstorm.trace.v1.Verdict.Side.HOST,
  guest: plugstorm.trace.v1.Verdict.Side.GUEST,
  channel: plugstorm.trace.v1.Verdict.Side.CHANNEL,
};
const SEVERITY: Record<Verdict["severity"], plugstorm.trace.v1.Verdict.Severity> = {
  warning: plugstorm.trace.v1.Verdict.Severity.WARNING,
  error: plugstorm.trace.v1.Verdict.Severity.ERROR,
  fatal: plugstorm.trace.v1.Verdict.Severity.FATAL,
};

/** A verdict as a trace record body, for recording live verdicts. */
export function verdictToRecord(v: Verdict): plugstorm.trace.v1.IVerdict {
  return {
    rule: v.rule,
    side: SIDE[v.side],
    severity: SEVERITY[v.severity],
    device: v.device,
    nicId: v.nicId,
    holders: v.holders.slice(),
    message: v.message,
    recordIndex: v.recordIndex,
    ...((v as CheckedVerdict).cause ? { cause: { ...(v as CheckedVerdict).cause! } } : {}),
  };
}
