// --time-limit and --max-trace-bytes: the units the help lists are taken, and
// a value past a limit is called too large, with the limit.

import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseDurationNs, validateStorm, ScenarioError } from "../../src/storm/index.js";
import { run, tempDir } from "./helpers.js";

const TINY = `name: tiny
machine: { type: sim }
nics:
  mix:
    - { kind: usb-net, count: 2 }
schedule: { cycles: 5, seed: 2 }
`;

const firstLine = (s: string): string => s.split("\n")[0]!;

test("durations take h and d, in storm files as on the command line, up to the storm files' 24 hours", (t) => {
  t.is(parseDurationNs("1h"), 3600e9);
  t.is(parseDurationNs("1.5d"), 1.5 * 86400e9);
  t.is(validateStorm({ machine: { type: "sim" }, schedule: { duration: "2h" } }).schedule.durationNs, 2 * 3600e9);
  const e = t.throws(() => validateStorm({ machine: { type: "sim" }, schedule: { duration: "2d" } }), { instanceOf: ScenarioError });
  t.regex(e?.message ?? "", /schedule\.duration: expected a duration of at most 86400s \(24 hours\)/);
});

test("storm --time-limit takes 2h and 1d; past 24d it is too long, and a value without a unit says which units", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "tiny.yaml");
  writeFileSync(file, TINY);
  for (const limit of ["2h", "1d"]) {
    const r = await run(t, ["storm", file, "--time-limit", limit, "--out", join(dir, limit), "-q"]);
    t.is(r.code, 0, `${limit}: ${r.stderr}`);
  }
  const long = await run(t, ["storm", file, "--time-limit", "30d"]);
  t.is(long.code, 2);
  t.is(firstLine(long.stderr), 'plugstorm storm: --time-limit is too long: at most 24d, got "30d"');
  // The limit is the one said: 35000m is 24.3 days, under the timer's 24.8 but past 24d.
  const past = await run(t, ["storm", file, "--time-limit", "35000m"]);
  t.is(past.code, 2, past.stderr);
  t.is(firstLine(past.stderr), 'plugstorm storm: --time-limit is too long: at most 24d, got "35000m"');
  const bare = await run(t, ["storm", file, "--time-limit", "90"]);
  t.is(bare.code, 2);
  t.is(firstLine(bare.stderr), 'plugstorm storm: --time-limit expects a duration above 0 with a unit (ms, s, m, h or d), such as 30s, 5m or 2h; got "90"');
});

test("storm --max-trace-bytes past 1024T is too large, below 4096 too small; 1024T runs", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "tiny.yaml");
  writeFileSync(file, TINY);
  const big = await run(t, ["storm", file, "--max-trace-bytes", "99999999999999999999G"]);
  t.is(big.code, 2);
  t.is(firstLine(big.stderr), 'plugstorm storm: --max-trace-bytes is too large: at most 1024T, got "99999999999999999999G"');
  const small = await run(t, ["storm", file, "--max-trace-bytes", "4095"]);
  t.is(small.code, 2);
  t.is(firstLine(small.stderr), 'plugstorm storm: --max-trace-bytes is too small: at least 4096 bytes, got "4095"');
  const most = await run(t, ["storm", file, "--max-trace-bytes", "1024T", "--out", join(dir, "most"), "-q"]);
  t.is(most.code, 0, most.stderr);
});
