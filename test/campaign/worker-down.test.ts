// `plugstorm worker` whose Redis is not there, answers nothing, or goes away
// while it waits for jobs: it says so (the URL and the cause) and ends, and a
// signal ends it within 2 s, rather than waiting forever. Every server a test
// starts (redis-server, a silent TCP listener) is stopped by the test, also
// when it fails; the worker process is killed by the helper's teardown if it
// is still running.

import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, start, tempDir } from "../cli/helpers.js";
import { alive, childrenOf } from "../helpers/process.js";
import { freePort, interruptWhileConnecting, silentServer, startRedis, type RedisServer } from "./redis.js";

function env(redis: RedisServer): NodeJS.ProcessEnv {
  return { ...process.env, PLUGSTORM_REDIS_PASSWORD: redis.password };
}

const PULLING = /^worker \S+:\d+: 1 at a time, pulling from /m;

test("a closed port: the first line is the error, naming the URL and ECONNREFUSED; exit 2 within seconds", async (t) => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const t0 = Date.now();
  const r = await run(t, ["worker", "--queue", url], { timeoutMs: 30_000 });
  const ms = Date.now() - t0;
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr, `plugstorm worker: cannot reach Redis at ${url}: connect ECONNREFUSED 127.0.0.1:${port}\n`);
  t.true(ms < 10_000, `took ${ms} ms`);
});

test("a listener that never answers: an error at the connect deadline; SIGINT while waiting exits 0 at once", async (t) => {
  const silent = await silentServer(t);
  const url = `redis://127.0.0.1:${silent.port}`;
  const r = await run(t, ["worker", "--queue", url], { timeoutMs: 30_000 });
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, new RegExp(`^plugstorm worker: cannot reach Redis at ${url}: no answer within \\d+ s\\n$`));

  // A listener of its own: the first one's connection has come already.
  const i = await interruptWhileConnecting(t, (u) => ["worker", "--queue", u]);
  t.is(i.code, 0, i.stderr);
  t.is(i.stderr, "SIGINT: stopped before Redis answered; no job was taken\n");
  t.true(i.ms < 2_000, `took ${i.ms} ms`);
});

test.serial("a Redis that wants a password not given: the first line says so and where the password comes from", async (t) => {
  const redis = await startRedis(t);
  const { PLUGSTORM_REDIS_PASSWORD: _, ...noPassword } = process.env;
  const r = await run(t, ["worker", "--queue", redis.url], { env: noPassword, timeoutMs: 30_000 });
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, new RegExp(`^plugstorm worker: cannot reach Redis at ${redis.url}: NOAUTH .* \\(the password comes from PLUGSTORM_REDIS_PASSWORD\\)\\n$`));
});

for (const [signal, down] of [["SIGINT", false], ["SIGTERM", false], ["SIGINT", true], ["SIGTERM", true]] as const) {
  test.serial(`${signal} ends a waiting worker within 2 s (exit 0) with Redis ${down ? "gone (said at once, with the URL and the cause)" : "up"}`, async (t) => {
    const redis = await startRedis(t);
    const w = start(t, ["worker", "--queue", redis.url, "--concurrency", "1"], { env: env(redis), timeoutMs: 60_000 });
    await w.waitFor(PULLING, 20_000);
    if (down) {
      await redis.stop();
      const stopped = Date.now();
      await w.waitFor(new RegExp(`^Redis at ${redis.url} unreachable \\(.*ECONNREFUSED.*\\); waiting up to 60 s for it to come back$`, "m"), 10_000);
      const ms = Date.now() - stopped;
      t.true(ms < 3_000, `said ${ms} ms after Redis stopped`);
    }
    const t0 = Date.now();
    w.child.kill(signal);
    const r = await w.done;
    const ms = Date.now() - t0;
    t.is(r.code, 0, r.stderr);
    t.true(ms < 2_000, `took ${ms} ms`);
    t.regex(r.stderr, down ? new RegExp(`${signal}: stopping running jobs now \\(Redis is away`) : new RegExp(`${signal}: finishing running jobs, taking no new ones\\n$`));
    t.notRegex(r.stderr, /^worker: /m, "Redis's absence is said once, not as each connection's error");
  });
}

