import test, { type ExecutionContext } from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobInterrupted, LocalDriver, WorkerPool, parseCampaign, runCampaign, type CampaignSpec } from "../../src/campaign/index.js";
import { ALL_CORES_V8_FLAGS, WORKER_V8_FLAGS, workerExecArgv } from "../../src/campaign/pool.js";
import { alive } from "../helpers/process.js";

const CAMPAIGN = `name: reuse
storms:
  - storm:
      name: short
      machine: { type: sim }
      nics: { mix: [ { kind: usb-net, count: 2 } ] }
      schedule: { cycles: 10, maxInFlight: 2, dwell: 2ms }
seeds: 1..6
shrink: false
`;

/** A folder and a pool of 2, both gone after the test, and the campaign's spec. */
async function setUp(t: ExecutionContext): Promise<{ dir: string; pool: WorkerPool; spec: CampaignSpec }> {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-pool-"));
  const pool = new WorkerPool(2);
  t.teardown(async () => {
    await pool.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, pool, spec: await parseCampaign(CAMPAIGN, "<test>") };
}

test("the pool reuses its worker processes: 6 jobs on a pool of 2 start 2 processes, and each says what CPU it used", async (t) => {
  const { dir, pool, spec } = await setUp(t);
  const results = await Promise.all(spec.jobs.map((j) => pool.run(j, dir)));
  t.is(results.length, 6);
  const stats = pool.stats();
  t.is(stats.length, 2, "no process per job");
  t.is(stats.reduce((s, k) => s + k.jobs, 0), 6);
  t.is(new Set(results.map((r) => r.worker.split(":")[1])).size, 2);
  for (const k of stats) {
    t.true(k.startCpuMs > 0 && k.cpuMs > k.startCpuMs, JSON.stringify(k));
    t.true(k.busyMs > 0 && k.lastDoneAt >= k.spawnedAt);
    // The JavaScript thread's share (Linux says; it counts in 10 ms ticks).
    if (k.mainCpuMs !== null) t.true(k.mainCpuMs > 0 && k.mainCpuMs <= k.cpuMs + 20, JSON.stringify(k));
  }
  const pids = pool.pids();
  await pool.stop();
  for (const p of pids) t.false(alive(p), `worker ${p} still runs after stop`);
});

test("a LocalDriver given a pool runs campaign after campaign on the same worker processes and leaves them running", async (t) => {
  const { dir, pool, spec } = await setUp(t);
  for (const run of ["a", "b"]) {
    const driver = new LocalDriver(2, { pool });
    const r = await runCampaign(spec, { out: join(dir, run), driver });
    t.is(r.report.jobs.finished, 6);
  }
  const stats = pool.stats();
  t.is(stats.length, 2, "the second campaign started no process");
  t.is(stats.reduce((s, k) => s + k.jobs, 0), 12);
  for (const p of pool.pids()) t.true(alive(p), `worker ${p} stopped with the campaign`);
  t.throws(() => new LocalDriver(3, { pool }), { message: /the pool has 2 workers, the parallelism is 3/ });
});

/** Whether a process has died and not been reaped yet (what a worker is between Ctrl-C and Node reading its exit). */
function zombie(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
}

test("a stop just after the workers died (Ctrl-C reaches them too) ends cleanly: their jobs are interrupted, and the send to a dead worker is no crash", async (t) => {
  const { dir, pool, spec } = await setUp(t);
  const runs = spec.jobs.slice(0, 2).map((j) => pool.run(j, dir));
  t.is(pool.running, 2);
  const pids = pool.pids();
  for (const p of pids) process.kill(p, "SIGKILL");
  // Dead, and this process has not turned its event loop to read it: the channels still look connected, so stop() writes to them.
  const deadline = Date.now() + 5000;
  for (const p of pids) while (!zombie(p)) if (Date.now() > deadline) throw new Error(`worker ${p} did not die`);
  const stopped = pool.stop();
  const outcomes = await Promise.allSettled(runs);
  await stopped;
  for (const o of outcomes) t.true(o.status === "rejected" && o.reason instanceof JobInterrupted, String(o.status === "rejected" ? o.reason : "fulfilled"));
  for (const p of pids) t.false(alive(p));
});

test("the workers run with the pool's V8 flags after the parent's own", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-pool-"));
  const pool = new WorkerPool(1, { v8Flags: ["--max-semi-space-size=16"] });
  t.teardown(async () => {
    await pool.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const spec = await parseCampaign(CAMPAIGN, "<test>");
  const r = await pool.run(spec.jobs[0]!, dir);
  t.is(r.status, "clean");
  const [pid] = pool.pids();
  let cmdline: string[];
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return t.pass("no /proc here to read a process's arguments");
  }
  const at = cmdline.indexOf("--max-semi-space-size=16");
  t.true(at > 0, cmdline.join(" "));
  // The parent's flags (ava's loaders, if any) come first: the pool's may override them.
  t.deepEqual(cmdline.slice(1, 1 + process.execArgv.length), process.execArgv);
  t.true(at >= 1 + process.execArgv.length);
});

test("a pool whose workers take every core adds the all-cores flags after its own; a smaller pool does not", (t) => {
  const parent = ["--parent-flag"];
  const opts = { v8Flags: ["--pool-flag"], allCoresV8Flags: ["--all-cores-flag"], cores: 2 };
  t.deepEqual(workerExecArgv(1, opts, parent), ["--parent-flag", "--pool-flag"]);
  t.deepEqual(workerExecArgv(2, opts, parent), ["--parent-flag", "--pool-flag", "--all-cores-flag"]);
  t.deepEqual(workerExecArgv(3, opts, parent), ["--parent-flag", "--pool-flag", "--all-cores-flag"]);
  // Without a pool's own flags, the defaults: WORKER_V8_FLAGS, then (every core taken) ALL_CORES_V8_FLAGS.
  t.deepEqual(workerExecArgv(1, { cores: 1 }, parent), [...parent, ...WORKER_V8_FLAGS, ...ALL_CORES_V8_FLAGS]);
  t.deepEqual(workerExecArgv(1, { cores: 2 }, parent), [...parent, ...WORKER_V8_FLAGS]);
});

test("a pool's worker processes start with the all-cores flags when the pool takes every core", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-pool-"));
  const pool = new WorkerPool(1, { v8Flags: [], allCoresV8Flags: ["--max-semi-space-size=8"], cores: 1 });
  t.teardown(async () => {
    await pool.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const spec = await parseCampaign(CAMPAIGN, "<test>");
  t.is((await pool.run(spec.jobs[0]!, dir)).status, "clean");
  let cmdline: string[];
  try {
    cmdline = readFileSync(`/proc/${pool.pids()[0]}/cmdline`, "utf8").split("\0");
  } catch {
    return t.pass("no /proc here to read a process's arguments");
  }
  t.true(cmdline.includes("--max-semi-space-size=8"), cmdline.join(" "));
});
