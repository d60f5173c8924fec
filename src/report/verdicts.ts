// Normalises verdicts from whatever shape the checker gives them (names or the
// trace enum's numbers) and groups them by rule for the reports.

import { plugstorm } from "../gen/plugstorm.js";
import { groupCascades } from "../model/index.js";
import type { ReportRule, ReportVerdict, RunReport, VerdictSeverity, VerdictSide } from "./types.js";

export function severityName(s: ReportVerdict["severity"]): VerdictSeverity {
  const name = typeof s === "number" ? plugstorm.trace.v1.Verdict.Severity[s] ?? "" : String(s ?? "");
  const n = name.toLowerCase().replace(/^severity_/, "");
  return n === "warning" || n === "error" || n === "fatal" ? n : n === "warn" ? "warning" : "unspecified";
}

export function sideName(s: ReportVerdict["side"]): VerdictSide {
  const name = typeof s === "number" ? plugstorm.trace.v1.Verdict.Side[s] ?? "" : String(s ?? "");
  const n = name.toLowerCase().replace(/^side_/, "");
  return n === "host" || n === "guest" || n === "channel" ? n : "unspecified";
}

const RANK: Record<VerdictSeverity, number> = { fatal: 3, error: 2, unspecified: 1, warning: 0 };

/** Warnings are reported but do not fail a rule; an unspecified severity counts as an error. */
export function isFailure(v: ReportVerdict): boolean {
  return severityName(v.severity) !== "warning";
}

export interface RuleResult {
  rule: ReportRule;
  verdicts: ReportVerdict[];
  /** Worst severity among the verdicts; undefined when there are none. */
  worst?: VerdictSeverity;
  failed: boolean;
  /** failed, warned, passed, or the checker's reason it could not judge. */
  outcome: "failed" | "warned" | "passed" | "not-exercised" | "not-observed";
  /** Position of its first verdict in the report's list (Infinity when none). */
  firstOrdinal: number;
  /** Its verdicts that are consequences of an earlier cause (docs/cascades.md). */
  consequences: number;
}

/**
 * One entry per rule: every rule the run was checked against (from the summary
 * or the report's rule list) plus any rule a verdict names that the list lacks,
 * in list order, then by first verdict. Rules of another OS profile are left
 * out unless a verdict names them.
 */
export function rulesOf(report: RunReport): RuleResult[] {
  const byId = new Map<string, RuleResult>();
  const declared = [...(report.summary?.rules ?? []), ...(report.rules ?? [])];
  for (const r of declared) {
    const rule: ReportRule = typeof r === "string" ? { id: r } : { ...r };
    if (rule.status === "not-in-profile") {
      continue;
    }
    const prev = byId.get(rule.id);
    if (prev) {
      // A fuller description wins over a bare id.
      if (!prev.rule.statement && rule.statement) prev.rule = { ...rule, ...(prev.rule.status ? { status: prev.rule.status } : {}) };
      if (!prev.rule.status && rule.status) prev.rule.status = rule.status;
      continue;
    }
    byId.set(rule.id, { rule, verdicts: [], failed: false, outcome: "passed", firstOrdinal: Infinity, consequences: 0 });
  }
  report.verdicts.forEach((v, i) => {
    let r = byId.get(v.rule);
    if (!r) {
      r = { rule: { id: v.rule, ...(v.statement ? { statement: v.statement } : {}) }, verdicts: [], failed: false, outcome: "passed", firstOrdinal: i, consequences: 0 };
      byId.set(v.rule, r);
    }
    if (r.firstOrdinal === Infinity) r.firstOrdinal = i;
    if (v.cause) r.consequences++;
    if (!r.rule.statement && v.statement) r.rule.statement = v.statement;
    r.verdicts.push(v);
    const sev = severityName(v.severity);
    if (r.worst === undefined || RANK[sev] > RANK[r.worst]) r.worst = sev;
    if (isFailure(v)) r.failed = true;
  });
  for (const r of byId.values()) {
    r.outcome = r.failed
      ? "failed"
      : r.verdicts.length > 0
        ? "warned"
        : r.rule.status === "not-exercised" || r.rule.status === "not-observed"
          ? r.rule.status
          : "passed";
  }
  return [...byId.values()];
}

/**
 * Rules in the order they first broke (#16: the first cause is the first
 * thing shown; counts go beside, they do not sort).
 */
export function byFirstOccurrence(a: RuleResult, b: RuleResult): number {
  return a.firstOrdinal - b.firstOrdinal;
}

/** One finding: a cause (index in the report's verdicts) and its consequences. */
export interface Finding {
  cause: number;
  consequences: number[];
}

/** The report's verdicts grouped under their causes (src/model/cascade.ts), causes in order. */
export function findingsOf(report: RunReport): Finding[] {
  return groupCascades(report.verdicts);
}

/** Broken rules worst first (fatal, error, ...), then by how often they broke. */
export function byGravity(a: RuleResult, b: RuleResult): number {
  return RANK[b.worst ?? "warning"] - RANK[a.worst ?? "warning"] || b.verdicts.length - a.verdicts.length;
}
