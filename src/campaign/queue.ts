// Campaigns across hosts on BullMQ and Redis. The campaign process enqueues
// its jobs (job ids derived from the campaign, so enqueueing twice adds
// nothing) and collects the results the workers return; `plugstorm worker`
// processes on any host pull jobs and run each on their own local worker pool.
// A worker that dies mid-job stops renewing the job's lock: BullMQ's stalled
// check puts the job back for another worker. A job that fails `attempts`
// times is marked failed. Results are saved once per job id, so a job that
// ran twice (a worker killed after finishing) is counted once.

import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { Queue, Worker, isNotConnectionError, type Job } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";
import type { CampaignDriver, DriverEnd, DriverSink } from "./campaign.js";
import { JobSetupError, type JobResult } from "./job.js";
import { WorkerPool } from "./pool.js";
import { DEFAULT_DOWN_LIMIT_MS, RedisLiveness, RedisUnreachable, Stopped, waitConnected } from "./redis-link.js";
import type { CampaignJob, CampaignSpec } from "./spec.js";

/** The one queue every campaign and worker on a Redis shares; a job's name is its campaign's key. */
export const QUEUE_NAME = "plugstorm-jobs";
export const PASSWORD_ENV = "PLUGSTORM_REDIS_PASSWORD";

export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
  /** Wait for Redis to come back rather than fail commands (a restart must lose nothing). */
  maxRetriesPerRequest: null;
}

export class QueueUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QueueUsageError";
  }
}

/** redis://[USER@]HOST:PORT[/DB] or rediss:// (TLS); the password only from PLUGSTORM_REDIS_PASSWORD. */
export function parseRedisUrl(url: string, env: NodeJS.ProcessEnv): RedisConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueUsageError(`--queue expects redis://HOST:PORT, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new QueueUsageError(`--queue expects redis://HOST:PORT or rediss://HOST:PORT, got ${JSON.stringify(url)}`);
  if (u.password) throw new QueueUsageError(`--queue: no password in the URL (it would show in ps and shell history); put it in ${PASSWORD_ENV}`);
  if (!u.hostname) throw new QueueUsageError(`--queue: no host in ${JSON.stringify(url)}`);
  const db = u.pathname && u.pathname !== "/" ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new QueueUsageError(`--queue: the database after the / must be a number, got ${JSON.stringify(u.pathname.slice(1))}`);
  const conn: RedisConnection = { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port ? Number(u.port) : 6379, db, maxRetriesPerRequest: null };
  if (u.username) conn.username = decodeURIComponent(u.username);
  const pw = env[PASSWORD_ENV];
  if (pw) conn.password = pw;
  if (u.protocol === "rediss:") conn.tls = {};
  return conn;
}

export interface QueueJobData {
  job: CampaignJob;
  tracesDir: string;
}

/** A campaign's key: its name and a hash of its jobs and output folder (resuming it finds its jobs again). */
export function campaignKey(spec: CampaignSpec, tracesDir: string): string {
  const h = createHash("sha256").update(JSON.stringify([tracesDir, spec.jobs.map((j) => [j.id, j.hash])])).digest("hex").slice(0, 10);
  return `${spec.name}-${h}`;
}

const POLL_MS = 200;
/** Jobs on the queue at a time, per campaign. */
export const DEFAULT_WINDOW = 1000;
const SCAN_MS = 3000;
/** Taking the waiting jobs off the queue after Ctrl-C may take this long; a user who pressed it is waiting. */
const REMOVE_DEADLINE_MS = 3000;

/**
 * A client of our own: BullMQ loads ioredis itself only through require(),
 * which an ES module does not have; and our own client is ours to close,
 * with the copies BullMQ makes of it (a worker's blocking connection).
 */
class Client extends Redis {
  readonly copies: Redis[] = [];

  override duplicate(override?: Partial<RedisOptions>): Redis {
    const copy = new Redis({ ...this.options, ...override });
    this.copies.push(copy);
    return copy;
  }

  /**
   * Closes this connection and its copies, settling their waiting commands.
   * A connection that went away keeps its commands for its return
   * (maxRetriesPerRequest: null), and ioredis's disconnect() while it waits
   * to reconnect neither ends nor rejects them: a worker's blocking read would
   * hold the process until BullMQ's own watchdog, drainDelay + 1 s later.
   */
  drop(): void {
    for (const r of [this, ...this.copies]) {
      r.disconnect();
      // flushQueue is ioredis's own, not public (5.11.1, pinned): without it the close still happens, only later.
      const flush = (r as unknown as { flushQueue?: (e: Error) => void }).flushQueue;
      if (typeof flush === "function") flush.call(r, new Error("Connection is closed."));
    }
  }
}

