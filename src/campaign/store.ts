// A campaign's output folder: the plan, one result file per finished job
// (written whole, then renamed: a result is there or it is not), one file per
// job marked failed, the reports and the shrunk storms. Job traces live under
// the traces folder (by default jobs/ here).

import { existsSync } from "node:fs";
import { readFile, readdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MakeDirError, makeDirs } from "../trace/index.js";
import { someNames } from "../storm/out-dir.js";
import type { JobResult } from "./job.js";
import type { CampaignSpec } from "./spec.js";

export interface FailedJob {
  jobId: string;
  storm: string;
  machine: string;
  seed: number;
  attempts: number;
  error: string;
  at: string;
}

export interface PlanFile {
  name: string;
  file: string;
  traces: string;
  jobs: { id: string; hash: string }[];
  createdAt: string;
}

export class CampaignStore {
  readonly results: string;
  readonly failed: string;
  readonly traces: string;

  constructor(
    readonly dir: string,
    traces: string | null,
  ) {
    this.results = join(dir, "results");
    this.failed = join(dir, "failed");
    this.traces = traces ?? join(dir, "jobs");
  }

  /** Throws StoreError when the folder cannot take this campaign; writes nothing (a caller checks before it says anything). */
  async check(spec: CampaignSpec, resume: boolean): Promise<void> {
    const plan = join(this.dir, "campaign.json");
    if (!existsSync(plan)) {
      if (resume) throw new StoreError(`nothing to resume in ${this.dir}: ${existsSync(this.dir) ? "it holds no campaign (campaign.json)" : "no such folder"}; leave out --resume to start the campaign`);
      // A campaign's summary.txt and report.json would replace another run's (a storm's, say), and mix with what else is there.
      const there = await readdir(this.dir).catch(() => []);
      if (there.length > 0) throw new StoreError(`${this.dir} is not empty (${someNames(there.sort())}) and holds no campaign: give an empty or new --out`);
      return;
    }
    let old: PlanFile;
    try {
      old = JSON.parse(await readFile(plan, "utf8")) as PlanFile;
    } catch (e) {
      throw new StoreError(`${plan} cannot be read (${e instanceof Error ? e.message : String(e)}): give another --out`);
    }
    if (!resume) throw new StoreError(`${this.dir} holds campaign "${old.name}" already: give --resume to go on with it, or another --out`);
    if (old.name !== spec.name) throw new StoreError(`${this.dir} holds campaign "${old.name}", not "${spec.name}": give another --out`);
  }

  async init(spec: CampaignSpec, resume: boolean): Promise<void> {
    await this.check(spec, resume);
    const plan = join(this.dir, "campaign.json");
    for (const d of [this.results, this.failed, this.traces]) {
      try {
        makeDirs(d);
      } catch (e) {
        if (e instanceof MakeDirError) throw new StoreError(e.message);
        throw e;
      }
    }
    const p: PlanFile = { name: spec.name, file: spec.file, traces: this.traces, jobs: spec.jobs.map((j) => ({ id: j.id, hash: j.hash })), createdAt: new Date().toISOString() };
    await atomicWrite(plan, JSON.stringify(p, null, 2) + "\n");
  }

  /** Finished results whose storm is unchanged, by job id. */
  async finished(spec: CampaignSpec): Promise<Map<string, JobResult>> {
    const hashes = new Map(spec.jobs.map((j) => [j.id, j.hash]));
    const out = new Map<string, JobResult>();
    if (!existsSync(this.results)) return out;
    for (const f of await readdir(this.results)) {
      if (!f.endsWith(".json")) continue;
      const r = JSON.parse(await readFile(join(this.results, f), "utf8")) as JobResult;
      if (hashes.get(r.jobId) === r.hash) out.set(r.jobId, r);
    }
    return out;
  }

  /** Saves a result once: false when the job had one already (a job that ran twice is counted once). */
  async saveResult(r: JobResult): Promise<boolean> {
    const f = join(this.results, `${r.jobId}.json`);
    if (existsSync(f)) return false;
    await atomicWrite(f, JSON.stringify(r) + "\n");
    return true;
  }

  async saveFailed(f: FailedJob): Promise<void> {
    await atomicWrite(join(this.failed, `${f.jobId}.json`), JSON.stringify(f) + "\n");
  }

  async failedJobs(spec: CampaignSpec): Promise<FailedJob[]> {
    const ids = new Set(spec.jobs.map((j) => j.id));
    if (!existsSync(this.failed)) return [];
    const out: FailedJob[] = [];
    for (const f of (await readdir(this.failed)).sort()) {
      if (!f.endsWith(".json")) continue;
      const j = JSON.parse(await readFile(join(this.failed, f), "utf8")) as FailedJob;
      if (ids.has(j.jobId) && !existsSync(join(this.results, f))) out.push(j);
    }
    return out;
  }
}

export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}

export async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}
