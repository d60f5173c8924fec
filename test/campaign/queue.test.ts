// Campaigns across hosts: a real redis-server on loopback, several `plugstorm
// worker` processes playing the hosts, the campaign process enqueueing and
// collecting. Each test starts its own Redis and stops it, also on failure.

import test from "ava";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, start, tempDir, type Running } from "../cli/helpers.js";
import { alive, childrenOf } from "../helpers/process.js";
import { startRedis, type RedisServer } from "./redis.js";
import type { CampaignReport, JobResult } from "../../src/campaign/index.js";

const YANK = join(ROOT, "scripts/storms/usb-yank.yaml");

function env(redis: RedisServer, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PLUGSTORM_REDIS_PASSWORD: redis.password, ...extra };
}

async function worker(t: Parameters<typeof start>[0], redis: RedisServer, extra: NodeJS.ProcessEnv = {}): Promise<Running & { name: string }> {
  const w = start(t, ["worker", "--queue", redis.url, "--concurrency", "1", "--lock-ms", "1500", "--stalled-ms", "500"], { env: env(redis, extra), timeoutMs: 110_000 });
  const line = await w.waitFor(/worker \S+:\d+: 1 at a time/, 30_000);
  return Object.assign(w, { name: /worker (\S+:\d+)/.exec(line)![1]! });
}

function report(out: string): CampaignReport {
  return JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as CampaignReport;
}

function results(out: string): JobResult[] {
  const dir = join(out, "results");
  return readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as JobResult);
}

function signatures(r: CampaignReport): string[] {
  return r.findings.map((f) => `${f.signature.id} ${f.guests.join(",")} ${f.count}/${f.jobs} [${f.consequences.map((c) => `${c.signature.id}:${c.count}`).join(" ")}]`).sort();
}

test.serial("the same campaign gives the same signatures locally and through the queue with two workers", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  writeFileSync(join(d, "c.yaml"), `name: same\nstorms: [${YANK}]\nmachines:\n  - { name: clean, machine: { type: sim } }\n  - { name: leaky, machine: { type: sim, bugs: [leak-ref] } }\nseeds: 1..2\nshrink: false\n`);
  const local = await run(t, ["campaign", join(d, "c.yaml"), "--out", join(d, "local"), "--parallelism", "2", "-q"]);
  t.is(local.code, 1, local.stderr);
  const a = await worker(t, redis);
  const b = await worker(t, redis);
  const queued = await run(t, ["campaign", join(d, "c.yaml"), "--out", join(d, "queued"), "--queue", redis.url], { env: env(redis) });
  t.is(queued.code, 1, queued.stderr);
  const lr = report(join(d, "local"));
  const qr = report(join(d, "queued"));
  t.is(qr.jobs.finished, 4);
  t.true(signatures(lr).length > 0);
  t.deepEqual(signatures(qr), signatures(lr));
  for (const name of Object.keys(qr.workers)) t.true([a.name, b.name].includes(name), name);
  // Traces went to the campaign's folder (the shared folder), where the links point.
  for (const e of qr.findings[0]!.examples) t.notThrows(() => readFileSync(join(d, "queued", e.trace)));
});

const MEDIUM = `name: medium
machine: { type: sim }
nics: { mix: [ { kind: usb-net, count: 4 } ] }
schedule: { cycles: 2000, maxInFlight: 3, dwell: { uniform: { min: 1ms, max: 8ms } } }
holders:
  - { kind: ifnet, count: 2, probability: 0.5, hold: { exponential: { mean: 4ms, max: 30ms } } }
`;

test.serial("a worker SIGKILLed mid-job: the job completes on another worker, once", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  writeFileSync(join(d, "medium.yaml"), MEDIUM);
  writeFileSync(join(d, "c.yaml"), "name: killed\nstorms: [medium.yaml]\nseeds: 1..2\nshrink: false\n");
  const out = join(d, "out");
  const a = await worker(t, redis);
  const c = start(t, ["campaign", join(d, "c.yaml"), "--out", out, "--queue", redis.url], { env: env(redis), timeoutMs: 110_000 });
  const startedLine = await a.waitFor(/job \S+: started/, 30_000);
  const jobId = /job (\S+): started/.exec(startedLine)![1]!;
  const aChildren = childrenOf(a.child.pid!);
  a.child.kill("SIGKILL");
  await a.done;
  const b = await worker(t, redis);
  const r = await c.done;
  t.is(r.code, 0, r.stderr);
  const all = results(out);
  t.is(all.length, 2);
  t.is(new Set(all.map((x) => x.jobId)).size, 2);
  const redone = all.find((x) => x.jobId === jobId)!;
  t.is(redone.worker, b.name, "the killed worker's job ran on the other worker");
  t.is(redone.status, "clean");
  const rep = report(out);
  t.is(rep.jobs.finished, 2);
  t.is(rep.failedJobs.length, 0);
  // The dead worker's storm process noticed and stopped.
  await Promise.all(aChildren.map((p) => waitGone(p, 10_000)));
  for (const p of aChildren) t.false(alive(p), `${p} gone`);
});

