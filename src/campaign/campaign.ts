// Running a campaign: the jobs not finished yet go to a driver (the local
// worker pool, or a BullMQ queue that workers on other hosts pull from);
// every result is saved as it arrives, counted once; at the end the sim
// signatures get their minimal storms and the reports are written.

import { setMaxListeners } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { shrinkStorm, validateStorm } from "../storm/index.js";
import { JobInterrupted, JobSetupError, type JobResult } from "./job.js";
import { WorkerPool, WorkerDied, type WorkerStats } from "./pool.js";
import { buildCampaignReport, type CampaignReport } from "./report.js";
import { writeCampaignReports } from "./render.js";
import { CampaignStore, type FailedJob } from "./store.js";
import type { CampaignJob, CampaignSpec } from "./spec.js";
import type { Signature } from "./signature.js";

export type DriverEnd = "complete" | "interrupted" | "budget";

export interface DriverSink {
  /** A finished job; returns false when it was counted already. */
  result(r: JobResult): Promise<boolean>;
  failed(f: FailedJob): Promise<void>;
  running(n: number): void;
  /** A job went to a worker (the local pool knows; a queue's workers say so in their own logs). */
  started?(job: CampaignJob): void;
}

export interface CampaignDriver {
  /** Runs the jobs until all are finished or failed, the signal stops it, or the budget is spent (no new jobs start). */
  run(jobs: CampaignJob[], spec: CampaignSpec, tracesDir: string, sink: DriverSink, stop: { signal: AbortSignal; budget: AbortSignal }): Promise<DriverEnd>;
}

export interface CampaignProgress {
  total: number;
  /** Finished before this run (resume). */
  skipped: number;
  done: number;
  running: number;
  failed: number;
  signatures: number;
  elapsedMs: number;
  /** Estimated time to the last job, ms; NaN before the first result. */
  etaMs: number;
}

export interface CampaignOptions {
  out: string;
  resume?: boolean;
  driver: CampaignDriver;
  signal?: AbortSignal;
  onProgress?: (p: CampaignProgress) => void;
  /** A signature (first cause) seen for the first time in this campaign. */
  onSignature?: (s: Signature, r: JobResult) => void;
  onFailed?: (f: FailedJob) => void;
  onJobStarted?: (job: CampaignJob) => void;
  /** Every finished job (a signature count of 0: clean). */
  onJobDone?: (r: JobResult) => void;
  /** Say what happens (shrinking ...). */
  onNote?: (text: string) => void;
}

export interface CampaignResult {
  report: CampaignReport;
  files: string[];
  text: string;
  outDir: string;
  end: DriverEnd;
  /** 0 no signature, 1 signatures found, 2 jobs failed and nothing found. */
  exitCode: 0 | 1 | 2;
}

export async function runCampaign(spec: CampaignSpec, opts: CampaignOptions): Promise<CampaignResult> {
  const outDir = resolve(opts.out);
  const store = new CampaignStore(outDir, spec.traces);
  await store.init(spec, opts.resume === true);
  const finished = await store.finished(spec);
  const results = new Map(finished);
  const pending = spec.jobs.filter((j) => !finished.has(j.id));
  const seen = new Set<string>();
  for (const r of finished.values()) for (const f of r.findings) if (f.causeId === null) seen.add(f.signature.id);
  const failed = new Map<string, FailedJob>();
  const t0 = Date.now();
  let done = 0;
  let running = 0;
  const progress = (): void => {
    const elapsedMs = Date.now() - t0;
    const left = pending.length - done - failed.size;
    opts.onProgress?.({ total: spec.jobs.length, skipped: finished.size, done, running, failed: failed.size, signatures: seen.size, elapsedMs, etaMs: done > 0 ? (elapsedMs / done) * left : NaN });
  };
  const sink: DriverSink = {
    async result(r) {
      if (results.has(r.jobId)) return false;
      const fresh = await store.saveResult(r);
      results.set(r.jobId, r);
      if (!fresh) return false;
      failed.delete(r.jobId);
      done++;
      opts.onJobDone?.(r);
      for (const f of r.findings) {
        if (f.causeId !== null || seen.has(f.signature.id)) continue;
        seen.add(f.signature.id);
        opts.onSignature?.(f.signature, r);
      }
      progress();
      return true;
    },
    async failed(f) {
      if (results.has(f.jobId)) return;
      failed.set(f.jobId, f);
      await store.saveFailed(f);
      opts.onFailed?.(f);
      progress();
    },
    running(n) {
      running = n;
      progress();
    },
    started(job) {
      opts.onJobStarted?.(job);
    },
  };
  const budget = new AbortController();
  const timer = spec.budgetMs > 0 ? setTimeout(() => budget.abort("budget"), spec.budgetMs) : undefined;
  const signal = opts.signal ?? new AbortController().signal;
  progress();
  let end: DriverEnd;
  try {
    end = pending.length === 0 ? "complete" : await opts.driver.run(pending, spec, store.traces, sink, { signal, budget: budget.signal });
  } finally {
    if (timer) clearTimeout(timer);
  }

  const failedAll = await store.failedJobs(spec);
  const shrunk = end === "interrupted" || signal.aborted ? new Map<string, string>() : await shrinkSignatures(spec, results.values(), outDir, opts.onNote, signal);
  const report = buildCampaignReport({
    name: spec.name,
    file: spec.file,
    status: signal.aborted ? "interrupted" : end,
    totalJobs: spec.jobs.length,
    guests: spec.machines,
    results: results.values(),
    failed: failedAll,
    outDir,
    tracesDir: store.traces,
    shrunk,
  });
  const { files, text } = await writeCampaignReports(outDir, report);
  const exitCode = report.findings.length > 0 ? 1 : failedAll.length > 0 ? 2 : 0;
  return { report, files, text, outDir, end: signal.aborted ? "interrupted" : end, exitCode };
}

