// The local worker pool: child processes (child.ts), each running one storm
// (a job, or a shrink's storm runs) at a time, so storms on the sim machine
// use every core and a QEMU storm's VM belongs to a process that stops it
// when asked.

import { fork, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import type { CampaignJob } from "./spec.js";
import { JobInterrupted, JobSetupError, type JobResult } from "./job.js";
import type { ShrinkTask } from "./shrinks.js";

export type ParentMessage = { type: "run"; job: CampaignJob; tracesDir: string } | { type: "shrink"; id: string; task: ShrinkTask } | { type: "stop" };
export type ChildMessage =
  | { type: "ready"; cpuMs: number; mainCpuMs: number | null }
  | { type: "done"; jobId: string; result: JobResult; cpuMs: number; mainCpuMs: number | null }
  | { type: "shrunk"; jobId: string; yaml: string; cpuMs: number; mainCpuMs: number | null }
  | { type: "failed"; jobId: string; error: string; setup: boolean }
  | { type: "interrupted"; jobId: string };

/** The worker process died under a job (crash, OOM, killed): the job may run again. */
export class WorkerDied extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WorkerDied";
  }
}

interface Waiting {
  /** The job's id, or the shrink's: what the child's answer names. */
  id: string;
  message: ParentMessage;
  resolve: (r: JobResult | string) => void;
  reject: (e: Error) => void;
}

interface Slot {
  child: ChildProcess;
  busy: Waiting | null;
  exited: Promise<void>;
  stats: WorkerStats;
  /** When the running job was sent (performance.now()). */
  sentAt: number;
}

/**
 * What one worker process did, for judging parallel speed on a shared host:
 * CPU time does not depend on how busy the other users keep the cores.
 */
export interface WorkerStats {
  pid: number;
  jobs: number;
  /** Shrinks it ran (each many storm runs). */
  shrinks: number;
  /** CPU time of the process when it was ready for its first job (Node start-up and loading the code), ms. */
  startCpuMs: number;
  /** CPU time of the process (start-up included) when it last finished a job, ms. */
  cpuMs: number;
  /**
   * Of cpuMs, the main (JavaScript) thread's, ms; null where the system does
   * not say. The rest ran on V8's helper threads (optimising compiler, GC)
   * and libuv's pool, which take a share of another core.
   */
  mainCpuMs: number | null;
  /** Wall time from handing it a job to its result, summed, ms. */
  busyMs: number;
  /** When it was spawned and when it last gave a result (performance.now()), ms. */
  spawnedAt: number;
  lastDoneAt: number;
}

const CHILD = fileURLToPath(new URL("./child.js", import.meta.url));

/**
 * V8 flags for every worker process, after Node's own (the parent's
 * execArgv): none. A sim job allocates ~63 MB (the sim's frames, the
 * telemetry codecs, the checker, the report's timeline and HTML) and takes
 * 4-5 scavenges with V8's default young generation. 32 MB semi-spaces cut
 * those by 40% but did not make a lone worker faster on the quiet host
 * (alternating warm pools, 24-job campaigns, medians of 4: 7.03 vs 7.60 and
 * 6.12 vs 7.05 jobs/s, with the flag slower both times), so it is not a
 * default; the loaded host had shown the opposite within its noise.
 * A fresh worker's warm-up is V8 optimising the storm's ~360 hot functions
 * (about 450 TurboFan compiles over its first ~20 jobs, few of them
 * repeats), which flags did not cut (`npm run bench -- warmup`): no TurboFan
 * inlining saved ~8% of a fresh worker's CPU but cost its JavaScript thread
 * 8-20%; Sparkplug for every function changed less than the noise.
 */
export const WORKER_V8_FLAGS: readonly string[] = [];

