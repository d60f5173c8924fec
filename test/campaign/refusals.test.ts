// A campaign that cannot start says why on its first line, before any header
// ("campaign ...: N jobs", "output: ..."), and leaves nothing behind.

import test from "ava";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, tempDir, type Ran } from "../cli/helpers.js";
import { freePort } from "./redis.js";

const SHORT = `name: short
machine: { type: sim }
nics: { mix: [ { kind: usb-net, count: 2 } ] }
schedule: { cycles: 20, maxInFlight: 2, dwell: 2ms }
`;

function firstLine(r: Ran): string {
  return (r.stdout + r.stderr).split("\n")[0]!;
}

function campaignDir(t: Parameters<typeof tempDir>[0], name = "refused"): { d: string; file: string } {
  const d = tempDir(t);
  writeFileSync(join(d, "short.yaml"), SHORT);
  writeFileSync(join(d, "c.yaml"), `name: ${name}\nstorms: [short.yaml]\nshrink: false\n`);
  return { d, file: join(d, "c.yaml") };
}

test("an output folder holding the campaign already: the refusal is the first line, locally and with --queue", async (t) => {
  const { d, file } = campaignDir(t);
  const out = join(d, "out");
  const first = await run(t, ["campaign", file, "--out", out, "-q"]);
  t.is(first.code, 0, first.stderr);
  const before = readdirSync(out).sort();
  const refusal = `plugstorm campaign: ${out} holds campaign "refused" already: give --resume to go on with it, or another --out`;
  const local = await run(t, ["campaign", file, "--out", out]);
  t.is(local.code, 2, local.stderr);
  t.is(firstLine(local), refusal);
  // Checked before Redis is: a closed port would otherwise be the error.
  const queued = await run(t, ["campaign", file, "--out", out, "--queue", `redis://127.0.0.1:${await freePort()}`]);
  t.is(queued.code, 2, queued.stderr);
  t.is(firstLine(queued), refusal);
  t.deepEqual(readdirSync(out).sort(), before, "refusing changed nothing");
});

test("--resume on a folder holding another campaign: the refusal is the first line", async (t) => {
  const { d, file } = campaignDir(t);
  const out = join(d, "out");
  t.is((await run(t, ["campaign", file, "--out", out, "-q"])).code, 0);
  writeFileSync(file, "name: other\nstorms: [short.yaml]\nshrink: false\n");
  const r = await run(t, ["campaign", file, "--out", out, "--resume"]);
  t.is(r.code, 2, r.stderr);
  t.is(firstLine(r), `plugstorm campaign: ${out} holds campaign "refused", not "other": give another --out`);
});

test("a bad --queue URL, a bad --window, --window or --redis-wait without --queue, --parallelism with it, a bad campaign file: each is the first line, and no output folder is made", async (t) => {
  const { d, file } = campaignDir(t);
  const out = join(d, "out");
  const cases: Array<[string[], RegExp]> = [
    [["--queue", "http://127.0.0.1:1"], /^plugstorm campaign: --queue expects redis:\/\/HOST:PORT or rediss:\/\/HOST:PORT, got "http:\/\/127\.0\.0\.1:1"$/],
    [["--queue", "redis://127.0.0.1:1", "--window", "0"], /^plugstorm campaign: --window expects an integer >= 1, got "0"$/],
    [["--redis-wait", "5"], /^plugstorm campaign: --redis-wait goes with --queue$/],
    [["--window", "5"], /^plugstorm campaign: --window goes with --queue$/],
    // A bad value is refused as such, with --queue or without.
    [["--window", "abc"], /^plugstorm campaign: --window expects an integer >= 1, got "abc"$/],
    [["--redis-wait", "soon"], /^plugstorm campaign: --redis-wait expects an integer >= 1, got "soon"$/],
    [["--queue", "redis://127.0.0.1:1", "--parallelism", "4"], /^plugstorm campaign: --parallelism sets this host's local workers; with --queue, each worker's --concurrency does$/],
  ];
  for (const [args, re] of cases) {
    const r = await run(t, ["campaign", file, "--out", out, ...args]);
    t.is(r.code, 2, args.join(" "));
    t.regex(firstLine(r), re, args.join(" "));
  }
  writeFileSync(join(d, "bad.yaml"), "name: bad\nstorms: []\n");
  const bad = await run(t, ["campaign", join(d, "bad.yaml"), "--out", out]);
  t.is(bad.code, 2);
  t.regex(firstLine(bad), /^plugstorm campaign: the campaign is not valid \(\d+ problems?\); nothing was run:$/);
  t.regex(bad.stderr, /bad\.yaml:\d+:\d+/);
  t.deepEqual(readdirSync(d).sort(), ["bad.yaml", "c.yaml", "short.yaml"]);
});

