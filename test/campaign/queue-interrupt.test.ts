// Ctrl-C on a queued campaign stops only the campaign process: a job a worker
// has taken runs to its end on that worker, and --resume collects it. What the
// campaign says on the signal, and its summary, count such a job as running on
// the workers, not as "not run". A real redis-server on loopback and a real
// worker process, both stopped by the test, also when it fails.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, start, tempDir } from "../cli/helpers.js";
import { startRedis, type RedisServer } from "./redis.js";
import type { CampaignReport } from "../../src/campaign/index.js";

// A few seconds a job on the sim: long enough to be running on the worker when the campaign is stopped.
const LONG = `name: long
machine: { type: sim }
nics: { mix: [ { kind: usb-net, count: 4 } ] }
schedule: { cycles: 10000, maxInFlight: 3, dwell: { uniform: { min: 1ms, max: 8ms } } }
`;

function env(redis: RedisServer): NodeJS.ProcessEnv {
  return { ...process.env, PLUGSTORM_REDIS_PASSWORD: redis.password };
}

function report(out: string): CampaignReport {
  return JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as CampaignReport;
}

test.serial("SIGINT on a queued campaign: a job a worker has taken is counted as running on workers, runs to its end there, and --resume collects it", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  writeFileSync(join(d, "long.yaml"), LONG);
  writeFileSync(join(d, "c.yaml"), "name: long\nstorms: [long.yaml]\nseeds: 1..3\nshrink: false\n");
  const out = join(d, "out");
  const worker = start(t, ["worker", "--queue", redis.url, "--concurrency", "1"], { env: env(redis), timeoutMs: 110_000 });
  await worker.waitFor(/worker \S+: 1 at a time/, 30_000);
  const c = start(t, ["campaign", join(d, "c.yaml"), "--out", out, "--queue", redis.url], { env: env(redis), timeoutMs: 60_000 });
  const taken = /job (\S+): started/.exec(await worker.waitFor(/job \S+: started/, 30_000))![1]!;
  c.child.kill("SIGINT");
  const r = await c.done;
  t.is(r.code, 130, r.stderr);
  t.regex(r.stderr, /^SIGINT: taking this campaign's waiting jobs off the queue; jobs workers have taken run to their end there, and --resume collects them with the finished results$/m);
  t.notRegex(r.stderr, /stopping every running storm/);
  const rep = report(out);
  t.is(rep.status, "interrupted");
  t.deepEqual(rep.jobs, { total: 3, finished: 0, clean: 0, violations: 0, failed: 0, onWorkers: 1, notRun: 2 });
  t.regex(r.stdout, /0\/3 jobs finished · 0 clean · 0 with violations · 0 failed · 1 running on workers \(--resume collects them\) · 2 not run/);
  t.regex(readFileSync(join(out, "junit.xml"), "utf8"), /<skipped message="1 running on workers \(--resume collects them\), 2 jobs not run \(interrupted\)"\/>/);

  // The worker was not stopped with the campaign: the job it took ends there.
  await worker.waitFor(new RegExp(`job ${taken.replaceAll(".", "\\.")}: clean`), 60_000);
  const again = await run(t, ["campaign", join(d, "c.yaml"), "--out", out, "--queue", redis.url, "--resume"], { env: env(redis), timeoutMs: 60_000 });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(report(out).jobs, { total: 3, finished: 3, clean: 3, violations: 0, failed: 0, onWorkers: 0, notRun: 0 });
  worker.child.kill("SIGINT");
  const w = await worker.done;
  t.is(w.code, 0, w.stderr);
  t.is(w.stderr.split("\n").filter((l) => l === `job ${taken}: started`).length, 1, "collected, not run again");
});