/**
 * Flags added, after WORKER_V8_FLAGS, when the pool's workers take every
 * core (size >= the host's cores). V8's GC then runs on the JavaScript
 * thread alone: a lone worker's parallel scavenges and concurrent marking
 * run free on an idle core, but when every core runs a worker they take
 * the CPU of another worker, and split over threads they cost more in all
 * (tasks, barriers, marking while the program changes what it marks): it
 * adds ~5 ms a job of GC pauses to the JavaScript thread and takes ~20 ms a
 * job off the helpers (their CPU 0.15 -> 0.05 of the JavaScript thread's).
 * Warm 2-worker pools on the quiet 2-core host, alternating 24-job
 * campaigns, medians of 4 runs: 12.01 -> 12.79 and 12.65 -> 13.08 jobs/s
 * (3-6%). Peak RSS grows (~165 -> ~215 MB over 24 jobs: the heap grows
 * further between main-thread markings). Capping V8's helper threads
 * instead (--v8-pool-size=1) gained less.
 * With the GC on the JavaScript thread, 32 MB semi-spaces (V8's default
 * grows them to 16 MB): a 400-cycle sim job then takes 2 scavenges instead
 * of 4, each a pass over a young generation that two workers' caches share.
 * On the loaded 2-core host (load average 3-7), 2-worker pools alternating
 * with and without it, CPU per job, medians: warm pools 24-job campaigns
 * 205 -> 196, 219 -> 198, 233 -> 209 ms (6, 10 and 12 rounds; lower in 8 of
 * 12 paired rounds, equal in 3); fresh pools, 120-job campaigns, 4 rounds:
 * 286 -> 277 ms (lower in 3 of 4); `npm run bench -- campaign` could not
 * tell it from that host's noise. 64 MB gained no more than 32. The lone
 * worker on a 2-core host keeps V8's defaults: its scavenges run in
 * parallel on the idle core, and 32 MB semi-spaces made it slower on the
 * quiet host (see WORKER_V8_FLAGS). Smaller semi-spaces (2-8 MB, to stay in
 * the caches) cost two workers more CPU per job (more scavenges, more promoted).
 * A scavenge forced between jobs (--expose-gc, gc({ type: "minor" }) after
 * each), when a job's objects are all garbage, did not pay either: it still
 * copied ~1.5 MB a job (what earlier scavenges promoted, garbage in the old
 * generation, keeps the young objects it points to alive until a full GC),
 * and GC time per job went from 17.9 ms to 21.4 ms with 32 MB semi-spaces and
 * to 27.3 ms with 64 MB (one scavenge a job, at its end; in one process with
 * these flags, 30 jobs after 20, the loaded host).
 */
export const ALL_CORES_V8_FLAGS: readonly string[] = ["--single-threaded-gc", "--max-semi-space-size=32"];

export interface WorkerPoolOptions {
  /** V8/Node flags for the workers, after the parent's own; default WORKER_V8_FLAGS. */
  v8Flags?: readonly string[];
  /** Flags added after v8Flags when the pool's workers take every core; default ALL_CORES_V8_FLAGS. */
  allCoresV8Flags?: readonly string[];
  /** The host's cores, against which the pool's size is judged; default availableParallelism(). */
  cores?: number;
}

/** The workers' execArgv: the parent's own flags, then the pool's, then those for a pool that takes every core. */
export function workerExecArgv(size: number, opts: WorkerPoolOptions = {}, parent: readonly string[] = process.execArgv): string[] {
  const allCores = size >= (opts.cores ?? availableParallelism());
  return [...parent, ...(opts.v8Flags ?? WORKER_V8_FLAGS), ...(allCores ? (opts.allCoresV8Flags ?? ALL_CORES_V8_FLAGS) : [])];
}

export class WorkerPool {
  private readonly slots = new Set<Slot>();
  private readonly queue: Waiting[] = [];
  private readonly all: WorkerStats[] = [];
  private stopped = false;

  private readonly execArgv: string[];

  constructor(
    readonly size: number,
    opts: WorkerPoolOptions = {},
  ) {
    if (!(size >= 1)) throw new RangeError(`pool size must be at least 1, got ${size}`);
    this.execArgv = workerExecArgv(size, opts);
  }

  /** Jobs running now. */
  get running(): number {
    let n = 0;
    for (const s of this.slots) if (s.busy) n++;
    return n;
  }

  /** Runs a job on a free worker (waits for one); rejects with JobSetupError, WorkerDied or JobInterrupted. */
  run(job: CampaignJob, tracesDir: string): Promise<JobResult> {
    return this.submit(job.id, { type: "run", job, tracesDir }) as Promise<JobResult>;
  }

  /** Shrinks a sim storm on a free worker; resolves with the minimal storm's YAML. */
  shrink(task: ShrinkTask): Promise<string> {
    const id = `shrink ${task.signature.id} ${task.jobId}`;
    return this.submit(id, { type: "shrink", id, task }) as Promise<string>;
  }

