// One seed range, MAX_SEED, for --seed, storm files and campaign files: a
// seed the command line takes must come back through the shrunk storm and
// the trace it wrote.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseCampaign } from "../../src/campaign/index.js";
import { MAX_SEED, Rng, ScenarioError, runStorm } from "../../src/storm/index.js";
import { run, tempDir } from "./helpers.js";

const RANGE = `an integer from 0 to ${MAX_SEED}`;

test("the generator takes seeds 0..MAX_SEED and refuses any other, naming the seed and the range", (t) => {
  t.is(MAX_SEED, 4294967295);
  // Both ends give streams of their own (a seed past 2^32 once folded onto 0x27d4eb2d's).
  const ends = [new Rng(0), new Rng(MAX_SEED), new Rng(0x27d4eb2d)].map((r) => r.u32());
  t.is(new Set(ends).size, 3);
  for (const bad of [MAX_SEED + 1, 2 ** 53, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    const e = t.throws(() => new Rng(bad), { instanceOf: RangeError })!;
    t.is(e.message, `Rng seed: expected ${RANGE}; got ${bad}`);
  }
});

test("--seed past MAX_SEED is refused by storm and shrink, first line naming the flag and the range, exit 2", async (t) => {
  const dir = tempDir(t);
  for (const cmd of ["storm", "shrink"]) {
    const r = await run(t, [cmd, "scripts/storms/usb-yank.yaml", "--seed", String(MAX_SEED + 1), "--out", join(dir, cmd)]);
    t.is(r.code, 2, r.stderr);
    t.is(r.stderr.split("\n")[0], `plugstorm ${cmd}: --seed expects ${RANGE}, got "${MAX_SEED + 1}"`);
  }
  const file = join(dir, "s.yaml");
  writeFileSync(file, readFileSync("scripts/storms/usb-yank.yaml", "utf8").replace("seed: 7", `seed: ${MAX_SEED + 1}`));
  const f = await run(t, ["storm", file]);
  t.is(f.code, 2);
  t.true(f.stderr.includes(`schedule.seed: expected ${RANGE}; got ${MAX_SEED + 1}`), f.stderr);
});

test("--seed MAX_SEED runs, and its shrunk storm and its trace run and shrink again", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "run");
  const r = await run(t, ["storm", "scripts/storms/usb-yank.yaml", "--bug", "leak-ref", "--seed", String(MAX_SEED), "--shrink", "--out", out, "-q"]);
  t.is(r.code, 1, r.stderr);
  const shrunk = join(out, "shrunk.yaml");
  t.regex(readFileSync(shrunk, "utf8"), new RegExp(`\\n  seed: ${MAX_SEED}\\n`));
  const again = await run(t, ["storm", shrunk, "--out", join(dir, "again"), "-q"]);
  t.is(again.code, 1, again.stderr);
  const fromTrace = await run(t, ["shrink", join(out, "trace.pstrace"), "-o", join(dir, "from-trace.yaml"), "-q"]);
  t.is(fromTrace.code, 1, fromTrace.stderr);
  // --quiet: only the file written.
  t.is(fromTrace.stdout, `${join(dir, "from-trace.yaml")}\n`);
  t.regex(readFileSync(join(dir, "from-trace.yaml"), "utf8"), new RegExp(`\\n  seed: ${MAX_SEED}\\n`));
});

test("campaign seeds stop at MAX_SEED, also where { from, count } runs past it", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "tiny.yaml"), "name: tiny\nmachine: { type: sim }\nnics:\n  mix:\n    - { kind: usb-net, count: 2 }\nschedule: { cycles: 10 }\n");
  const refused = async (seeds: string): Promise<string> => {
    const e = await t.throwsAsync(parseCampaign(`storms: [tiny.yaml]\nseeds: ${seeds}\n`, "c.yaml", dir), { instanceOf: ScenarioError });
    return e?.message ?? "";
  };
  t.regex(await refused(String(MAX_SEED + 1)), new RegExp(`seeds: expected ${RANGE}; got ${MAX_SEED + 1}`));
  t.regex(await refused(`"${MAX_SEED}..${MAX_SEED + 1}"`), new RegExp(`B at most ${MAX_SEED}`));
  t.regex(await refused(`{ from: ${MAX_SEED}, count: 2 }`), new RegExp(`expected seeds up to ${MAX_SEED}: from ${MAX_SEED} with count 2 ends at ${MAX_SEED + 1}`));
  const last = await parseCampaign(`storms: [tiny.yaml]\nseeds: { from: ${MAX_SEED - 1}, count: 2 }\n`, "c.yaml", dir);
  t.deepEqual(last.jobs.map((j) => j.seed), [MAX_SEED - 1, MAX_SEED]);
});

test("runStorm refuses a seed past MAX_SEED from library callers too", async (t) => {
  const storm = { name: "tiny", machine: { type: "sim" as const }, schedule: { cycles: 5 } };
  await t.throwsAsync(runStorm(storm, { out: null, seed: MAX_SEED + 1 }), { instanceOf: RangeError, message: `seed: expected ${RANGE}; got ${MAX_SEED + 1}` });
  t.is((await runStorm(storm, { out: null, seed: MAX_SEED })).seed, MAX_SEED);
});
