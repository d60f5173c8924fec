// Minimal storms for a campaign's sim signatures, made while the campaign
// runs: a signature's shrink becomes ready as soon as its example is known
// for good, and whoever has a free worker takes it (the local pool's workers,
// or the campaign process itself after a queued campaign's jobs).
//
// The example shrunk is the signature's first in the campaign's job order,
// not in the order results arrive, so a campaign shrinks the same storms
// whatever its parallelism: a signature waits until every job before its
// example has finished. A shrink that fails moves on to the next example.

import { setMaxListeners } from "node:events";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { shrinkStorm, validateStorm } from "../storm/index.js";
import { makeDirs } from "../trace/index.js";
import type { JobResult } from "./job.js";
import type { Signature } from "./signature.js";
import type { CampaignJob, CampaignSpec } from "./spec.js";

/** One shrink to run: what the shrinker needs, and where its storm goes. */
export interface ShrinkTask {
  signature: Signature;
  jobId: string;
  input: CampaignJob["input"];
  seed: number;
  rule: string;
  maxRuns: number;
  file: string;
}

interface Example {
  index: number;
  jobId: string;
  seed: number;
}

interface Pending {
  signature: Signature;
  /** Sim jobs with this signature as a first cause, in job order. */
  examples: Example[];
  /** How many of them were tried. */
  tried: number;
  state: "waiting" | "ready" | "running" | "done";
}

export class ShrinkPlan {
  private readonly order = new Map<string, number>();
  private readonly jobs: CampaignJob[];
  private readonly ended: boolean[];
  /** Jobs 0..prefix-1 have all ended. */
  private prefix = 0;
  private allEnded = false;
  private closed = false;
  private readonly pending = new Map<string, Pending>();
  private readonly ready: ShrinkTask[] = [];
  private running = 0;
  private readonly out = new Map<string, string>();
  private waiters: Array<() => void> = [];
  private readonly dir: string;

  constructor(
    private readonly spec: CampaignSpec,
    outDir: string,
    private readonly note?: (text: string) => void,
  ) {
    this.jobs = spec.jobs;
    spec.jobs.forEach((j, i) => this.order.set(j.id, i));
    this.ended = spec.jobs.map(() => false);
    this.dir = join(outDir, "shrunk");
  }

  /** Whether this campaign makes minimal storms at all. */
  get enabled(): boolean {
    return this.spec.shrinkRuns > 0;
  }

  /** A job's result (in any order; a job already seen is ignored). */
  result(r: JobResult): void {
    const i = this.order.get(r.jobId);
    if (i === undefined || this.ended[i]) return;
    if (this.enabled && r.machineType === "sim") {
      for (const f of r.findings) {
        if (f.causeId !== null) continue;
        let p = this.pending.get(f.signature.id);
        if (!p) {
          const file = join(this.dir, `${f.signature.id}.yaml`);
          // Kept across resumes.
          p = { signature: f.signature, examples: [], tried: 0, state: existsSync(file) ? "done" : "waiting" };
          if (p.state === "done") this.out.set(f.signature.id, file);
          this.pending.set(f.signature.id, p);
        }
        if (p.examples.some((e) => e.jobId === r.jobId)) continue;
        p.examples.push({ index: i, jobId: r.jobId, seed: r.seed });
        p.examples.sort((a, b) => a.index - b.index);
      }
    }
    this.end(i);
  }

  /** A job that ended without a result (failed). */
  failed(jobId: string): void {
    const i = this.order.get(jobId);
    if (i !== undefined && !this.ended[i]) this.end(i);
  }

  /** No more results will come (the jobs are done, or no more will start). */
  allIn(): void {
    this.allEnded = true;
    this.pump();
  }

  /** Stops handing out shrinks (the campaign was interrupted): every take() gives null. */
  close(): void {
    this.closed = true;
    this.pump();
  }

  /** The next shrink to run, waiting for one; null when none will come. */
  async take(): Promise<ShrinkTask | null> {
    for (;;) {
      if (this.closed) return null;
      const t = this.ready.shift();
      if (t) {
        this.running++;
        this.pending.get(t.signature.id)!.state = "running";
        this.note?.(`shrinking ${t.signature.id} (${t.rule}) from ${t.jobId}`);
        return t;
      }
      if (this.allEnded && this.running === 0) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** What became of a task: its storm is saved, or the next example is tried. */
  async complete(t: ShrinkTask, outcome: { yaml: string } | { error: string }): Promise<void> {
    const p = this.pending.get(t.signature.id)!;
    try {
      if ("yaml" in outcome) {
        makeDirs(this.dir);
        await writeFile(t.file, `# minimal storm for signature ${t.signature.id}: ${t.signature.title}\n# shrunk from job ${t.jobId}; run it: plugstorm storm ${t.file}\n${outcome.yaml}`);
        this.out.set(t.signature.id, t.file);
        p.state = "done";
      } else {
        this.note?.(`could not shrink ${t.signature.id}: ${outcome.error}`);
        p.state = "waiting";
      }
    } finally {
      this.running--;
      this.pump();
    }
  }

  /** Signature id → its minimal storm file, for those shrunk (now or in an earlier run). */
  shrunk(): Map<string, string> {
    return new Map(this.out);
  }

  private end(i: number): void {
    this.ended[i] = true;
    while (this.prefix < this.ended.length && this.ended[this.prefix]) this.prefix++;
    this.pump();
  }

  /** Makes ready every signature whose next example can no longer be preceded by another. */
  private pump(): void {
    for (const p of this.pending.values()) {
      if (p.state !== "waiting") continue;
      const e = p.examples[p.tried];
      if (!e || !(this.allEnded || e.index < this.prefix)) continue;
      p.tried++;
      p.state = "ready";
      const job = this.jobs[e.index]!;
      this.ready.push({ signature: p.signature, jobId: e.jobId, input: job.input, seed: e.seed, rule: p.signature.rule, maxRuns: this.spec.shrinkRuns, file: join(this.dir, `${p.signature.id}.yaml`) });
    }
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}

/** Runs one shrink in this process; resolves with the minimal storm's YAML. */
export async function runShrink(t: ShrinkTask, signal: AbortSignal): Promise<string> {
  // Each storm run adds a listener to the signal it is given and keeps it
  // (src/storm/runner.ts): give the shrinker a signal of its own that is
  // dropped afterwards, so the caller's signal does not collect them.
  const own = new AbortController();
  setMaxListeners(t.maxRuns + 10, own.signal);
  const forward = (): void => own.abort(signal.reason);
  signal.addEventListener("abort", forward, { once: true });
  try {
    const s = await shrinkStorm(validateStorm(t.input), { seed: t.seed, rule: t.rule, maxRuns: t.maxRuns, signal: own.signal });
    return s.yaml;
  } finally {
    signal.removeEventListener("abort", forward);
  }
}
