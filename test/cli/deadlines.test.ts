// One set of default deadlines under one naming: what `model rules` (and so
// docs/rules.md) lists is what a storm without `deadlines:` runs with, what its
// trace header records, what `check` uses, and what the storm format's table says.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseTrace } from "../../src/trace/index.js";
import { ROOT, run, tempDir } from "./helpers.js";

function listedDefaults(rules: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of rules.matchAll(/^\| `(\w+)` \| (\d+(?:\.\d+)?) s \|/gm)) out[m[1]!] = Number(m[2]) * 1000;
  return out;
}

test("model rules lists the deadlines a storm runs with, under the storm files' names", async (t) => {
  const rules = await run(t, ["model", "rules"]);
  t.is(rules.code, 0);
  const listed = listedDefaults(rules.stdout);
  t.deepEqual(Object.keys(listed), ["attach", "detach", "removal", "unload", "guest"]);
  t.notRegex(rules.stdout, /attachNs|finaliseNs|telemetryNs/, "one naming");

  const dir = tempDir(t);
  const file = join(dir, "plain.yaml");
  writeFileSync(file, "name: plain\nmachine: { type: sim }\nschedule: { cycles: 3 }\n");
  const r = await run(t, ["storm", file, "--out", join(dir, "out"), "-q"]);
  t.is(r.code, 0, r.stderr);
  const header = parseTrace(readFileSync(join(dir, "out", "trace.pstrace"))).header;
  t.deepEqual(JSON.parse(header.deadlines ?? "{}"), listed, "the run used the listed defaults");

  // The storm format's table says the same values.
  const readme = readFileSync(join(ROOT, "scripts/storms/README.md"), "utf8");
  const row = /^\| `deadlines` \|.*\| ([^|]+) \|$/m.exec(readme);
  t.truthy(row);
  const values = [...row![1]!.matchAll(/(\d+)s/g)].slice(0, 5).map((m) => Number(m[1]) * 1000);
  t.deepEqual(values, Object.values(listed));
});

test("check --help names the phases and says where the defaults come from", async (t) => {
  const h = await run(t, ["check", "--help"]);
  t.regex(h.stdout, /PHASE: attach, detach, removal, unload, guest/);
  t.regex(h.stdout, /from the trace header/);
  t.regex(h.stdout, /docs\/rules\.md/);
  const dir = tempDir(t);
  const file = join(dir, "plain.yaml");
  writeFileSync(file, "name: plain\nmachine: { type: sim }\nschedule: { cycles: 2 }\n");
  t.is((await run(t, ["storm", file, "--out", join(dir, "out"), "-q"])).code, 0);
  const bad = await run(t, ["check", join(dir, "out", "trace.pstrace"), "--deadline", "detachNs=5"]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /PHASE one of attach, detach, removal, unload, guest/);
});

test("check --deadline: the user's words in every refusal; units; at most 24 hours; a phase once", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "plain.yaml");
  writeFileSync(file, "name: plain\nmachine: { type: sim }\nschedule: { cycles: 2 }\n");
  t.is((await run(t, ["storm", file, "--out", join(dir, "out"), "-q"])).code, 0);
  const trace = join(dir, "out", "trace.pstrace");
  const refused = async (...deadlines: string[]): Promise<string> => {
    const r = await run(t, ["check", trace, ...deadlines.flatMap((d) => ["--deadline", d])]);
    t.is(r.code, 2, r.stderr);
    const [first, second] = r.stderr.split("\n");
    t.is(second, "(see: plugstorm check --help)");
    return first!;
  };
  t.is(await refused("detach=0"), "plugstorm check: --deadline detach=0: expects a duration above 0 (milliseconds, or a number with a unit: 500ms, 2s, 1m)");
  t.is(await refused("detach=99999999999999999999"), "plugstorm check: --deadline detach=99999999999999999999: too long: at most 86400000 ms (24 hours)");
  t.is(await refused("detach=25h"), "plugstorm check: --deadline detach=25h: too long: at most 86400000 ms (24 hours)");
  t.is(await refused("detach=2s", "attach=1s", "detach=3s"), "plugstorm check: --deadline detach=3s: the detach deadline is given twice (detach=2s before it); give each phase once");
  // A unit is taken as in a storm file: 1us breaks the attach deadline of every cycle, 24h none.
  t.is((await run(t, ["check", trace, "-q", "--deadline", "attach=1us"])).code, 1);
  t.is((await run(t, ["check", trace, "-q", "--deadline", "attach=24h", "--deadline", "detach=86400000"])).code, 0);
});
