// Benchmark: campaigns. (1) Sim campaign throughput, 2 local workers against
// 1 (goal >= 1.7x on a 2-core machine). (2) Queue overhead: the same short sim
// jobs through BullMQ on a real redis-server (loopback, its own folder) with
// one worker, against the local pool with one worker; and where a queued job's
// time goes. (3) The per-job costs the README's scale-on-paper rests on:
// result size, trace bytes per cycle, queue latency.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { CampaignStore, LocalDriver, WorkerPool, loadQueue, parseCampaign, runCampaign, type CampaignDriver, type CampaignSpec, type JobResult, type WorkerStats } from "../../src/campaign/index.js";
import { summary, fmt } from "./lib/stats.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "sim campaign jobs/s, 2 local workers against 1; through BullMQ on a local redis-server against the local pool; per-job costs";

const STORM = (cycles: number): string => `name: bench
machine: { type: sim }
nics: { mix: [ { kind: usb-net, count: 4 } ] }
schedule: { cycles: ${cycles}, maxInFlight: 3, dwell: { uniform: { min: 1ms, max: 8ms } } }
holders:
  - { kind: ifnet, count: 2, probability: 0.5, hold: { exponential: { mean: 4ms, max: 30ms } } }
`;

async function campaign(cycles: number, jobs: number, bugs = "", firstSeed = 1): Promise<CampaignSpec> {
  const text = `name: bench-${cycles}\nstorms:\n  - storm:\n${STORM(cycles)
    .split("\n")
    .map((l) => `      ${l}`)
    .join("\n")}\n${bugs ? `machines:\n  - { name: leaky, machine: { type: sim, bugs: [${bugs}] } }\n` : ""}seeds: { from: ${firstSeed}, count: ${jobs} }\nshrink: false\n`;
  return parseCampaign(text, "<bench>");
}

interface Timed {
  ms: number;
  results: JobResult[];
  /** CPU time of this (the campaign's parent) process during the run, ms. */
  parentCpuMs: number;
  workers: WorkerStats[];
  /** A side run twice (both()): its runs. */
  parts?: [Timed, Timed];
}

