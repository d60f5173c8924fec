// A queued campaign whose Redis is not there, answers nothing, or goes away
// mid-campaign: it says so (the URL and the cause) and ends, and a signal
// ends it promptly, rather than printing progress forever. Every server a
// test starts (redis-server, a silent TCP listener) is stopped by the test,
// also when it fails; the campaign process is killed by the helper's
// teardown if it is still running.

import test from "ava";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, start, tempDir } from "../cli/helpers.js";
import { freePort, interruptWhileConnecting, silentServer, startRedis, type RedisServer } from "./redis.js";
import { RedisUnreachable, loadCampaignFile, loadQueue } from "../../src/campaign/index.js";

const YANK = join(ROOT, "scripts/storms/usb-yank.yaml");

function campaign(d: string, name: string): string {
  const file = join(d, "c.yaml");
  writeFileSync(file, `name: ${name}\nstorms: [${YANK}]\nseeds: 1..3\nshrink: false\n`);
  return file;
}

function env(redis: RedisServer): NodeJS.ProcessEnv {
  return { ...process.env, PLUGSTORM_REDIS_PASSWORD: redis.password };
}

test("a closed port: the first line is the error, naming the URL and ECONNREFUSED; exit 2 within seconds, nothing written", async (t) => {
  const d = tempDir(t);
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const out = join(d, "out");
  const t0 = Date.now();
  const r = await run(t, ["campaign", campaign(d, "closed"), "--out", out, "--queue", url], { timeoutMs: 30_000 });
  const ms = Date.now() - t0;
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr.split("\n")[0], `plugstorm campaign: cannot reach Redis at ${url}: connect ECONNREFUSED 127.0.0.1:${port}; nothing was run`);
  t.is(r.stdout, "");
  t.false(existsSync(out), "no output folder for a campaign that did not start");
  t.true(ms < 10_000, `took ${ms} ms`);
});

test("a listener that never answers: an error at the connect deadline; SIGINT while waiting exits 130 at once", async (t) => {
  const d = tempDir(t);
  const silent = await silentServer(t);
  const url = `redis://127.0.0.1:${silent.port}`;
  const r = await run(t, ["campaign", campaign(d, "silent"), "--out", join(d, "a"), "--queue", url], { timeoutMs: 30_000 });
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr.split("\n")[0]!, new RegExp(`^plugstorm campaign: cannot reach Redis at ${url}: no answer within \\d+ s; nothing was run$`));

  // A listener of its own: the first one's connection has come already.
  const i = await interruptWhileConnecting(t, (u) => ["campaign", campaign(d, "silent"), "--out", join(d, "b"), "--queue", u]);
  t.is(i.code, 130, i.stderr);
  t.regex(i.stderr, /^SIGINT: stopped before the campaign started; nothing was run\n$/);
  t.true(i.ms < 2_000, `took ${i.ms} ms`);
  t.false(existsSync(join(d, "b")));
});

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  test.serial(`Redis gone mid-campaign: it says so with the URL; ${signal} then ends the campaign within 2 s (exit ${code})`, async (t) => {
    const redis = await startRedis(t);
    const d = tempDir(t);
    const c = start(t, ["campaign", campaign(d, "gone"), "--out", join(d, "out"), "--queue", redis.url], { env: env(redis), timeoutMs: 60_000 });
    await c.waitFor(/^output: /m, 20_000);
    await redis.stop();
    await c.waitFor(new RegExp(`Redis at ${redis.url} unreachable \\(.*ECONNREFUSED.*\\); waiting up to 60 s`), 20_000);
    const t0 = Date.now();
    c.child.kill(signal);
    const r = await c.done;
    const ms = Date.now() - t0;
    t.is(r.code, code, r.stderr);
    t.true(ms < 2_000, `took ${ms} ms`);
    t.regex(r.stderr, /waiting jobs stay on the queue .*--resume collects/);
  });
}

test.serial("Redis gone mid-campaign for longer than --redis-wait: the campaign stops with the URL and the cause, exit 2", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  const t0 = Date.now();
  const c = start(t, ["campaign", campaign(d, "lost"), "--out", join(d, "out"), "--queue", redis.url, "--redis-wait", "2"], { env: env(redis), timeoutMs: 60_000 });
  await c.waitFor(/^output: /m, 20_000);
  await redis.stop();
  const stopped = Date.now();
  const r = await c.done;
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, new RegExp(`plugstorm campaign: Redis at ${redis.url} unreachable for 2 s \\(.*ECONNREFUSED.*\\): the campaign stopped; finished results are kept in \\S+, and --resume goes on once Redis is back\\n$`));
  const ms = Date.now() - stopped;
  t.true(ms >= 2_000 && ms < 8_000, `took ${ms} ms after Redis stopped (started ${stopped - t0} ms in)`);
});

test.serial("a Redis that wants a password not given: the first line says so and where the password comes from", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  const { PLUGSTORM_REDIS_PASSWORD: _, ...noPassword } = process.env;
  const r = await run(t, ["campaign", campaign(d, "nopw"), "--out", join(d, "out"), "--queue", redis.url], { env: noPassword, timeoutMs: 30_000 });
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr.split("\n")[0]!, new RegExp(`^plugstorm campaign: cannot reach Redis at ${redis.url}: NOAUTH .* \\(the password comes from PLUGSTORM_REDIS_PASSWORD\\); nothing was run$`));
  t.false(existsSync(join(d, "out")));
});

test.serial("a Redis gone between the campaign's connect and the queue's run is waited for as mid-campaign, not refused as at the start", async (t) => {
  const redis = await startRedis(t);
  const d = tempDir(t);
  const { spec } = await loadCampaignFile(campaign(d, "between"));
  const { QueueDriver, parseRedisUrl } = await loadQueue();
  const notes: string[] = [];
  const driver = new QueueDriver(parseRedisUrl(redis.url, { PLUGSTORM_REDIS_PASSWORD: redis.password }), { url: redis.url, onNote: (n) => notes.push(n), downLimitMs: 1000 });
  t.teardown(() => driver.close());
  await driver.connect();
  await redis.stop();
  const sink = { result: async () => true, failed: async () => {}, running: () => {} };
  const ac = new AbortController();
  const e = await t.throwsAsync(driver.run(spec.jobs, spec, join(d, "traces"), sink, { signal: ac.signal, budget: ac.signal }), { instanceOf: RedisUnreachable });
  t.is(e?.message.replace(/\(.*\)/, "(…)"), `Redis at ${redis.url} unreachable for 1 s (…)`);
  t.regex(notes.join("\n"), /waiting up to 1 s for it to come back/);
});