  private submit(id: string, message: ParentMessage): Promise<JobResult | string> {
    if (this.stopped) return Promise.reject(new JobInterrupted());
    return new Promise((resolve, reject) => {
      this.queue.push({ id, message, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.stopped) {
      let slot = [...this.slots].find((s) => !s.busy);
      if (!slot) {
        if (this.slots.size >= this.size) return;
        slot = this.spawn();
      }
      const w = this.queue.shift()!;
      slot.busy = w;
      slot.sentAt = performance.now();
      this.post(slot, w.message);
    }
  }

  private spawn(): Slot {
    // Output of storms in children is not wanted; errors come back as messages.
    const child = fork(CHILD, [], { execArgv: this.execArgv, stdio: ["ignore", "ignore", "inherit", "ipc"], serialization: "advanced" });
    let exitedResolve!: () => void;
    const now = performance.now();
    const stats: WorkerStats = { pid: child.pid ?? -1, jobs: 0, shrinks: 0, startCpuMs: 0, cpuMs: 0, mainCpuMs: null, busyMs: 0, spawnedAt: now, lastDoneAt: now };
    this.all.push(stats);
    const slot: Slot = { child, busy: null, exited: new Promise((r) => (exitedResolve = r)), stats, sentAt: now };
    this.slots.add(slot);
    // A kill of a process already gone, or a send after the channel closed: the exit handler says what happened to its job.
    child.on("error", () => {});
    child.on("message", (m: ChildMessage) => {
      if (m.type === "ready") {
        stats.startCpuMs = m.cpuMs;
        return;
      }
      const w = slot.busy;
      if (!w || m.jobId !== w.id) return;
      slot.busy = null;
      const t = performance.now();
      stats.busyMs += t - slot.sentAt;
      stats.lastDoneAt = t;
      if (m.type === "done") {
        stats.jobs++;
        stats.cpuMs = m.cpuMs;
        stats.mainCpuMs = m.mainCpuMs;
        w.resolve(m.result);
      } else if (m.type === "shrunk") {
        stats.shrinks++;
        stats.cpuMs = m.cpuMs;
        stats.mainCpuMs = m.mainCpuMs;
        w.resolve(m.yaml);
      }
      else if (m.type === "interrupted") w.reject(new JobInterrupted());
      else w.reject(m.setup ? new JobSetupError(m.error) : new Error(m.error));
      this.pump();
    });
    child.on("exit", (code, signal) => {
      this.slots.delete(slot);
      exitedResolve();
      const w = slot.busy;
      slot.busy = null;
      if (w) w.reject(this.stopped ? new JobInterrupted() : new WorkerDied(`worker process ${child.pid} ${signal ? `killed by ${signal}` : `exited with ${code}`} during ${w.message.type === "shrink" ? "" : "job "}${w.id}`));
      this.pump();
    });
    return slot;
  }

  /** Stops every running job (their storms stop their VMs), waits for the workers to exit; queued jobs are rejected as interrupted. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.queue.splice(0)) w.reject(new JobInterrupted());
    const exits = [...this.slots].map((s) => {
      if (s.child.connected) this.post(s, { type: "stop" } satisfies ParentMessage);
      else s.child.kill("SIGTERM");
      return s.exited;
    });
    await Promise.all(exits);
  }

  /**
   * Sends to a worker that may have died a moment ago: Ctrl-C reaches the
   * workers (one process group) as it reaches us, and `connected` stays true
   * until the channel's close is read. The send then fails with EPIPE, which
   * without a callback is an 'error' event that kills the campaign before it
   * saves what finished. Killing the worker lets its exit handler settle its job.
   */
  private post(slot: Slot, message: unknown): void {
    slot.child.send(message as Parameters<ChildProcess["send"]>[0], (err) => {
      if (err) slot.child.kill("SIGKILL");
    });
  }

  /** Every worker process this pool started (alive or not), in spawn order: a pool that respawns shows more than its size. */
  stats(): WorkerStats[] {
    return this.all.map((s) => ({ ...s }));
  }

  /** PIDs of the worker processes (tests check they are gone). */
  pids(): number[] {
    return [...this.slots].map((s) => s.child.pid!).filter((p) => p !== undefined);
  }
}