test("an output folder that cannot be made (--out /proc/...): one line naming it, first, exit 2, within its deadline", async (t) => {
  const { file } = campaignDir(t);
  // Node's own recursive mkdir never returns here, deaf to signals: the run's deadline kills it if the campaign does so.
  const r = await run(t, ["campaign", file, "--out", "/proc/plugstorm-no-such/out", "-q"], { timeoutMs: 20_000 });
  t.is(r.code, 2, r.stderr);
  t.regex(firstLine(r), /^plugstorm campaign: cannot create the output folder \/proc\/plugstorm-no-such\/out \(--out\): /);
});

test("--resume where there is no campaign is refused (nothing to resume), and so is a folder holding other files: first line, exit 2, nothing made", async (t) => {
  const { d, file } = campaignDir(t);
  const none = join(d, "none");
  const missing = await run(t, ["campaign", file, "--out", none, "--resume"]);
  t.is(missing.code, 2, missing.stderr);
  t.is(firstLine(missing), `plugstorm campaign: nothing to resume in ${none}: no such folder; leave out --resume to start the campaign`);
  t.false(existsSync(none));
  const empty = join(d, "empty");
  mkdirSync(empty);
  const nothing = await run(t, ["campaign", file, "--out", empty, "--resume"]);
  t.is(nothing.code, 2, nothing.stderr);
  t.is(firstLine(nothing), `plugstorm campaign: nothing to resume in ${empty}: it holds no campaign (campaign.json); leave out --resume to start the campaign`);
  t.deepEqual(readdirSync(empty), []);
  // A storm's folder, say: the campaign's summary.txt and report.json would replace its own.
  const other = join(d, "other");
  mkdirSync(other);
  writeFileSync(join(other, "summary.txt"), "a storm's summary");
  const taken = await run(t, ["campaign", file, "--out", other]);
  t.is(taken.code, 2, taken.stderr);
  t.is(firstLine(taken), `plugstorm campaign: ${other} is not empty (summary.txt) and holds no campaign: give an empty or new --out`);
  t.deepEqual(readdirSync(other), ["summary.txt"]);
  t.is(readFileSync(join(other, "summary.txt"), "utf8"), "a storm's summary");
});

test("a QEMU guest whose kernel is not on this host: the refusal is the first line, naming the guest and the file; nothing is made", async (t) => {
  const { d } = campaignDir(t);
  const file = join(d, "q.yaml");
  const storm = join(process.cwd(), "scripts", "storms", "qemu-usb-linux.yaml");
  writeFileSync(file, `name: q\nstorms: [${storm}]\nmachines:\n  - name: far\n    machine: { type: qemu, profile: linux-guest, kernel: /no/such/bzImage }\nshrink: false\n`);
  const out = join(d, "out");
  const r = await run(t, ["campaign", file, "--out", out]);
  t.is(r.code, 2, r.stderr);
  // Each job failed with this after the header, the campaign's own line saying it last.
  t.regex(firstLine(r), /^plugstorm campaign: guest "far" \(qemu-usb-linux\): .*\/no\/such\/bzImage does not exist.*nothing was run$/);
  t.false(existsSync(out));
  // No QEMU on this PATH: the same, for the binary.
  writeFileSync(file, `name: q\nstorms: [${join(process.cwd(), "scripts", "storms", "qemu-usb-bare.yaml")}]\nshrink: false\n`);
  const noQemu = await run(t, ["campaign", file, "--out", out], { env: { ...process.env, PATH: "/nonexistent" } });
  t.is(noQemu.code, 2, noQemu.stderr);
  t.regex(firstLine(noQemu), /^plugstorm campaign: guest "as-written" \(qemu-usb-bare\): .*qemu-system-x86_64.*not found.*nothing was run$/);
  t.false(existsSync(out));
});
