// Live views a person can watch: `storm --serve` stays up after the run (the
// storm may end before anyone opens the page), and `serve TRACE` replays a long
// trace in about a minute unless told a speed.

import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, start, tempDir } from "./helpers.js";

const SHORT = `name: short
machine: { type: sim }
nics: { mix: [{ kind: usb-net, count: 1 }] }
schedule: { cycles: 5, seed: 2 }
`;

// Ten minutes of virtual time between one add and its remove: instant on the sim.
const LONG_SPAN = `name: long-span
machine: { type: sim }
schedule:
  seed: 1
  steps:
    - add: { nic: n1, kind: usb-net }
    - sleep: 10m
    - remove: n1
`;

test("storm --serve keeps the live view up after the run until Ctrl-C, then exits with the run's status", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "short.yaml");
  writeFileSync(file, SHORT);
  const p = start(t, ["storm", file, "--out", join(dir, "out"), "--serve", "127.0.0.1:0"]);
  const url = (await p.waitFor(/live view: (\S+)/, 30_000)).replace(/^live view: /, "");
  await p.waitFor(/live view still at \S+ \(Ctrl-C to exit\)/, 30_000);
  t.is(p.child.exitCode, null, "still serving after the run");
  const page = await fetch(url);
  t.is(page.status, 200);
  await page.text();
  p.child.kill("SIGINT");
  const r = await p.done;
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /output: /);
});

test("storm --serve --serve-close ends with the run", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "short.yaml");
  writeFileSync(file, SHORT);
  const r = await run(t, ["storm", file, "--out", join(dir, "out"), "--serve", "127.0.0.1:0", "--serve-close"], { timeoutMs: 60_000 });
  t.is(r.code, 0, r.stderr);
  t.notRegex(r.stderr, /still at/);
});

test("serve TRACE replays a ten-minute trace in about a minute by default, and says so", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "long.yaml");
  writeFileSync(file, LONG_SPAN);
  const out = join(dir, "out");
  t.is((await run(t, ["storm", file, "--out", out, "-q"])).code, 0);
  const p = start(t, ["serve", join(out, "trace.pstrace"), "--listen", "127.0.0.1:0"]);
  // Durations as the project writes them (src/model/duration.ts): "10 min 2 s", "58.3 s", "1 min".
  const line = await p.waitFor(/: \d+ min(?: \d+ s)? of trace time at \d+x: about [\d.]+ (?:s|min)/, 30_000);
  const [, speed, n, unit] = /at (\d+)x: about ([\d.]+) (s|min)/.exec(line)!;
  const secs = Number(n) * (unit === "min" ? 60 : 1);
  t.true(Number(speed) >= 10, line);
  t.true(secs <= 60 && secs >= 30, line);
  p.child.kill("SIGINT");
  t.is((await p.done).code, 0);
  const help = await run(t, ["serve", "--help"]);
  t.regex(help.stdout, /Default:\s+the whole trace in about a minute/);
});
