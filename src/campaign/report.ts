// The campaign report: every finished job's findings deduplicated by
// signature, with counts, first and last seen, the guests they occur on and
// links to example traces; consequences under their first cause.

import { relative, join } from "node:path";
import type { JobResult } from "./job.js";
import type { Signature } from "./signature.js";
import type { FailedJob } from "./store.js";

export interface Example {
  jobId: string;
  storm: string;
  machine: string;
  seed: number;
  device: string;
  nicId: string;
  message: string;
  /** Paths relative to the report's folder. */
  trace: string;
  report: string;
}

export interface Consequence {
  signature: Signature;
  count: number;
  jobs: number;
}

export interface Finding {
  signature: Signature;
  /** Verdicts with this signature as a first cause. */
  count: number;
  jobs: number;
  firstSeen: { at: string; jobId: string };
  lastSeen: { at: string; jobId: string };
  guests: string[];
  storms: string[];
  examples: Example[];
  consequences: Consequence[];
  /** The minimal storm (sim signatures), relative to the report's folder. */
  shrunk?: string;
  /** Machine type of the examples. */
  machineType: "sim" | "qemu";
}

export interface CampaignReport {
  name: string;
  file: string;
  status: "complete" | "interrupted" | "budget";
  generatedAt: string;
  /**
   * onWorkers: jobs a queue's workers had taken when the campaign was
   * interrupted; they run to their end there, and --resume collects them.
   * notRun: the rest, neither finished nor failed.
   */
  jobs: { total: number; finished: number; clean: number; violations: number; failed: number; onWorkers: number; notRun: number };
  cycles: number;
  guests: string[];
  findings: Finding[];
  failedJobs: FailedJob[];
  /** Workers (host:pid) that ran finished jobs, with their job counts. */
  workers: Record<string, number>;
}

const MAX_EXAMPLES = 3;

export interface ReportInput {
  name: string;
  file: string;
  status: CampaignReport["status"];
  totalJobs: number;
  guests: string[];
  results: Iterable<JobResult>;
  failed: FailedJob[];
  /** Jobs left running on a queue's workers (CampaignReport.jobs.onWorkers). */
  onWorkers?: number;
  /** Report folder and traces folder, for relative links. */
  outDir: string;
  tracesDir: string;
  /** Signature id -> shrunk storm file (absolute). */
  shrunk?: Map<string, string>;
}

export function buildCampaignReport(inp: ReportInput): CampaignReport {
  // Jobs in a stable order (finish time, then id), so the same results give the same report.
  const results = [...inp.results].sort((a, b) => a.finishedAt.localeCompare(b.finishedAt) || a.jobId.localeCompare(b.jobId));
  const findings = new Map<string, Finding & { jobSet: Set<string>; cons: Map<string, Consequence & { jobSet: Set<string> }> }>();
  const workers: Record<string, number> = {};
  let cycles = 0;
  let clean = 0;
  let violations = 0;
  const link = (r: JobResult, f: string): string => relative(inp.outDir, join(inp.tracesDir, r.dir, f));
  for (const r of results) {
    cycles += r.cycles;
    workers[r.worker] = (workers[r.worker] ?? 0) + 1;
    if (r.status === "clean") clean++;
    else violations++;
    for (const f of r.findings) {
      if (f.causeId !== null) continue;
      let e = findings.get(f.signature.id);
      if (!e) {
        e = {
          signature: f.signature,
          count: 0,
          jobs: 0,
          firstSeen: { at: r.finishedAt, jobId: r.jobId },
          lastSeen: { at: r.finishedAt, jobId: r.jobId },
          guests: [],
          storms: [],
          examples: [],
          consequences: [],
          machineType: r.machineType,
          jobSet: new Set(),
          cons: new Map(),
        };
        findings.set(f.signature.id, e);
      }
      e.count += f.count;
      e.jobSet.add(r.jobId);
      e.lastSeen = { at: r.finishedAt, jobId: r.jobId };
      if (!e.guests.includes(r.machine)) e.guests.push(r.machine);
      if (!e.storms.includes(r.storm)) e.storms.push(r.storm);
      if (e.examples.length < MAX_EXAMPLES)
        e.examples.push({ jobId: r.jobId, storm: r.storm, machine: r.machine, seed: r.seed, device: f.example.device, nicId: f.example.nicId, message: f.example.message, trace: link(r, "trace.pstrace"), report: link(r, "report.html") });
    }
    for (const f of r.findings) {
      if (f.causeId === null) continue;
      const e = findings.get(f.causeId);
      if (!e) continue;
      let c = e.cons.get(f.signature.id);
      if (!c) e.cons.set(f.signature.id, (c = { signature: f.signature, count: 0, jobs: 0, jobSet: new Set() }));
      c.count += f.count;
      c.jobSet.add(r.jobId);
    }
  }
  const out: Finding[] = [...findings.values()].map(({ jobSet, cons, ...f }) => {
    const finding: Finding = {
      ...f,
      jobs: jobSet.size,
      guests: f.guests.sort(),
      storms: f.storms.sort(),
      consequences: [...cons.values()].map(({ jobSet: js, ...c }) => ({ ...c, jobs: js.size })).sort((a, b) => b.count - a.count || a.signature.title.localeCompare(b.signature.title)),
    };
    const s = inp.shrunk?.get(f.signature.id);
    if (s) finding.shrunk = relative(inp.outDir, s);
    return finding;
  });
  out.sort((a, b) => b.jobs - a.jobs || b.count - a.count || a.signature.title.localeCompare(b.signature.title));
  const finished = results.length;
  return {
    name: inp.name,
    file: inp.file,
    status: inp.status,
    generatedAt: new Date().toISOString(),
    jobs: { total: inp.totalJobs, finished, clean, violations, failed: inp.failed.length, onWorkers: inp.onWorkers ?? 0, notRun: Math.max(0, inp.totalJobs - finished - inp.failed.length - (inp.onWorkers ?? 0)) },
    cycles,
    guests: inp.guests,
    findings: out,
    failedJobs: inp.failed,
    workers,
  };
}