async function waitGone(pid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

test.serial("Redis restarted mid-campaign: no result lost or counted twice", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  writeFileSync(join(d, "medium.yaml"), MEDIUM.replace("2000", "1500"));
  writeFileSync(join(d, "c.yaml"), "name: restarted\nstorms: [medium.yaml]\nseeds: 1..4\nshrink: false\n");
  const out = join(d, "out");
  await worker(t, redis);
  await worker(t, redis);
  // A window of 2: jobs are added as results come in, also across the restart.
  const c = start(t, ["campaign", join(d, "c.yaml"), "--out", out, "--queue", redis.url, "--window", "2", "-v"], { env: env(redis), timeoutMs: 110_000 });
  await c.waitFor(/job \S+: clean/, 60_000);
  t.true(results(out).length < 4, "Redis goes away mid-campaign");
  await redis.stop();
  await redis.restart();
  const r = await c.done;
  t.is(r.code, 0, r.stderr);
  const all = results(out);
  t.is(all.length, 4);
  t.is(new Set(all.map((x) => x.jobId)).size, 4);
  const rep = report(out);
  t.is(rep.jobs.finished, 4);
  t.is(rep.jobs.clean, 4);
  t.is(rep.cycles, 4 * 1500);
  t.is(rep.failedJobs.length, 0);
  t.is((r.stderr.match(/: clean/g) ?? []).length, 4, "each job reported once");
});

test.serial("a job failing on every worker is marked failed after its attempts, through the queue", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  writeFileSync(join(d, "c.yaml"), `name: broken\nstorms: [${join(ROOT, "scripts/storms/qemu-usb-bare.yaml")}]\nattempts: 2\nshrink: false\n`);
  const out = join(d, "out");
  await worker(t, redis, { PATH: "/nonexistent" });
  const r = await run(t, ["campaign", join(d, "c.yaml"), "--out", out, "--queue", redis.url], { env: env(redis) });
  t.is(r.code, 2, r.stderr);
  const rep = report(out);
  t.is(rep.failedJobs.length, 1);
  t.is(rep.failedJobs[0]!.attempts, 2);
  t.regex(rep.failedJobs[0]!.error, /not found/);
});

test("the Redis password comes from the environment, never the command line", async (t) => {
  const r = await run(t, ["worker", "--queue", "redis://:secret@127.0.0.1:1"]);
  t.is(r.code, 2);
  t.regex(r.stderr, /no password in the URL .* PLUGSTORM_REDIS_PASSWORD/);
  const c = await run(t, ["campaign", join(ROOT, "scripts/campaigns/two-guests.yaml"), "--queue", "http://127.0.0.1:1"]);
  t.is(c.code, 2);
  t.regex(c.stderr, /expects redis:\/\/HOST:PORT/);
});

test.serial("Ctrl-C on a queued campaign takes its waiting jobs off the queue; --resume puts them back and each runs once", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  writeFileSync(join(d, "c.yaml"), `name: paused\nstorms: [${YANK}]\nseeds: 1..3\nshrink: false\n`);
  const out = join(d, "out");
  const { Queue } = await import("bullmq");
  const { Redis } = await import("ioredis");
  const conn = new Redis({ port: redis.port, host: "127.0.0.1", password: redis.password, maxRetriesPerRequest: null });
  const queue = new Queue("plugstorm-jobs", { connection: conn });
  t.teardown(async () => {
    await queue.close();
    conn.disconnect();
  });
  // No worker yet: the jobs wait on the queue.
  const c = start(t, ["campaign", join(d, "c.yaml"), "--out", out, "--queue", redis.url], { env: env(redis) });
  const until = Date.now() + 30_000;
  while ((await queue.getWaitingCount()) < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  t.is(await queue.getWaitingCount(), 3);
  c.child.kill("SIGINT");
  const r = await c.done;
  t.is(r.code, 130, r.stderr);
  t.is(await queue.getWaitingCount(), 0, "nothing left for workers to pick up");
  t.is(report(out).status, "interrupted");
  await worker(t, redis);
  const again = await run(t, ["campaign", join(d, "c.yaml"), "--out", out, "--queue", redis.url, "--resume"], { env: env(redis) });
  t.is(again.code, 0, again.stderr);
  t.is(results(out).length, 3);
  t.is(report(out).jobs.finished, 3);
});
