// JUnit XML in the common (Ant/Jenkins/GitLab) schema: testsuites > testsuite >
// testcase > failure|error. Every rule checked is a test case; a rule with
// failing verdicts carries one <failure> whose text lists them. Warnings go to
// the case's system-out without failing it. An aborted run is an <error> on a
// separate "run" case, so CI sees it even when no rule failed.

import { bugStrikesText, escapeXml as x, formatNs } from "./format.js";
import { damageLine, describe, statusLine } from "./text.js";
import type { ReportVerdict, RunReport } from "./types.js";
import { byFirstOccurrence, findingsOf, isFailure, rulesOf, severityName } from "./verdicts.js";

const MAX_VERDICTS_PER_CASE = 100;

export function renderJunit(report: RunReport): string {
  const rules = rulesOf(report);
  const aborted = report.exit.status === "aborted";
  const tests = rules.length + 1;
  const failures = rules.filter((r) => r.failed).length;
  const skipped = rules.filter((r) => r.outcome === "not-exercised" || r.outcome === "not-observed").length;
  const errors = aborted ? 1 : 0;
  const seconds = (report.durationMs / 1000).toFixed(3);
  const timestamp = Number.isFinite(report.startedAtMs) ? new Date(report.startedAtMs).toISOString().replace(/\.\d+Z$/, "") : "";
  const suite = `plugstorm.${report.scenarioName || "storm"}`;

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<testsuites name="plugstorm" tests="${tests}" failures="${failures}" errors="${errors}" time="${seconds}">`);
  out.push(
    `  <testsuite name="${x(suite)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${seconds}"${timestamp ? ` timestamp="${timestamp}"` : ""}>`,
  );
  out.push(`    <properties>`);
  const props: Array<[string, string]> = [
    ["tool", report.toolVersion],
    ["scenario", report.scenarioName],
    ["seed", String(report.seed)],
    ["guest", report.profiles.guest],
    ["model", report.profiles.model],
    ["machine", report.profiles.machine],
    ["reproduce", report.reproduce],
    ["cycles", String(report.counts.cycles)],
    ["frames", String(report.counts.frames)],
    ["frames_lost", String(report.counts.framesLost)],
    ["frames_corrupt", String(report.counts.corrupt)],
  ];
  if (report.traceDamage) {
    props.push(["trace_bytes_not_checked", String(report.traceDamage.bytes)], ["trace_damaged_regions", String(report.traceDamage.regions.length)]);
  }
  // One property a bug injected into the sim kernel: 0 means the run never tested it.
  for (const b of report.bugStrikes ?? []) props.push([`bug_strikes.${b.bug}`, String(b.strikes)]);
  const findings = findingsOf(report).filter((f) => f.consequences.length > 0);
  if (findings.length > 0) props.push(["cascade_causes", String(findings.length)], ["cascade_consequences", String(findings.reduce((n, f) => n + f.consequences.length, 0))]);
  for (const [k, v] of props) out.push(`      <property name="${x(k)}" value="${x(v)}"/>`);
  out.push(`    </properties>`);

  // Broken rules in the order they first broke, then the rest as declared.
  const ordered = [...rules.filter((r) => r.verdicts.length > 0).sort(byFirstOccurrence), ...rules.filter((r) => r.verdicts.length === 0)];
  for (const r of ordered) {
    const name = r.rule.statement ? `${r.rule.id}: ${r.rule.statement}` : r.rule.id;
    const failing = r.verdicts.filter(isFailure);
    const warnings = r.verdicts.filter((v) => !isFailure(v));
    if (r.outcome === "not-exercised" || r.outcome === "not-observed") {
      // Neither pass nor fail: nothing tested it, or the guest cannot show it.
      const why = r.outcome === "not-observed" ? "not observed: the guest cannot report what this rule needs" : "not exercised: nothing in this run gave the rule a case to judge";
      out.push(`    <testcase classname="plugstorm.rules" name="${x(name)}" time="0">`);
      out.push(`      <skipped message="${x(why)}"/>`);
      out.push(`    </testcase>`);
      continue;
    }
    if (failing.length === 0 && warnings.length === 0) {
      out.push(`    <testcase classname="plugstorm.rules" name="${x(name)}" time="0"/>`);
      continue;
    }
    out.push(`    <testcase classname="plugstorm.rules" name="${x(name)}" time="0">`);
    if (failing.length > 0) {
      const first = failing[0]!;
      const type = (r.worst ?? "error").toUpperCase();
      const body = listVerdicts(failing, report);
      out.push(`      <failure message="${x(`${failing.length} violation${failing.length === 1 ? "" : "s"}: ${describe(first)}`)}" type="${x(type)}">${x(body)}</failure>`);
    }
    if (warnings.length > 0) out.push(`      <system-out>${x(listVerdicts(warnings, report))}</system-out>`);
    out.push(`    </testcase>`);
  }

  if (aborted) {
    out.push(`    <testcase classname="plugstorm.run" name="run completed" time="${seconds}">`);
    out.push(`      <error message="${x(statusLine(report))}" type="aborted">${x(report.exit.status === "aborted" ? report.exit.reason : "")}</error>`);
    out.push(`    </testcase>`);
  } else {
    out.push(`    <testcase classname="plugstorm.run" name="run completed" time="${seconds}"/>`);
  }
  const cascades = findings
    .map((f) => {
      const c = report.verdicts[f.cause]!;
      return `cause #${f.cause + 1} ${c.rule}: ${describe(c)}\n  ${f.consequences.length} consequence(s): ${f.consequences.map((i) => `#${i + 1} ${report.verdicts[i]!.rule}`).slice(0, 50).join(", ")}${f.consequences.length > 50 ? ", …" : ""}\n`;
    })
    .join("");
  const damage = report.traceDamage ? `NOT CHECKED: ${damageLine(report.traceDamage)}\n` : "";
  const strikes = (report.bugStrikes ?? []).map((b) => `${bugStrikesText(b)}\n`).join("");
  out.push(`    <system-out>${x(`seed ${report.seed}\nreproduce: ${report.reproduce}\n${strikes}${damage}${cascades}`)}</system-out>`);
  out.push(`  </testsuite>`);
  out.push(`</testsuites>`);
  return out.join("\n") + "\n";
}

const MAX_HISTORY_LINES = 12;

function listVerdicts(vs: readonly ReportVerdict[], report: RunReport): string {
  const lines = vs.slice(0, MAX_VERDICTS_PER_CASE).map((v) => {
    const at = [v.tNs != null ? `t=${formatNs(v.tNs)}` : "", v.recordIndex != null ? `record #${v.recordIndex}` : ""].filter(Boolean).join(", ");
    const where = [v.nicId, v.device].filter(Boolean).join("/");
    const out = [`[${severityName(v.severity)}]${where ? ` ${where}` : ""}${at ? ` (${at})` : ""}: ${v.message}`];
    if (v.cause) {
      const c = report.verdicts[v.cause.ordinal];
      out.push(`  consequence of #${v.cause.ordinal + 1} ${v.cause.rule}${c ? `: ${describe(c)}` : ""}`);
    }
    if (v.holders && v.holders.length) out.push(`  holders: ${v.holders.join(", ")}`);
    const history = v.history ?? [];
    if (history.length) {
      out.push("  events that led there:");
      for (const h of history.slice(-MAX_HISTORY_LINES)) out.push(`    ${h.text}`);
    }
    return out.join("\n");
  });
  if (vs.length > MAX_VERDICTS_PER_CASE) lines.push(`… and ${vs.length - MAX_VERDICTS_PER_CASE} more (see report.json)`);
  return lines.join("\n");
}
