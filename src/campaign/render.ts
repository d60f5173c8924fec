// A campaign report as text (people), JSON (tools), JUnit XML (CI: one test
// case per signature) and HTML (a page with links to the example traces).

import { join } from "node:path";
import type { CampaignReport } from "./report.js";
import { atomicWrite } from "./store.js";

export const CAMPAIGN_REPORT_FILES = ["summary.txt", "report.json", "junit.xml", "report.html"] as const;

export function renderCampaignText(r: CampaignReport): string {
  const j = r.jobs;
  const lines = [
    `campaign "${r.name}" (${r.status}): ${j.finished}/${j.total} jobs finished · ${j.clean} clean · ${j.violations} with violations · ${j.failed} failed · ${onWorkersText(r)}${j.notRun} not run · ${r.cycles} cycles`,
    `guests: ${r.guests.join(", ")} · workers: ${Object.entries(r.workers).sort().map(([w, n]) => `${w} (${n} job${n === 1 ? "" : "s"})`).join(", ") || "none"}`,
    `${r.findings.length} signature${r.findings.length === 1 ? "" : "s"}${r.findings.length ? ":" : ""}`,
  ];
  for (const f of r.findings) {
    lines.push("");
    lines.push(`[${f.signature.id}] ${f.signature.title}`);
    lines.push(`  ${f.count} verdict${f.count === 1 ? "" : "s"} in ${f.jobs} job${f.jobs === 1 ? "" : "s"} · guests: ${f.guests.join(", ")} · storms: ${f.storms.join(", ")}`);
    lines.push(`  first seen ${f.firstSeen.at} (${f.firstSeen.jobId}) · last seen ${f.lastSeen.at} (${f.lastSeen.jobId})`);
    for (const e of f.examples) lines.push(`  example ${e.jobId}: ${e.message}\n    trace ${e.trace}`);
    if (f.shrunk) lines.push(`  minimal storm: ${f.shrunk}`);
    for (const c of f.consequences) lines.push(`  consequence: ${c.signature.title} (${c.count} in ${c.jobs} job${c.jobs === 1 ? "" : "s"})`);
  }
  if (r.failedJobs.length) {
    lines.push("", `failed jobs (no verdict after every attempt):`);
    for (const f of r.failedJobs) lines.push(`  ${f.jobId} after ${f.attempts} attempt${f.attempts === 1 ? "" : "s"}: ${f.error}`);
  }
  return lines.join("\n") + "\n";
}

/** "4 running on workers (--resume collects them) · ", or nothing: only a queued campaign interrupted leaves any. */
function onWorkersText(r: CampaignReport, sep = " · "): string {
  return r.jobs.onWorkers > 0 ? `${r.jobs.onWorkers} running on workers (--resume collects them)${sep}` : "";
}

function xml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}

export function renderCampaignJunit(r: CampaignReport): string {
  const cases: string[] = [];
  for (const f of r.findings) {
    const body = [f.signature.title, `guests: ${f.guests.join(", ")}`, ...f.examples.map((e) => `${e.jobId}: ${e.message} (trace ${e.trace})`), ...f.consequences.map((c) => `consequence: ${c.signature.title} x${c.count}`)].join("\n");
    cases.push(`    <testcase classname="${xml(r.name)}.signatures" name="${xml(`${f.signature.id} ${f.signature.title}`)}"><failure message="${xml(`${f.count} verdicts in ${f.jobs} jobs`)}" type="${xml(f.signature.rule)}">${xml(body)}</failure></testcase>`);
  }
  for (const f of r.failedJobs) cases.push(`    <testcase classname="${xml(r.name)}.jobs" name="${xml(f.jobId)}"><error message="${xml(f.error)}" type="job-failed"/></testcase>`);
  const unfinished = r.jobs.notRun + r.jobs.onWorkers > 0;
  cases.push(`    <testcase classname="${xml(r.name)}.jobs" name="all jobs ran">${unfinished ? `<skipped message="${xml(onWorkersText(r, ", "))}${r.jobs.notRun} jobs not run (${r.status})"/>` : ""}</testcase>`);
  const failures = r.findings.length;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${xml(r.name)}" tests="${cases.length}" failures="${failures}" errors="${r.failedJobs.length}">\n  <testsuite name="${xml(r.name)}" tests="${cases.length}" failures="${failures}" errors="${r.failedJobs.length}" skipped="${unfinished ? 1 : 0}">\n${cases.join("\n")}\n  </testsuite>\n</testsuites>\n`;
}

export function renderCampaignHtml(r: CampaignReport): string {
  const h = xml;
  const j = r.jobs;
  const rows = r.findings
    .map(
      (f) => `<tr><td><code>${h(f.signature.id)}</code></td><td>${h(f.signature.title)}${
        f.consequences.length ? `<ul class="cons">${f.consequences.map((c) => `<li>consequence: ${h(c.signature.title)} ×${c.count}</li>`).join("")}</ul>` : ""
      }</td><td>${f.count}</td><td>${f.jobs}</td><td>${h(f.guests.join(", "))}</td><td>${h(f.firstSeen.at)}<br>${h(f.lastSeen.at)}</td><td>${f.examples
        .map((e) => `<a href="${h(e.report)}">${h(e.jobId)}</a> (<a href="${h(e.trace)}">trace</a>)`)
        .join("<br>")}${f.shrunk ? `<br><a href="${h(f.shrunk)}">minimal storm</a>` : ""}</td></tr>`,
    )
    .join("\n");
  const failed = r.failedJobs.map((f) => `<li><code>${h(f.jobId)}</code> after ${f.attempts} attempts: ${h(f.error)}</li>`).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>plugstorm campaign ${h(r.name)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}ul.cons{margin:4px 0;color:#555}</style></head>
<body><h1>Campaign ${h(r.name)}</h1>
<p id="status">${h(r.status)}: ${j.finished}/${j.total} jobs finished, ${j.clean} clean, ${j.violations} with violations, ${j.failed} failed, ${h(onWorkersText(r, ", "))}${j.notRun} not run; ${r.cycles} cycles; guests ${h(r.guests.join(", "))}</p>
<h2>${r.findings.length} signatures</h2>
<table id="signatures"><thead><tr><th>id</th><th>signature</th><th>verdicts</th><th>jobs</th><th>guests</th><th>first / last seen</th><th>examples</th></tr></thead><tbody>
${rows}
</tbody></table>
${failed ? `<h2>Failed jobs</h2><ul>${failed}</ul>` : ""}
</body></html>
`;
}

export async function writeCampaignReports(dir: string, r: CampaignReport): Promise<{ files: string[]; text: string }> {
  const text = renderCampaignText(r);
  const files = [join(dir, "summary.txt"), join(dir, "report.json"), join(dir, "junit.xml"), join(dir, "report.html")];
  await atomicWrite(files[0]!, text);
  await atomicWrite(files[1]!, JSON.stringify(r, null, 2) + "\n");
  await atomicWrite(files[2]!, renderCampaignJunit(r));
  await atomicWrite(files[3]!, renderCampaignHtml(r));
  return { files, text };
}