async function timed(spec: CampaignSpec, driver: CampaignDriver, pool?: WorkerPool): Promise<Timed> {
  const out = mkdtempSync(join(tmpdir(), "plugstorm-bench-campaign-"));
  const before = new Map((pool?.stats() ?? []).map((k) => [k.pid, k]));
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await runCampaign(spec, { out, driver });
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (r.report.jobs.finished !== spec.jobs.length) throw new Error(`bench: ${r.report.jobs.finished}/${spec.jobs.length} jobs finished`);
    const results = [...(await new CampaignStore(out, null).finished(spec)).values()];
    // A reused pool's counts are since it started: keep this run's part.
    const workers = (driver instanceof LocalDriver ? driver.workers : []).map((k) => {
      const b = before.get(k.pid);
      if (!b) return k;
      const main = k.mainCpuMs !== null && b.mainCpuMs !== null ? k.mainCpuMs - b.mainCpuMs : null;
      return { ...k, jobs: k.jobs - b.jobs, cpuMs: k.cpuMs - b.cpuMs, mainCpuMs: main, busyMs: k.busyMs - b.busyMs, startCpuMs: 0 };
    });
    return { ms, results, parentCpuMs: (c.user + c.system) / 1000, workers };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** Two runs of one side as one: their jobs over their wall times added up, each worker process listed. */
function both(a: Timed, b: Timed): Timed {
  return { ms: a.ms + b.ms, results: [...a.results, ...b.results], parentCpuMs: a.parentCpuMs + b.parentCpuMs, workers: [...a.workers, ...b.workers], parts: [a, b] };
}

/** 2 workers' jobs/s over 1 worker's. */
const ratioOf = (one: Timed, two: Timed): number => (two.results.length / two.ms) / (one.results.length / one.ms);
const s1 = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** Where a local run's time went, by CPU time (independent of what else the host runs). */
function describe(label: string, x: Timed): string {
  if (x.parts) return x.parts.map((p, i) => describe(`${label} (run ${i + 1})`, p)).join("\n");
  const w = x.workers.map(
    (k) => `pid ${k.pid}: ${k.jobs} jobs, CPU ${s1(k.cpuMs)}${k.mainCpuMs !== null ? ` (main thread ${s1(k.mainCpuMs)}, V8/libuv helpers ${s1(k.cpuMs - k.mainCpuMs - k.startCpuMs)})` : ""}${k.startCpuMs ? `, start-up ${s1(k.startCpuMs)}` : ""}, busy ${s1(k.busyMs)}`,
  );
  const cores = (sum(x.workers.map((k) => k.cpuMs - k.startCpuMs)) + x.parentCpuMs) / x.ms;
  return `  ${label}: wall ${s1(x.ms)}; parent CPU ${s1(x.parentCpuMs)} (${(x.parentCpuMs / x.results.length).toFixed(1)} ms/job); ${x.workers.length} worker process(es): ${w.join("; ")}; cores obtained ${cores.toFixed(2)}`;
}

/**
 * The wall time this run's CPU work needs on an idle host with `cores` cores:
 * a worker's JavaScript thread uses one core at most, and all the threads
 * together (V8's helpers, the parent) all cores at most. On an idle host the
 * pool spreads the jobs evenly (each goes to whichever worker is free), so
 * the JavaScript threads' work is split evenly too; here a loaded host may
 * have split it unevenly. A lower bound that does not depend on what the
 * other users of this host run, only on the CPU time ours took.
 */
function idleWallMs(x: Timed, cores: number): number {
  if (x.parts) return idleWallMs(x.parts[0], cores) + idleWallMs(x.parts[1], cores);
  const main = sum(x.workers.map((k) => k.mainCpuMs ?? k.cpuMs - k.startCpuMs));
  const total = sum(x.workers.map((k) => k.cpuMs - k.startCpuMs)) + x.parentCpuMs;
  return Math.max(main / x.workers.length, total / cores);
}
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function redisServer(): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-bench-redis-"));
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) await new Promise<void>((r) => (child.once("exit", () => r()), child.kill("SIGTERM")));
    rmSync(dir, { recursive: true, force: true });
  };
  const until = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((r) => {
      const c = connect(port, "127.0.0.1");
      c.once("connect", () => (c.destroy(), r(true)));
      c.once("error", () => r(false));
    });
    if (up) return { port, stop };
    if (Date.now() > until || child.exitCode !== null) {
      await stop();
      throw new Error("bench: redis-server did not start (scripts/setup-host installs it)");
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The steady-state line: every worker has run this many jobs before it is
 * measured. A worker's optimising compiler keeps working well past 8 jobs
 * (`--trace-opt` on one worker: 340, 178, 102, 86, 74, 72 TurboFan compiles in
 * its first six 400-cycle jobs, still 10-30 a job up to the 20th, 0-10 a job
 * after the 24th), and those compiles run on helper threads that a lone
 * worker gets from the idle core for free.
 */
const STEADY_AFTER = 24;
/** Jobs in the steady-state campaign: twice the fresh one's, so the end (one worker finishing the last job while the other has none) weighs less. */
const STEADY_JOBS = 24;
/**
 * Jobs in the long campaign from a cold start: what `plugstorm campaign` gets
 * on a campaign of the size users run (seed ranges of hundreds per storm),
 * every cost included -- each worker's start-up and warm-up, the parent's
 * work, the last job's tail. ~10x a worker's warm-up, so that cost counts as
 * much as it does in a real campaign, no more.
 */
const LONG_JOBS = 240;

const steadyWhy = (freshJobs: number): string =>
  `  why four lines: a fresh pool's workers each pay Node's start-up and V8's warm-up (~450 TurboFan compiles over a worker's first ~20 jobs, ` +
  `on helper threads), a one-time cost per worker that a ${freshJobs}-job campaign cannot repay with 2 workers; a real campaign runs hundreds or thousands of jobs on ` +
  `workers that live for all of it (the local pool keeps them). The ${LONG_JOBS}-job line is such a campaign from a cold start, every cost included: ` +
  `its ratio is the campaign throughput a user gets; the steady-state line (workers past their warm-up, a campaign long enough that its last job's ` +
  `tail, one worker idle while the other finishes, weighs less) is what each further job gets; the ${freshJobs}-job fresh line is what a short one-off campaign gets.`;

/** Runs sim jobs (seeds from firstSeed) on the pool until its workers have run `each` jobs apiece on average. */
async function warmTo(pool: WorkerPool, each: number, firstSeed: number): Promise<void> {
  const done = sum(pool.stats().map((k) => k.jobs));
  const more = pool.size * each - done;
  if (more > 0) await timed(await campaign(400, more, "", firstSeed), new LocalDriver(pool.size, { pool }), pool);
}

export async function run(): Promise<void> {
  // (1) Throughput: 2 workers against 1, the same 12 sim jobs of 400 cycles.
  const spec = await campaign(400, 12);
  const cores = availableParallelism();
  await timed(await campaign(20, 2), new LocalDriver(2)); // warm the page cache for the worker processes
  // Cold: each run starts its pool, as a one-off campaign does; every worker
  // process pays Node's start-up and V8's warm-up (its optimising compiler
  // runs on a helper thread, ~2 s of CPU over a worker's first ~12 jobs here).
  const one = await timed(spec, new LocalDriver(1));
  const two = await timed(spec, new LocalDriver(2));
  const longSpec = await campaign(400, LONG_JOBS, "", 5001);
  // In A-B-B-A order, each side's two runs added up: load that rises or
  // falls over the minutes these take weighs on both sides alike, not on
  // whichever ran later (one pair, A then B, swung 1.69-1.92x on this host).
  const longA1 = await timed(longSpec, new LocalDriver(1));
  const longB1 = await timed(longSpec, new LocalDriver(2));
  const longB2 = await timed(longSpec, new LocalDriver(2));
  const longA2 = await timed(longSpec, new LocalDriver(1));
  const long1 = both(longA1, longA2);
  const long2 = both(longB1, longB2);
  // Warm: the same jobs on pools whose workers have each run 8 other jobs
  // first. Steady: the same pools once every worker has run STEADY_AFTER
  // jobs, on a campaign of STEADY_JOBS; see steadyWhy for why both.
  const pairs = new Map<string, [number, number]>([["long", [ratioOf(longA1, longB1), ratioOf(longA2, longB2)]]]);
  const pool1 = new WorkerPool(1);
  const pool2 = new WorkerPool(2);
  let warm1: Timed;
  let warm2: Timed;
  let steady1: Timed;
  let steady2: Timed;
  try {
    await warmTo(pool1, 8, 1001);
    await warmTo(pool2, 8, 1001);
    warm1 = await timed(spec, new LocalDriver(1, { pool: pool1 }), pool1);
    warm2 = await timed(spec, new LocalDriver(2, { pool: pool2 }), pool2);
    const steadySpec = await campaign(400, STEADY_JOBS);
    await warmTo(pool1, STEADY_AFTER, 2001);
    await warmTo(pool2, STEADY_AFTER, 2001);
    // A-B-B-A as the long line (see there), on the same warmed pools.
    const sA1 = await timed(steadySpec, new LocalDriver(1, { pool: pool1 }), pool1);
    const sB1 = await timed(steadySpec, new LocalDriver(2, { pool: pool2 }), pool2);
    const sB2 = await timed(steadySpec, new LocalDriver(2, { pool: pool2 }), pool2);
    const sA2 = await timed(steadySpec, new LocalDriver(1, { pool: pool1 }), pool1);
    steady1 = both(sA1, sA2);
    steady2 = both(sB1, sB2);
    pairs.set("steady", [ratioOf(sA1, sB1), ratioOf(sA2, sB2)]);
  } finally {
    await Promise.all([pool1.stop(), pool2.stop()]);
  }
  const jps = (x: Timed): number => (x.results.length * 1000) / x.ms;
  const [load] = loadavg();
  // With autogroup scheduling the kernel shares the CPU between sessions, not
  // processes: while other sessions keep the cores busy, a second worker in
  // ours gets no more CPU, only half of what the first had.
  let autogroup = false;
  try {
    autogroup = readFileSync("/proc/sys/kernel/sched_autogroup_enabled", "utf8").trim() === "1";
  } catch {
    // not Linux, or no autogroup
  }
  const busy = load! > cores / 2;
  const lines = [
    [`${spec.jobs.length} jobs of 400 cycles, workers started fresh`, one, two],
    [`${spec.jobs.length} jobs of 400 cycles, workers warmed up (8 jobs each before)`, warm1, warm2],
    [`${STEADY_JOBS} jobs of 400 cycles, steady state (workers ran ${STEADY_AFTER} jobs each before), each side twice (A-B-B-A)`, steady1, steady2, pairs.get("steady")],
    [`${LONG_JOBS} jobs of 400 cycles, workers started fresh (a long campaign, every cost included), each side twice (A-B-B-A)`, long1, long2, pairs.get("long")],
  ] as const;
  for (const [label, a, b, pair] of lines) {
    console.log(`sim campaign, ${label}: 1 worker ${jps(a).toFixed(2)} jobs/s, 2 workers ${jps(b).toFixed(2)} jobs/s`);
    console.log(describe("1 worker ", a));
    console.log(describe("2 workers", b));
    // Wall-clock ratios mean little while other users keep the cores busy;
    // the CPU each run used says what it would take on an idle host.
    console.log(
      `  2 workers / 1 worker: wall ${(jps(b) / jps(a)).toFixed(2)}x (goal >= 1.7x); on an idle ${cores}-core host by CPU time ${(idleWallMs(a, cores) / idleWallMs(b, cores)).toFixed(2)}x; the same work's CPU with 1 worker over with 2 ${((sum(a.workers.map((k) => k.cpuMs - k.startCpuMs)) / sum(b.workers.map((k) => k.cpuMs - k.startCpuMs))) * 100).toFixed(0)}%` +
        (pair ? `; the two pairs alone ${pair.map((r) => `${r.toFixed(2)}x`).join(" and ")}` : "") +
        (busy ? ` — load average ${load!.toFixed(1)} on ${cores} cores${autogroup ? ", CPU shared per session (sched_autogroup)" : ""}: the wall ratio measures the other users` : ""),
    );
  }
  console.log(steadyWhy(spec.jobs.length));

  // (2) Queue overhead: short jobs, one worker either way.
  const short = await campaign(20, 20);
  const local = await timed(short, new LocalDriver(1));
  const redis = await redisServer();
  try {
    const q = await loadQueue();
    const conn = q.parseRedisUrl(`redis://127.0.0.1:${redis.port}`, {});
    const worker = new q.QueueWorker(conn, { concurrency: 1 });
    await worker.connect();
    const driver = new q.QueueDriver(conn);
    const { Redis } = await import("ioredis");
    const probe = new Redis({ port: redis.port, host: "127.0.0.1" });
    const commands = async (): Promise<number> => Number(/total_commands_processed:(\d+)/.exec(await probe.info("stats"))![1]);
    try {
      const c0 = await commands();
      const queued = await timed(short, driver);
      const perJob = ((await commands()) - c0) / short.jobs.length;
      const jl = (short.jobs.length * 1000) / local.ms;
      const jq = (short.jobs.length * 1000) / queued.ms;
      console.log(`short sim jobs (20 cycles), 1 worker: local ${jl.toFixed(2)} jobs/s, through BullMQ ${jq.toFixed(2)} jobs/s: queue/local ${(jq / jl).toFixed(2)}x`);
      const wait = summary(driver.times.map((x) => x.waitMs));
      const runMs = summary(driver.times.map((x) => x.runMs));
      const collect = summary(driver.times.map((x) => x.collectMs));
      const job = summary(local.results.map((r) => r.durationMs));
      console.log(`  per queued job: run ${fmt(runMs.p50)} p50 (a local job: ${fmt(job.p50)}), collected ${fmt(collect.p50)} p50 after it finished (polling), queued ${fmt(wait.p50)} p50 before a worker took it (all enqueued at once)`);
      const bytes = summary(driver.times.map((x) => x.resultBytes));
      console.log(`  result through Redis: ${bytes.p50} bytes p50 (clean job); Redis commands: ${perJob.toFixed(0)} per job (worker, campaign and polling, over ${(queued.ms / 1000).toFixed(1)} s)`);
    } finally {
      probe.disconnect();
      await driver.close();
      await worker.close();
    }
  } finally {
    await redis.stop();
  }

  // (3) Per-job costs for the scale-on-paper numbers.
  const leaky = await timed(await campaign(200, 4, "leak-ref"), new LocalDriver(2));
  const clean = await timed(await campaign(400, 4), new LocalDriver(2));
  const perCycle = (rs: JobResult[]): number => rs.reduce((s, r) => s + r.traceBytes, 0) / rs.reduce((s, r) => s + r.cycles, 0);
  const size = (rs: JobResult[]): number => Math.round(rs.reduce((s, r) => s + Buffer.byteLength(JSON.stringify(r)), 0) / rs.length);
  console.log(`per job: result ${size(clean.results)} bytes clean, ${size(leaky.results)} bytes with a finding (its consequences included); trace ${perCycle(clean.results).toFixed(0)} bytes per cycle`);
}
