// Reports written at the end of every storm run: a text summary (returned, for
// the CLI to print), report.json, junit.xml and a self-contained report.html.

import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { renderHtmlBytes } from "./html.js";
import { renderJunit } from "./junit.js";
import { renderText } from "./text.js";
import type { RunReport } from "./types.js";
import { utf8Bytes } from "./utf8.js";
import { makeDirs } from "../trace/make-dirs.js";
import { findingsOf, rulesOf, severityName, sideName } from "./verdicts.js";

export type * from "./types.js";
export { TimelineCollector, type TimelineOptions } from "./timeline.js";
export { renderText } from "./text.js";
export { renderJunit } from "./junit.js";
export { renderHtml, renderHtmlBytes, PHASE_COLOURS, type HtmlOptions } from "./html.js";
export { rulesOf, severityName, sideName, isFailure, findingsOf, byFirstOccurrence, type RuleResult, type Finding } from "./verdicts.js";
export { accelText, bugStrikesText, formatNs, machineLine, notObservedItem, rejectedCommandText, rejectionText } from "./format.js";

export const REPORT_FILES = ["summary.txt", "report.json", "junit.xml", "report.html"] as const;

/** The JSON report: the RunReport as given, plus per-rule results, under a schema tag. */
export function renderJson(report: RunReport): string {
  const rules = rulesOf(report).map((r) => ({
    id: r.rule.id,
    ...(r.rule.statement ? { statement: r.rule.statement } : {}),
    status: r.outcome,
    violations: r.verdicts.length,
    ...(r.worst ? { worstSeverity: r.worst } : {}),
    ...(r.verdicts.length > 0 ? { firstVerdict: r.firstOrdinal, consequences: r.consequences } : {}),
  }));
  const verdicts = report.verdicts.map((v) => ({ ...v, side: sideName(v.side), severity: severityName(v.severity) }));
  // Findings: every cause (a verdict that is no consequence) with the verdicts grouped under it, in order.
  const findings = findingsOf(report);
  return JSON.stringify({ schema: "plugstorm.report.v1", ...report, verdicts, rules, findings }, null, 2) + "\n";
}

/**
 * The bodies of REPORT_FILES, in their order, each made when called: text is
 * summary.txt (made already: the caller prints it too); report.json and
 * report.html come as UTF-8 bytes made in one pass (utf8.ts, html-out.ts).
 * Both writers take them from here: writeReports and the storm's
 * writeRunReports, which makes each only when its file is written.
 */
export function reportBodies(report: RunReport, text: string): Array<() => string | Uint8Array> {
  return [() => text, () => utf8Bytes(renderJson(report)), () => renderJunit(report), () => renderHtmlBytes(report)];
}

/**
 * Writes summary.txt, report.json, junit.xml and report.html into outDir
 * (created if missing) and returns the text summary and the paths written.
 * Each file is written to a temporary name and renamed, so a reader never sees
 * half a report.
 */
export async function writeReports(outDir: string, report: RunReport): Promise<{ text: string; files: string[] }> {
  if (typeof outDir !== "string" || outDir === "") throw new TypeError("writeReports: outDir must be a non-empty path");
  makeDirs(outDir);
  const files = REPORT_FILES.map((n) => join(outDir, n));
  const text = renderText(report, files);
  const bodies = reportBodies(report, text).map((render) => render());
  await Promise.all(
    files.map(async (path, i) => {
      const tmp = `${path}.tmp-${process.pid}`;
      await writeFile(tmp, bodies[i]!, "utf8");
      await rename(tmp, path);
    }),
  );
  return { text, files };
}