function client(c: RedisConnection, lazyConnect = false): Client {
  // A closing connection whose peer does not answer (a Redis that hung) is destroyed soon, not after ioredis's 2 s.
  const r = new Client({ ...c, lazyConnect, disconnectTimeout: 200 });
  // Errors while Redis is away are expected; ioredis reconnects and callers see the outcome of their commands.
  r.on("error", () => {});
  return r;
}

/** Connects a lazy client: waitConnected's outcome (the first error, the deadline, or the signal), not ioredis's endless retries. */
async function connectClient(redis: Redis, url: string, opts: { deadlineMs?: number; signal?: AbortSignal }): Promise<void> {
  const connected = waitConnected(redis, url, opts);
  if (redis.status === "wait") redis.connect().catch(() => {});
  await connected;
}

/** Where a collected job's time went (the bench's queue latency), from BullMQ's own stamps. */
export interface QueueJobTimes {
  /** Added -> a worker took it. */
  waitMs: number;
  /** Taken -> finished on the worker. */
  runMs: number;
  /** Finished -> collected here (polling). */
  collectMs: number;
  /** The result as stored in Redis, bytes. */
  resultBytes: number;
}

export interface QueueDriverOptions {
  onNote?: (t: string) => void;
  pollMs?: number;
  window?: number;
  /** The queue's URL as the user gave it, for messages (default redis://HOST:PORT). */
  url?: string;
  /** How long a Redis that went away mid-campaign is waited for before the campaign stops (RedisUnreachable). */
  downLimitMs?: number;
}

export class QueueDriver implements CampaignDriver {
  private readonly queue: Queue<QueueJobData, JobResult>;
  private readonly redis: Redis;
  private readonly url: string;
  private liveness: RedisLiveness | undefined;
  readonly times: QueueJobTimes[] = [];

  constructor(
    readonly connection: RedisConnection,
    private readonly opts: QueueDriverOptions = {},
  ) {
    this.url = opts.url ?? `redis://${connection.host}:${connection.port}`;
    // Connected by connect(): a campaign interrupted before then has opened nothing.
    this.redis = client(connection, true);
    this.queue = new Queue(QUEUE_NAME, { connection: this.redis });
    // Redis going away is reported by RedisLiveness; ioredis reconnects by itself.
    this.queue.on("error", () => {});
  }

