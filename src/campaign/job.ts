// One job: one storm on one machine with one seed, run where a worker is
// (a local child process or a BullMQ worker host). Its trace and reports go
// into the job's folder under the campaign's traces folder; what comes back
// is small: status, counts and the job's findings by signature.

import { stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { runStorm, stormToYaml, validateStorm, withYamlHeader, type StormSpec, type StormVerdict } from "../storm/index.js";
import { makeDirs } from "../trace/index.js";
import { TraceContext, signatureOf, type Signature } from "./signature.js";
import type { CampaignJob } from "./spec.js";

export interface JobFinding {
  signature: Signature;
  /** Signature id of the first cause this is a consequence of; null: a first cause. */
  causeId: string | null;
  /** Verdicts with this signature in the job. */
  count: number;
  /** The first of them. */
  example: { device: string; nicId: string; message: string; tNs: number; recordIndex: number };
}

export interface JobResult {
  jobId: string;
  storm: string;
  machine: string;
  seed: number;
  repetition: number;
  hash: string;
  machineType: "sim" | "qemu";
  status: "clean" | "violations";
  exitCode: 0 | 1;
  abortReason: string | null;
  cycles: number;
  records: number;
  traceBytes: number;
  durationMs: number;
  finishedAt: string;
  /** hostname:pid of the worker that ran it. */
  worker: string;
  /** The job's folder, relative to the traces folder. */
  dir: string;
  findings: JobFinding[];
}

/** A run that could not give a verdict (no QEMU, no image, a machine that died): retried, then marked failed. */
export class JobSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JobSetupError";
  }
}

/** The run was stopped from outside (Ctrl-C, a worker shutting down): not a result. */
export class JobInterrupted extends Error {
  constructor() {
    super("interrupted");
    this.name = "JobInterrupted";
  }
}

/** The job's folder name under the traces folder. */
export function jobDir(job: Pick<CampaignJob, "id">): string {
  return job.id;
}

/** What a worker makes of a storm once, for every job of it: the validated spec and the YAML body. */
interface PreparedStorm {
  spec: StormSpec;
  body: string;
}

/**
 * A campaign's jobs are a few storms run with many seeds: a worker validates
 * each storm and writes it out as YAML once, not once a job (the YAML
 * writer's document model was ~1.3 ms of a 400-cycle sim job). Keyed by
 * the input itself, so a job whose storm differs never gets another's;
 * bounded, since a worker may serve campaign after campaign. A spec is never
 * changed once validated, so runs can share it.
 */
const prepared = new Map<string, PreparedStorm>();
const PREPARED_MAX = 64;

function prepare(job: CampaignJob): PreparedStorm {
  const key = JSON.stringify(job.input);
  let p = prepared.get(key);
  if (!p) {
    p = { spec: validateStorm(job.input, `job ${job.id}`), body: stormToYaml(job.input) };
    if (prepared.size >= PREPARED_MAX) prepared.clear();
    prepared.set(key, p);
  }
  return p;
}

/** The job's storm.yaml: stormToYaml(job.input, header) with the job's header, from the body made once. */
export function jobStormYaml(job: CampaignJob, body: string): string {
  return withYamlHeader(`campaign job ${job.id} (seed ${job.seed})`, body);
}

export async function runJob(job: CampaignJob, tracesDir: string, signal?: AbortSignal): Promise<JobResult> {
  const { spec, body } = prepare(job);
  const out = join(tracesDir, jobDir(job));
  makeDirs(out);
  const stormFile = join(out, "storm.yaml");
  const yaml = jobStormYaml(job, body);
  await writeFile(stormFile, yaml);
  const t0 = Date.now();
  const r = await runStorm(spec, {
    out,
    seed: job.seed,
    scenarioText: yaml,
    reproduce: `plugstorm storm ${stormFile} --seed ${job.seed}`,
    ...(signal ? { signal } : {}),
  });
  if (signal?.aborted) throw new JobInterrupted();
  // A job's storm has no live view, and a trace at its size bound is not a
  // verdict on the whole storm: both fail the job, as every other early stop.
  if (r.status === "aborted" || r.status === "stopped" || r.status === "trace-limit" || r.exitCode === 2) throw new JobSetupError(r.abortReason ?? "the storm stopped before it could give a verdict");
  const findings = r.verdicts.some((v) => v.failing) && r.traceFile ? findingsOf(r.verdicts, spec.model, await TraceContext.fromFile(r.traceFile)) : [];
  const traceBytes = r.traceFile ? (await stat(r.traceFile)).size : 0;
  return {
    jobId: job.id,
    storm: job.storm,
    machine: job.machine,
    seed: job.seed,
    repetition: job.repetition,
    hash: job.hash,
    machineType: spec.machine.type,
    // A time limit comes to a campaign's storms only through its signal (JobInterrupted above); were it to, it found nothing.
    status: r.status === "violations" ? "violations" : "clean",
    exitCode: r.status === "violations" ? 1 : 0,
    abortReason: r.abortReason ?? null,
    cycles: r.cyclesDone,
    records: r.records,
    traceBytes,
    durationMs: Date.now() - t0,
    finishedAt: new Date().toISOString(),
    worker: `${hostname()}:${process.pid}`,
    dir: jobDir(job),
    findings,
  };
}

/**
 * Failing verdicts of one run, by signature, each consequence tied to its
 * first cause. `verdicts` is the run's whole verdict list in order: the
 * model's cascade pass (src/model/cascade.ts) names a consequence's cause by
 * its position in that list, and that is the only grouping rule.
 */
export function findingsOf(verdicts: readonly StormVerdict[], profile: string, ctx: TraceContext): JobFinding[] {
  const sigs = verdicts.map((v) => (v.failing ? signatureOf(v, profile, ctx) : null));
  const byKey = new Map<string, JobFinding>();
  verdicts.forEach((v, i) => {
    const sig = sigs[i];
    if (!sig) return;
    const ordinal = v.report.cause?.ordinal;
    // A cause missing from the list, or not before its consequence, leaves the verdict a first cause: nothing is hidden.
    const cause = ordinal !== undefined && ordinal !== null && ordinal < i ? sigs[ordinal] : null;
    // A signature that is its own cause (the same bug again on the same device) stays a first cause.
    const cid = cause && cause.id !== sig.id ? cause.id : null;
    const key = `${sig.id}<${cid ?? ""}`;
    const f = byKey.get(key);
    if (f) f.count++;
    else byKey.set(key, { signature: sig, causeId: cid, count: 1, example: { device: v.device, nicId: v.nicId, message: v.message, tNs: v.tNs, recordIndex: v.recordIndex } });
  });
  return [...byKey.values()];
}