test.serial("Redis gone while a job runs: SIGTERM stops the job's storm at once (its result could not be reported), within 2 s", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  // A storm that idles until stopped: the job is still running when Redis goes.
  writeFileSync(join(d, "idle.yaml"), "name: idle\nmachine: { type: sim }\nschedule:\n  cycles: 10000\n  dwell: 86400s\n");
  writeFileSync(join(d, "c.yaml"), "name: idle\nstorms: [idle.yaml]\nshrink: false\n");
  const w = start(t, ["worker", "--queue", redis.url, "--concurrency", "1"], { env: env(redis), timeoutMs: 60_000 });
  await w.waitFor(PULLING, 20_000);
  start(t, ["campaign", join(d, "c.yaml"), "--out", join(d, "out"), "--queue", redis.url], { env: env(redis), timeoutMs: 60_000 });
  await w.waitFor(/^job \S+: started$/m, 30_000);
  const pool = childrenOf(w.child.pid!);
  t.true(pool.length > 0, "the job runs in a pool process");
  await redis.stop();
  await w.waitFor(/unreachable \(.*ECONNREFUSED.*\); waiting up to 60 s/, 10_000);
  const t0 = Date.now();
  w.child.kill("SIGTERM");
  const r = await w.done;
  const ms = Date.now() - t0;
  t.is(r.code, 0, r.stderr);
  t.true(ms < 2_000, `took ${ms} ms`);
  t.regex(r.stderr, /SIGTERM: stopping running jobs now \(Redis is away; their jobs go to other workers once it is back\)/);
  for (const p of pool) t.false(alive(p), `pool process ${p} stopped with the worker`);
});

test.serial("Redis gone for longer than --redis-wait: the worker stops with the URL and the cause, exit 2", async (t) => {
  const redis = await startRedis(t);
  const w = start(t, ["worker", "--queue", redis.url, "--concurrency", "1", "--redis-wait", "2"], { env: env(redis), timeoutMs: 60_000 });
  await w.waitFor(PULLING, 20_000);
  await redis.stop();
  const stopped = Date.now();
  const r = await w.done;
  const ms = Date.now() - stopped;
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, new RegExp(`waiting up to 2 s for it to come back\\nplugstorm worker: Redis at ${redis.url} unreachable for 2 s \\(.*ECONNREFUSED.*\\): the worker stopped \\(its running jobs go to other workers once Redis is back\\)\\n$`));
  t.true(ms >= 2_000 && ms < 8_000, `took ${ms} ms after Redis stopped`);
});

test.serial("Redis restarted within --redis-wait: the worker says it is back and goes on", async (t) => {
  const redis = await startRedis(t);
  const w = start(t, ["worker", "--queue", redis.url, "--concurrency", "1", "--redis-wait", "30"], { env: env(redis), timeoutMs: 60_000 });
  await w.waitFor(PULLING, 20_000);
  await redis.stop();
  await w.waitFor(/unreachable \(.*ECONNREFUSED.*\); waiting up to 30 s/, 10_000);
  await redis.restart();
  await w.waitFor(/^Redis is back$/m, 20_000);
  const t0 = Date.now();
  w.child.kill("SIGTERM");
  const r = await w.done;
  t.is(r.code, 0, r.stderr);
  t.true(Date.now() - t0 < 2_000, `took ${Date.now() - t0} ms`);
  t.regex(r.stderr, /SIGTERM: finishing running jobs, taking no new ones\n$/);
});

test("worker --help says what an unreachable Redis does and the exit codes", async (t) => {
  const r = await run(t, ["worker", "--help"]);
  t.is(r.code, 0);
  const help = r.stdout.replace(/\s+/g, " ");
  t.regex(help, /--redis-wait S seconds to wait for a Redis that went away before stopping \(default 60;/);
  t.regex(help, /cannot be reached at the start is an error naming the URL and the cause \(within 5 s\)/);
  t.regex(help, /Exit codes: 0 stopped by SIGINT\/SIGTERM, 2 .*Redis unreachable/);
});
