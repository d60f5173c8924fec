// A trace alone reproduces its run: what the command line changed (bugs, seed,
// stop-on-first) is in its header, so `shrink TRACE` after `storm --bug` (the
// README's order) shrinks the run that happened.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseStorm } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";
import { run, tempDir } from "./helpers.js";

const STORM = `# a comment the trace keeps
name: plain
machine:
  type: sim
nics:
  mix:
    - { kind: usb-net, count: 2 }
schedule:
  cycles: 40
  maxInFlight: 2
  dwell: { uniform: { min: 1ms, max: 5ms } }
  seed: 5
holders:
  - { kind: ifnet, count: 2, probability: 0.8, hold: { uniform: { min: 1ms, max: 10ms } } }
`;

test("storm --bug --seed --stop-on-first: the trace header's storm holds all three", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "plain.yaml");
  writeFileSync(file, STORM);
  const out = join(dir, "out");
  const r = await run(t, ["storm", file, "--bug", "leak-ref", "--seed", "11", "--stop-on-first", "--out", out, "-q"]);
  t.is(r.code, 1, r.stderr);
  const h = parseTrace(readFileSync(join(out, "trace.pstrace"))).header;
  const text = h.scenarioText ?? "";
  t.regex(text, /# a comment the trace keeps/);
  t.regex(text, /^# run as: plugstorm storm .* --seed 11 --bug leak-ref --stop-on-first$/m);
  const spec = parseStorm(text, "header");
  t.deepEqual(spec.machine, { type: "sim", bugs: ["leak-ref"] });
  t.is(spec.schedule.seed, 11);
  t.true(spec.stopOnFirstViolation);
  // Rerunning the storm text from the header alone gives the same verdicts.
  const again = join(dir, "again.yaml");
  writeFileSync(again, text);
  const r2 = await run(t, ["storm", again, "--out", join(dir, "out2"), "--json"]);
  const first = await run(t, ["check", join(out, "trace.pstrace"), "--json"]);
  const j2 = JSON.parse(r2.stdout) as { verdicts: { rule: string; recordIndex: number }[] };
  const j1 = JSON.parse(first.stdout) as { verdicts: { rule: string; recordIndex: number }[] };
  t.true(j1.verdicts.length > 0 && typeof j1.verdicts[0]!.recordIndex === "number");
  t.deepEqual(
    j2.verdicts.map((v) => `${v.rule}@${v.recordIndex}`),
    j1.verdicts.map((v) => `${v.rule}@${v.recordIndex}`),
  );
});

test("without command-line changes the header holds the storm file byte for byte", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "plain.yaml");
  writeFileSync(file, STORM);
  const r = await run(t, ["storm", file, "--out", join(dir, "out"), "-q"]);
  t.is(r.code, 0, r.stderr);
  t.is(parseTrace(readFileSync(join(dir, "out", "trace.pstrace"))).header.scenarioText, STORM);
});

test("shrink after storm --bug leak-ref works from the trace alone (README order)", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "run");
  const storm = await run(t, ["storm", "--bug", "leak-ref", "--out", out, "-q"]);
  t.is(storm.code, 1, storm.stderr);
  const shrunk = join(dir, "shrunk.yaml");
  const s = await run(t, ["shrink", join(out, "trace.pstrace"), "-o", shrunk]);
  t.is(s.code, 1, s.stderr + s.stdout);
  t.regex(s.stdout, /^rule [\w-]+: \d+ steps -> \d+/m);
  const spec = parseStorm(readFileSync(shrunk, "utf8"), shrunk);
  t.deepEqual(spec.machine, { type: "sim", bugs: ["leak-ref"] });
  const again = await run(t, ["storm", shrunk, "--out", join(dir, "again"), "-q"]);
  t.is(again.code, 1, "the shrunk storm still breaks a rule");
});
