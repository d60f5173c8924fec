// Checks traces against the model: live (one record at a time, as the storm
// records them) or offline (a saved trace). The same records give the same
// verdicts either way; verdict records already in a trace are ignored.

import { plugstorm } from "../gen/plugstorm.js";
import { Checker, type CheckResult, type Deadlines, type ProfileName, type Summary, type Verdict } from "../model/index.js";
import { recordToEvent } from "./adapter.js";
import { ConsolePanicWatch } from "./console.js";

const MachKind = plugstorm.trace.v1.MachineEvent.Kind;

export { recordToEvent } from "./adapter.js";
export { ConsolePanicWatch } from "./console.js";
export type { CheckResult, Deadlines, ProfileName, Summary, Verdict, RuleReport, DriverLatency } from "../model/index.js";

export interface TraceCheckerOptions {
  profile: ProfileName;
  deadlines?: Partial<Deadlines>;
  onVerdict?: (v: Verdict) => void;
}

const NONE: readonly Verdict[] = Object.freeze([]) as readonly Verdict[];

export class TraceChecker {
  private readonly checker: Checker;
  private readonly console = new ConsolePanicWatch();

  constructor(opts: TraceCheckerOptions) {
    this.checker = new Checker(opts);
  }

  /** Checks one record (index = its 0-based position in the trace); returns the verdicts it caused. */
  push(record: plugstorm.trace.v1.IRecord, index: number): Verdict[] {
    const m = record.machine;
    if (m && m.kind === MachKind.CONSOLE) {
      const panic = this.console.feed(m.text ?? "");
      if (panic === null) return NONE as Verdict[];
      return this.checker.push({ type: "panic", t: record.tNs ?? 0, index, message: panic, device: "" }) as Verdict[];
    }
    if (m && m.kind === MachKind.STARTED) this.console.reset();
    const e = recordToEvent(record, index);
    if (e === null) return NONE as Verdict[];
    return this.checker.push(e) as Verdict[];
  }

  /** Judges deadlines due before tNs with no record (live runs: call on a timer with the trace clock). */
  advance(tNs: number): Verdict[] {
    return this.checker.advance(tNs) as Verdict[];
  }

  /** Judges deadlines due before endTNs (default: last record time) and summarises. */
  finish(endTNs?: number): CheckResult {
    return this.checker.finish(endTNs);
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
  return `${(ns / 1e9).toFixed(6)}s`;
}

/** A verdict for people: what broke, where, and the events that led there. */
export function formatVerdict(v: Verdict): string {
  const who = v.device ? `${v.device}${v.nicId ? ` (${v.nicId})` : ""}` : v.nicId || "-";
  const lines = [
    `${v.severity.toUpperCase()} [${v.side}] ${v.rule}: ${who} at record #${v.recordIndex}, t=${secs(v.tNs)}`,
    `  ${v.message}`,
  ];
  if (v.holders.length) lines.push(`  holders: ${v.holders.join(", ")}`);
  lines.push(`  rule: ${v.statement}${v.principle !== null ? ` (principle ${v.principle})` : ""}`);
  if (v.history.length) {
    lines.push("  events that led there:");
    for (const h of v.history) lines.push(`    ${h.text}`);
  }
  return lines.join("\n");
}

function ms(ns: number): string {
  return ns >= 1e9 ? `${(ns / 1e9).toFixed(2)} s` : ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(1)} µs`;
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
    const f = (name: string, x: typeof l.attach) => (x.count ? `${name} p50 ${ms(x.p50Ns)} p99 ${ms(x.p99Ns)} max ${ms(x.maxNs)} (n=${x.count})` : "");
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
  };
}
