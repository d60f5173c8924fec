// The short text summary the CLI prints at the end of a run: what broke, how
// often, how fast things were, what was lost, and how to run it again.

import { basename } from "node:path";
import { bugStrikesText, formatNs, isoTime, machineLine, notObservedItem, pad, padLeft, rejectedCommandText, rejectionText } from "./format.js";
import type { RejectedCommand, ReportVerdict, RunReport } from "./types.js";
import { byFirstOccurrence, findingsOf, rulesOf } from "./verdicts.js";

const MAX_RULE_LINES = 40;
const MAX_FINDING_LINES = 20;
const MAX_REJECTED_LINES = 5;

export function statusLine(report: RunReport): string {
  switch (report.exit.status) {
    case "clean":
      return "PASS";
    case "violations":
      return "VIOLATIONS";
    case "time-limit":
      return plannedEnd("TIME LIMIT", report);
    case "stopped":
      return plannedEnd("STOPPED from the live view", report);
    case "trace-limit":
      return plannedEnd("TRACE LIMIT", report);
    case "aborted":
      return `ABORTED: ${oneLine(report.exit.reason)}`;
  }
}

/** A planned end (a limit set, the live view's Stop) with nothing found: no ABORTED, but not a whole storm either. */
function plannedEnd(what: string, report: RunReport): string {
  return `${what}${report.counts.cycles === 0 ? " before the first cycle completed" : ""}, no violations`;
}

