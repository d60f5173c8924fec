// Running a campaign: the jobs not finished yet go to a driver (the local
// worker pool, or a BullMQ queue that workers on other hosts pull from);
// every result is saved as it arrives, counted once; the sim signatures get
// their minimal storms (on the pool's workers as they fall idle, or here
// after a queued campaign's jobs), and the reports wait for them.

import { resolve } from "node:path";
import { campaignExitCode } from "./exit-code.js";
import { JobInterrupted, JobSetupError, type JobResult } from "./job.js";
import { WorkerPool, WorkerDied, type WorkerStats } from "./pool.js";
import { buildCampaignReport, type CampaignReport } from "./report.js";
import { writeCampaignReports } from "./render.js";
import { ShrinkPlan, runShrink } from "./shrinks.js";
import { CampaignStore, type FailedJob } from "./store.js";
import type { CampaignJob, CampaignSpec } from "./spec.js";
import type { Signature } from "./signature.js";

export type DriverEnd = "complete" | "interrupted" | "budget";

export interface DriverSink {
  /** A finished job; returns false when it was counted already. */
  result(r: JobResult): Promise<boolean>;
  failed(f: FailedJob): Promise<void>;
  running(n: number): void;
  /** Jobs other hosts' workers had taken when the driver was interrupted (a queue's): they run to their end there, and --resume collects them. */
  runningElsewhere?(n: number): void;
  /** A job went to a worker (the local pool knows; a queue's workers say so in their own logs). */
  started?(job: CampaignJob): void;
  /**
   * Minimal storms to make: a driver with workers of its own takes them
   * (take/complete) when it has no job for a worker; what it leaves is run
   * by the campaign process after the driver returns.
   */
  shrinks?: ShrinkPlan;
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
  /** 0 no signature, 1 signatures found, 2 jobs failed and nothing found (campaignExitCode with no signal). */
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
  const shrinks = new ShrinkPlan(spec, outDir, opts.onNote);
  for (const r of finished.values()) shrinks.result(r);
  const failed = new Map<string, FailedJob>();
  const t0 = Date.now();
  let done = 0;
  let running = 0;
  let elsewhere = 0;
  const progress = (): void => {
    const elapsedMs = Date.now() - t0;
    const left = pending.length - done - failed.size;
    opts.onProgress?.({ total: spec.jobs.length, skipped: finished.size, done, running, failed: failed.size, signatures: seen.size, elapsedMs, etaMs: done > 0 ? (elapsedMs / done) * left : NaN });
  };
  const sink: DriverSink = {
    async result(r) {
      if (results.has(r.jobId)) return false;
      // Told before the save: a driver may ask for shrinks as soon as this returns.
      shrinks.result(r);
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
      shrinks.failed(f.jobId);
      failed.set(f.jobId, f);
      await store.saveFailed(f);
      opts.onFailed?.(f);
      progress();
    },
    running(n) {
      running = n;
      progress();
    },
    runningElsewhere(n) {
      elsewhere = n;
    },
    started(job) {
      opts.onJobStarted?.(job);
    },
    shrinks,
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
  shrinks.allIn();
  if (end !== "interrupted" && !signal.aborted) {
    // What the driver did not take (a queued campaign's shrinks, or all of them when every job was finished before).
    for (let t = await shrinks.take(); t !== null && !signal.aborted; t = await shrinks.take()) {
      try {
        await shrinks.complete(t, { yaml: await runShrink(t, signal) });
      } catch (e) {
        await shrinks.complete(t, { error: e instanceof Error ? e.message : String(e) });
      }
    }
  }
  const shrunk = end === "interrupted" || signal.aborted ? new Map<string, string>() : shrinks.shrunk();
  const report = buildCampaignReport({
    name: spec.name,
    file: spec.file,
    status: signal.aborted ? "interrupted" : end,
    totalJobs: spec.jobs.length,
    guests: spec.machines,
    results: results.values(),
    failed: failedAll,
    onWorkers: elsewhere,
    outDir,
    tracesDir: store.traces,
    shrunk,
  });
  const { files, text } = await writeCampaignReports(outDir, report);
  const exitCode = campaignExitCode({ signatures: report.findings.length, failedJobs: failedAll.length }) as 0 | 1 | 2;
  return { report, files, text, outDir, end: signal.aborted ? "interrupted" : end, exitCode };
}

/** Runs jobs on a pool of local child processes; a job is retried on a set-up error or a dead worker, then marked failed. */
export class LocalDriver implements CampaignDriver {
  /** The worker processes of the last run (benchmarks judge parallel speed by their CPU time); a given pool's are counted since it started. */
  workers: WorkerStats[] = [];

  /**
   * A pool given is used and left running (its workers, started and warmed
   * up once, serve campaign after campaign); by default each run has its own.
   */
  constructor(
    readonly parallelism: number,
    private readonly opts: { pool?: WorkerPool } = {},
  ) {
    if (opts.pool && opts.pool.size !== parallelism) throw new RangeError(`LocalDriver: the pool has ${opts.pool.size} workers, the parallelism is ${parallelism}`);
  }

  async run(jobs: CampaignJob[], spec: CampaignSpec, tracesDir: string, sink: DriverSink, stop: { signal: AbortSignal; budget: AbortSignal }): Promise<DriverEnd> {
    const pool = this.opts.pool ?? new WorkerPool(this.parallelism);
    const queue = [...jobs];
    const saving: Promise<unknown>[] = [];
    let running = 0;
    const shrinks = sink.shrinks?.enabled ? sink.shrinks : undefined;
    const onAbort = (): void => {
      shrinks?.close();
      void pool.stop();
    };
    stop.signal.addEventListener("abort", onAbort, { once: true });
    // Jobs first, then shrinks: a lane with no job left shrinks (on its
    // worker) until none will come; the last lane out of jobs says so.
    const lane = async (): Promise<void> => {
      await jobLane();
      if (running === 0) shrinks?.allIn();
      if (!shrinks) return;
      for (let t = await shrinks.take(); t !== null; t = await shrinks.take()) {
        if (stop.signal.aborted) return;
        try {
          await shrinks.complete(t, { yaml: await pool.shrink(t) });
        } catch (e) {
          if (e instanceof JobInterrupted || stop.signal.aborted) return;
          await shrinks.complete(t, { error: e instanceof Error ? e.message : String(e) });
        }
      }
    };
    const jobLane = async (): Promise<void> => {
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
      await Promise.all(Array.from({ length: shrinks ? this.parallelism : Math.min(this.parallelism, jobs.length) }, lane));
      await Promise.all(saving);
    } finally {
      stop.signal.removeEventListener("abort", onAbort);
      this.workers = pool.stats();
      if (!this.opts.pool || stop.signal.aborted) await pool.stop();
    }
    return stop.signal.aborted ? "interrupted" : queue.length > 0 && stop.budget.aborted ? "budget" : "complete";
  }
}