/** For each first-cause signature seen on the sim machine, the shrunk storm of its first example (kept across resumes). */
async function shrinkSignatures(spec: CampaignSpec, results: Iterable<JobResult>, outDir: string, note: ((t: string) => void) | undefined, signal: AbortSignal): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (spec.shrinkRuns === 0) return out;
  const jobs = new Map(spec.jobs.map((j) => [j.id, j]));
  const dir = join(outDir, "shrunk");
  const sorted = [...results].sort((a, b) => a.finishedAt.localeCompare(b.finishedAt) || a.jobId.localeCompare(b.jobId));
  for (const r of sorted) {
    if (r.machineType !== "sim") continue;
    for (const f of r.findings) {
      if (f.causeId !== null || out.has(f.signature.id)) continue;
      const file = join(dir, `${f.signature.id}.yaml`);
      out.set(f.signature.id, file);
      if (existsSync(file)) continue;
      const job = jobs.get(r.jobId);
      if (!job || signal.aborted) continue;
      note?.(`shrinking ${f.signature.id} (${f.signature.rule}) from ${r.jobId}`);
      // Each storm run adds a listener to the signal it is given and keeps it
      // (src/storm/runner.ts): give the shrinker a signal of its own that is
      // dropped afterwards, so the campaign's signal does not collect them.
      const own = new AbortController();
      setMaxListeners(spec.shrinkRuns + 10, own.signal);
      const forward = (): void => own.abort(signal.reason);
      signal.addEventListener("abort", forward, { once: true });
      try {
        const s = await shrinkStorm(validateStorm(job.input), { seed: r.seed, rule: f.signature.rule, maxRuns: spec.shrinkRuns, signal: own.signal });
        await mkdir(dir, { recursive: true });
        await writeFile(file, `# minimal storm for signature ${f.signature.id}: ${f.signature.title}\n# shrunk from job ${r.jobId}; run it: plugstorm storm ${file}\n${s.yaml}`);
      } catch (e) {
        out.delete(f.signature.id);
        note?.(`could not shrink ${f.signature.id}: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        signal.removeEventListener("abort", forward);
      }
    }
  }
  return out;
}

/** Runs jobs on a pool of local child processes; a job is retried on a set-up error or a dead worker, then marked failed. */
export class LocalDriver implements CampaignDriver {
  /** The worker processes of the last run (benchmarks judge parallel speed by their CPU time). */
  workers: WorkerStats[] = [];

  constructor(readonly parallelism: number) {}

  async run(jobs: CampaignJob[], spec: CampaignSpec, tracesDir: string, sink: DriverSink, stop: { signal: AbortSignal; budget: AbortSignal }): Promise<DriverEnd> {
    const pool = new WorkerPool(this.parallelism);
    const queue = [...jobs];
    const saving: Promise<unknown>[] = [];
    let running = 0;
    const onAbort = (): void => void pool.stop();
    stop.signal.addEventListener("abort", onAbort, { once: true });
    const lane = async (): Promise<void> => {
      while (queue.length > 0 && !stop.signal.aborted && !stop.budget.aborted) {
        const job = queue.shift()!;
        running++;
        sink.running(running);
        sink.started?.(job);
        try {
          for (let attempt = 1; ; attempt++) {
            try {
              // Saving the result is the parent's work: the lane takes its next job meanwhile, so the worker does not wait on the disk.
              const saved = sink.result(await pool.run(job, tracesDir));
              // Handled here so a failed save is not an unhandled rejection before the end, where it is thrown.
              saved.catch(() => undefined);
              saving.push(saved);
              break;
            } catch (e) {
              if (e instanceof JobInterrupted || stop.signal.aborted) return;
              const retry = e instanceof JobSetupError || e instanceof WorkerDied;
              if (!retry || attempt >= spec.attempts) {
                await sink.failed({ jobId: job.id, storm: job.storm, machine: job.machine, seed: job.seed, attempts: attempt, error: (e as Error).message, at: new Date().toISOString() });
                break;
              }
            }
          }
        } finally {
          running--;
          sink.running(running);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.parallelism, jobs.length) }, lane));
      await Promise.all(saving);
    } finally {
      stop.signal.removeEventListener("abort", onAbort);
      this.workers = pool.stats();
      await pool.stop();
    }
    return stop.signal.aborted ? "interrupted" : queue.length > 0 && stop.budget.aborted ? "budget" : "complete";
  }
}