export function renderText(report: RunReport, files: readonly string[] = []): string {
  const out: string[] = [];
  const rules = rulesOf(report);
  const broken = rules.filter((r) => r.failed).sort(byFirstOccurrence);
  const warned = rules.filter((r) => !r.failed && r.verdicts.length > 0);
  const failures = broken.reduce((n, r) => n + r.verdicts.length, 0);
  const c = report.counts;

  out.push(`${report.toolVersion} · storm "${report.scenarioName}" · ${statusLine(report)}`);
  out.push(`  seed ${report.seed} · guest ${report.profiles.guest} · model ${report.profiles.model}`);
  out.push(`  machine: ${machineLine(report.profiles.machine, report.accel)}`);
  // Next to the bugs the machine line names: whether the run tested each.
  for (const b of report.bugStrikes ?? []) out.push(`  ${bugStrikesText(b)}`);
  if (report.notObserved && report.notObserved.length > 0) out.push(`  not observed: ${report.notObserved.map(notObservedItem).join("; ")}`);
  out.push(`  started ${isoTime(report.startedAtMs)} · took ${formatNs(report.durationMs * 1e6)}`);
  out.push(`  cycles ${c.cycles} · frames ${c.frames} · frames lost ${c.framesLost} · corrupt ${c.corrupt}`);
  if (report.traceDamage) out.push(`  NOT CHECKED: ${damageLine(report.traceDamage)}`);
  out.push("");

  if (broken.length === 0) {
    // A run that ended before its first cycle judged only what set-up gave: "none broken" alone read as a clean storm.
    out.push(`Rules broken: none (${rules.length} checked${c.cycles === 0 ? ", but no cycle completed" : ""})`);
  } else {
    out.push(`Rules broken: ${broken.length} of ${rules.length} checked, ${failures} violation${failures === 1 ? "" : "s"}, in the order they first broke`);
    const idWidth = Math.min(40, Math.max(...broken.map((r) => r.rule.id.length)));
    for (const r of broken.slice(0, MAX_RULE_LINES)) {
      const cons = r.consequences > 0 ? ` (${r.consequences} consequence${r.consequences === 1 ? "" : "s"})` : "";
      out.push(`  ${pad((r.worst ?? "error").toUpperCase(), 7)}${pad(r.rule.id, idWidth)}  ${padLeft(String(r.verdicts.length), 4)}×  ${describe(r.verdicts[0]!)}${cons}`);
    }
    if (broken.length > MAX_RULE_LINES) out.push(`  … and ${broken.length - MAX_RULE_LINES} more rules (see report.json)`);
  }
  const findings = findingsOf(report).filter((f) => f.consequences.length > 0);
  if (findings.length > 0) {
    out.push(`Cascades: ${findings.length} cause${findings.length === 1 ? "" : "s"} with consequences (docs/cascades.md)`);
    for (const f of findings.slice(0, MAX_FINDING_LINES)) {
      const cause = report.verdicts[f.cause]!;
      const byRule = new Map<string, number>();
      for (const i of f.consequences) byRule.set(report.verdicts[i]!.rule, (byRule.get(report.verdicts[i]!.rule) ?? 0) + 1);
      out.push(`  #${f.cause + 1} ${cause.rule}: ${describe(cause)}`);
      out.push(`      → ${f.consequences.length} consequence${f.consequences.length === 1 ? "" : "s"}: ${[...byRule].map(([r, n]) => `${r} ${n}×`).join(", ")}`);
    }
    if (findings.length > MAX_FINDING_LINES) out.push(`  … and ${findings.length - MAX_FINDING_LINES} more causes with consequences (see report.json)`);
  }
  const count = (o: string) => rules.filter((r) => r.outcome === o).length;
  const unjudged = count("not-exercised") + count("not-observed");
  if (unjudged > 0) {
    const parts = [`${count("passed")} passed`];
    if (count("not-exercised")) parts.push(`${count("not-exercised")} not exercised`);
    if (count("not-observed")) parts.push(`${count("not-observed")} not observed by this guest`);
    out.push(`Rules: ${parts.join(", ")}`);
  }
  if (warned.length > 0) {
    out.push(`Warnings: ${warned.map((r) => `${r.rule.id} ${r.verdicts.length}×`).join(", ")}`);
  }
  const notObserved = report.summary?.notObserved ?? [];
  if (notObserved.length > 0) out.push(`Not observed by this guest: ${notObserved.join(", ")}`);
  const rejected = report.rejectedCommands ?? [];
  if (rejected.length > 0) {
    out.push(`Guest commands rejected: ${rejected.length} (the storm did not do all it says)`);
    // By the guest's reason: a storm that asks for what the guest cannot do asks every cycle.
    const byReason = new Map<string, { n: number; first: RejectedCommand }>();
    for (const r of rejected) {
      const reason = rejectionText(r);
      const g = byReason.get(reason);
      if (g) g.n++;
      else byReason.set(reason, { n: 1, first: r });
    }
    for (const { n, first } of [...byReason.values()].slice(0, MAX_REJECTED_LINES)) out.push(`  ${padLeft(String(n), 4)}×  ${n === 1 ? "" : "first "}${rejectedCommandText(first)}`);
    if (byReason.size > MAX_REJECTED_LINES) out.push(`  … and ${byReason.size - MAX_REJECTED_LINES} more reasons (see report.json)`);
  }
  out.push("");

  const lat = report.timeline.latency;
  if (lat.length > 0) {
    const dw = Math.max(6, ...lat.map((l) => l.driver.length));
    const pw = Math.max(5, ...lat.map((l) => l.phase.length));
    out.push(`Latency  ${pad("driver", dw)}  ${pad("phase", pw)}  ${padLeft("n", 6)}  ${padLeft("p50", 9)}  ${padLeft("p90", 9)}  ${padLeft("p99", 9)}  ${padLeft("max", 9)}`);
    for (const l of lat) {
      out.push(
        `         ${pad(l.driver, dw)}  ${pad(l.phase, pw)}  ${padLeft(String(l.n), 6)}  ${padLeft(formatNs(l.p50Ns), 9)}  ${padLeft(formatNs(l.p90Ns), 9)}  ${padLeft(formatNs(l.p99Ns), 9)}  ${padLeft(formatNs(l.maxNs), 9)}`,
      );
    }
    out.push("");
  }

  const tl = report.timeline;
  const aggregated = tl.aggregated.reduce((n, a) => n + a.devices, 0);
  if (aggregated > 0) {
    out.push(`Timeline: ${tl.devicesSeen} devices, ${tl.lanes.length} kept in detail, ${aggregated} aggregated (limit ${tl.maxLanes} lanes)`);
  }
  out.push(`Seed: ${report.seed}`);
  out.push(`Reproduce: ${report.reproduce}`);
  if (report.traceFile) out.push(`Trace: ${report.traceFile}`);
  // Named as the trace is, within the output folder (the summary lives there, and the folder may move).
  if (files.length > 0) out.push(`Reports: ${files.map((f) => basename(f)).join(", ")}`);
  return out.join("\n") + "\n";
}

/** What a damaged trace left unchecked, in one line. */
export function damageLine(d: NonNullable<RunReport["traceDamage"]>): string {
  const lost = d.regions.every((r) => r.recordsLost !== null)
    ? `${d.regions.reduce((n, r) => n + (r.recordsLost ?? 0), 0)} record(s) lost`
    : "records lost: unknown";
  const first = d.regions[0];
  return `${d.bytes} byte${d.bytes === 1 ? "" : "s"} of the trace in ${d.regions.length} damaged region${d.regions.length === 1 ? "" : "s"} (${lost})${first ? `; first at byte ${first.offset}, before record #${first.atRecord}: ${first.kind}, ${first.detail}` : ""}`;
}

/** One line about a verdict: where, who held what, and what happened. */
export function describe(v: ReportVerdict): string {
  const where = [v.nicId, v.device].filter(Boolean).join("/");
  const holders = v.holders && v.holders.length > 0 ? ` holders ${v.holders.join(",")}` : "";
  // Checker messages often start with the device name already.
  const message = v.device && v.message.startsWith(`${v.device}: `) ? v.message.slice(v.device.length + 2) : v.message;
  return `${where ? where + ": " : ""}${oneLine(message)}${holders}`;
}

function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length > 160 ? flat.slice(0, 157) + "…" : flat;
}