  /**
   * Resolves once Redis answers; rejects with RedisUnreachable (the URL and
   * the cause: refused, wrong password, no answer within the deadline) or
   * Stopped (the signal aborted). Called before anything is printed or
   * written, so a campaign that cannot run says why first.
   */
  async connect(opts: { deadlineMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    // Once connected, an absence is RedisLiveness's to wait out: run() connects again after the CLI did, and Redis may have gone in between.
    if (this.liveness) return;
    await connectClient(this.redis, this.url, opts);
    this.liveness = new RedisLiveness(this.redis, this.url, this.opts.downLimitMs ?? DEFAULT_DOWN_LIMIT_MS, this.opts.onNote);
  }

  /**
   * Throws RedisUnreachable when Redis cannot be reached at the start or
   * stays away past the limit mid-campaign: the finished results are saved,
   * and the jobs on the queue stay there for --resume.
   */
  async run(jobs: CampaignJob[], spec: CampaignSpec, tracesDir: string, sink: DriverSink, stop: { signal: AbortSignal; budget: AbortSignal }): Promise<DriverEnd> {
    try {
      await this.connect({ signal: stop.signal });
    } catch (e) {
      if (e instanceof Stopped) return "interrupted";
      throw e;
    }
    const live = this.liveness!;
    const key = campaignKey(spec, tracesDir);
    const qid = (j: CampaignJob): string => `${key}.${j.id}`;
    // Only a window of jobs is on the queue at a time: Redis memory and the
    // lost-job scan stay bounded however large the campaign.
    const pending = [...jobs];
    const outstanding = new Map<string, CampaignJob>();
    const window = this.opts.window ?? DEFAULT_WINDOW;
    const add = async (list: CampaignJob[]): Promise<void> => {
      for (let i = 0; i < list.length; i += 500) {
        await this.queue.addBulk(
          list.slice(i, i + 500).map((j) => ({
            name: key,
            data: { job: j, tracesDir },
            opts: { jobId: qid(j), attempts: spec.attempts, removeOnComplete: false, removeOnFail: false },
          })),
        );
      }
    };
    let lastScan = Date.now();
    let drained = false;
    const pollMs = this.opts.pollMs ?? POLL_MS;
    let lastError = "";
    const step = async (): Promise<"stop" | void> => {
      if ((stop.budget.aborted || stop.signal.aborted) && !drained) {
        drained = true;
        await this.removeWaiting([...outstanding.keys()], outstanding);
        if (outstanding.size === 0) return "stop";
      }
      if (!drained && pending.length > 0 && outstanding.size < window) {
        const batch = pending.slice(0, window - outstanding.size);
        await add(batch);
        pending.splice(0, batch.length);
        for (const j of batch) outstanding.set(qid(j), j);
      }
      for (const job of (await this.queue.getJobs(["completed", "failed"], 0, 999)) as Job<QueueJobData, JobResult>[]) {
        if (!job?.id || job.name !== key || !outstanding.has(job.id)) continue;
        await this.collect(job, outstanding, sink);
      }
      sink.running(await this.activeOf(key, outstanding));
      if (Date.now() - lastScan >= SCAN_MS) {
        // Jobs Redis no longer has (it restarted without its data) go back on the queue.
        lastScan = Date.now();
        const lost: CampaignJob[] = [];
        for (const [id, j] of outstanding) {
          const job = await this.queue.getJob(id);
          if (!job) lost.push(j);
          else if (job.finishedOn) await this.collect(job as Job<QueueJobData, JobResult>, outstanding, sink);
        }
        if (lost.length > 0 && !drained) {
          this.opts.onNote?.(`${lost.length} job${lost.length === 1 ? "" : "s"} missing from Redis: enqueued again`);
          await add(lost);
        }
      }
      lastError = "";
    };
    let inflight: Promise<unknown> = Promise.resolve();
    while ((outstanding.size > 0 || (pending.length > 0 && !drained)) && !stop.signal.aborted) {
      try {
        const s = step();
        inflight = s;
        if ((await live.guard(s, stop.signal)) === "stop") break;
      } catch (e) {
        if (e instanceof Stopped) break;
        if (e instanceof RedisUnreachable) throw e;
        // An error Redis answered (not its absence, which commands wait out): said once, tried again.
        const msg = e instanceof Error ? e.message : String(e);
        if (msg !== lastError) this.opts.onNote?.(`Redis: ${msg}; retrying`);
        lastError = msg;
      }
      await sleep(pollMs, stop.signal);
    }
    if (stop.signal.aborted) {
      // Running jobs finish on their workers; --resume collects them.
      if (live.down) this.opts.onNote?.(`Redis at ${this.url} unreachable: this campaign's waiting jobs stay on the queue (workers may run them; --resume collects the results)`);
      else {
        // The step the signal cut short finishes first: a result it was saving is kept, and it adds no job after the removal.
        const until = AbortSignal.timeout(REMOVE_DEADLINE_MS);
        await live.guard(inflight, until).catch(() => {});
        const removed = await live.guard(this.removeWaiting([...outstanding.keys()], outstanding), until).then(
          () => true,
          () => false,
        );
        // What is left, workers have taken: it runs to its end there (not "not run"), and --resume collects it.
        if (removed) sink.runningElsewhere?.(outstanding.size);
      }
      return "interrupted";
    }
    return drained ? "budget" : "complete";
  }

  private async collect(job: Job<QueueJobData, JobResult>, outstanding: Map<string, CampaignJob>, sink: DriverSink): Promise<void> {
    const j = outstanding.get(job.id!);
    if (!j) return;
    const state = await job.getState();
    if (state === "completed" && job.returnvalue) {
      const now = Date.now();
      const taken = job.processedOn ?? job.timestamp;
      const finished = job.finishedOn ?? now;
      this.times.push({ waitMs: taken - job.timestamp, runMs: finished - taken, collectMs: now - finished, resultBytes: Buffer.byteLength(JSON.stringify(job.returnvalue)) });
      await sink.result(job.returnvalue);
    } else if (state === "failed") {
      await sink.failed({ jobId: j.id, storm: j.storm, machine: j.machine, seed: j.seed, attempts: job.attemptsMade, error: job.failedReason || "failed", at: new Date(job.finishedOn ?? Date.now()).toISOString() });
    } else return;
    outstanding.delete(job.id!);
    await job.remove().catch(() => {});
  }

  private async activeOf(key: string, outstanding: Map<string, CampaignJob>): Promise<number> {
    const active = await this.queue.getJobs(["active"], 0, 999);
    return active.filter((j) => j?.name === key && outstanding.has(j.id!)).length;
  }

  /** Takes this campaign's jobs no worker has started off the queue. */
  private async removeWaiting(ids: string[], outstanding: Map<string, CampaignJob>): Promise<void> {
    for (const id of ids) {
      const job = await this.queue.getJob(id);
      if (!job) continue;
      const state = await job.getState();
      if (state === "waiting" || state === "delayed" || state === "prioritized" || state === "waiting-children") {
        await job.remove();
        outstanding.delete(id);
      }
    }
  }

  /** Closes the connection; prompt also when Redis is away (commands still waiting for it are dropped). */
  async close(): Promise<void> {
    this.liveness?.dispose();
    if (this.redis.status === "ready") await within(this.queue.close().catch(() => {}), 1000);
    this.redis.disconnect();
  }
}

/** p, or nothing after ms; the timer goes with p, keeping no process alive. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  const ac = new AbortController();
  await Promise.race([p, sleep(ms, ac.signal)]);
  ac.abort();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export interface QueueWorkerOptions {
  concurrency: number;
  /** How long a job's lock lasts without renewal; a dead worker's job is retried after about this long. */
  lockMs?: number;
  /** How often workers look for stalled jobs. */
  stalledMs?: number;
  /** Stalls (dead workers) a job survives before it is marked failed. */
  maxStalled?: number;
  onJob?: (e: { jobId: string; state: "started" | "done" | "failed"; result?: JobResult; error?: string }) => void;
  /** Errors other than Redis's absence (which onNote says). */
  onError?: (e: Error) => void;
  /** Redis gone away and back. */
  onNote?: (t: string) => void;
  /** The queue's URL as the user gave it, for messages (default redis://HOST:PORT). */
  url?: string;
  /** How long a Redis that went away is waited for before whileReachable() rejects. */
  downLimitMs?: number;
}

/** Bounds a close that waits on Redis: when Redis is away its commands never settle. */
const CLOSE_DEADLINE_MS = 1000;

/** Pulls jobs from the queue and runs each on a local worker pool until closed. */
export class QueueWorker {
  private readonly pool: WorkerPool;
  private worker: Worker<QueueJobData, JobResult> | undefined;
  private readonly redis: Client;
  private readonly url: string;
  private liveness: RedisLiveness | undefined;
  readonly name = `${hostname()}:${process.pid}`;

  constructor(
    connection: RedisConnection,
    private readonly opts: QueueWorkerOptions,
  ) {
    this.url = opts.url ?? `redis://${connection.host}:${connection.port}`;
    this.pool = new WorkerPool(opts.concurrency);
    // Connected by connect(): BullMQ's own connecting retries forever and says nothing.
    this.redis = client(connection, true);
  }

  /**
   * Connects, then starts pulling. Rejects with RedisUnreachable (the URL
   * and the cause: refused, wrong password, no answer within the deadline)
   * or Stopped (the signal aborted).
   */
  async connect(opts: { deadlineMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    await connectClient(this.redis, this.url, opts);
    const live = (this.liveness = new RedisLiveness(this.redis, this.url, this.opts.downLimitMs ?? DEFAULT_DOWN_LIMIT_MS, this.opts.onNote));
    const o = this.opts;
    // Made only now: its blocking connection, a copy of this client, is then made against a Redis that answered.
    const worker = (this.worker = new Worker<QueueJobData, JobResult>(
      QUEUE_NAME,
      async (job) => {
        const d = job.data;
        o.onJob?.({ jobId: d.job.id, state: "started" });
        try {
          const r = await this.pool.run(d.job, d.tracesDir);
          o.onJob?.({ jobId: d.job.id, state: "done", result: r });
          return { ...r, worker: this.name };
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          o.onJob?.({ jobId: d.job.id, state: "failed", error: msg });
          throw e instanceof JobSetupError ? e : new Error(msg);
        }
      },
      {
        connection: this.redis,
        concurrency: o.concurrency,
        lockDuration: o.lockMs ?? 30_000,
        stalledInterval: o.stalledMs ?? 30_000,
        maxStalledCount: o.maxStalled ?? 2,
      },
    ));
    // Redis's absence is RedisLiveness's to say, once; BullMQ would repeat it for each of its connections and retries.
    worker.on("error", (e) => {
      if (!live.down && isNotConnectionError(e)) o.onError?.(e);
    });
    await live.guard(worker.waitUntilReady(), opts.signal);
  }

  /** Whether Redis is away right now (a close would wait for it). */
  get redisDown(): boolean {
    return this.liveness?.down ?? false;
  }

  /** p, unless Redis stays away past the limit first (RedisUnreachable). */
  whileReachable<T>(p: Promise<T>): Promise<T> {
    return this.liveness ? this.liveness.guard(p) : p;
  }

  /** Waits for running jobs to finish, then stops. */
  async close(): Promise<void> {
    await this.worker?.close();
    await this.pool.stop();
    this.disconnect();
  }

  /** Stops running jobs now (their storms stop their VMs); their locks lapse and other workers take them. Prompt also when Redis is away. */
  async abort(): Promise<void> {
    await this.pool.stop();
    // BullMQ's close waits on Redis when it is away; the connections are dropped after the deadline.
    if (this.worker) await within(this.worker.close(true).catch(() => {}), CLOSE_DEADLINE_MS);
    this.disconnect();
  }

  private disconnect(): void {
    this.liveness?.dispose();
    this.redis.drop();
  }
}
