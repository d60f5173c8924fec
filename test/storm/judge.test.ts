import test from "ava";
import { getEventListeners } from "node:events";
import { BUG_NAMES } from "../../src/sim/bugs.js";
import { judgeStorm } from "../../src/storm/runner.js";
import { loadStorm, runStorm, shrinkStorm, type StormInput, type StormSpec } from "../../src/storm/index.js";
import { everyStepStorm } from "../helpers/storms.js";

// The shrinker judges its candidates with judgeStorm, which skips what only a
// trace, a report or a person reads: the run itself (its records, stop and
// failed rules) must be runStorm's, for every bug the sim can inject.
const STORM: StormInput = everyStepStorm("judged");

for (const bug of ["none", ...BUG_NAMES]) {
  test(`a judged run is runStorm's run: ${bug}`, async (t) => {
    const base = loadStorm({ ...STORM, machine: { type: "sim", bugs: bug === "none" ? [] : [bug] } });
    let broke = 0;
    for (const stopOnFirstViolation of [false, true]) {
      const spec: StormSpec = { ...base, stopOnFirstViolation };
      const full = await runStorm(spec, { out: null });
      const judged = await judgeStorm(spec);
      t.deepEqual(judged.stop, full.stop);
      t.deepEqual(judged.failedRules, full.failedRules);
      t.is(judged.records, full.records);
      t.deepEqual(judged.executed, full.executed);
      broke += full.failedRules.length;
    }
    // Without a bug the storm is clean; every bug's storm must break something for the check above to mean much.
    if (bug === "none") t.is(broke, 0);
  });
}

test("a shrink's result is the full run of its minimal storm", async (t) => {
  const spec = loadStorm({ ...STORM, machine: { type: "sim", bugs: ["leak-ref"] } });
  const s = await shrinkStorm(spec, { maxRuns: 200 });
  const again = await runStorm(s.spec, { out: null, seed: s.seed });
  t.deepEqual(s.final.failedRules, again.failedRules);
  t.deepEqual(s.final.verdicts.map((v) => v.text), again.verdicts.map((v) => v.text));
  t.true(s.final.verdicts.every((v) => v.text.length > 0 && v.report.rule === v.rule));
  t.is(s.final.records, again.records);
});

// judgeStorm hands on the run's own promise (no async function around it):
// what the async function gave for free must still hold.
test("judged runs take their listener off the caller's signal, each one", async (t) => {
  const spec = loadStorm({ ...STORM, machine: { type: "sim", bugs: ["leak-ref"] } });
  const c = new AbortController();
  for (const stopOnFirstViolation of [false, true]) {
    await judgeStorm({ ...spec, stopOnFirstViolation }, { signal: c.signal });
    t.is(getEventListeners(c.signal, "abort").length, 0);
  }
  // A run the caller stops ends with the caller's reason, and takes its listener away too.
  const running = judgeStorm(spec, { signal: c.signal });
  t.is(getEventListeners(c.signal, "abort").length, 1);
  c.abort();
  t.is((await running).stop.kind, "interrupted");
  t.is(getEventListeners(c.signal, "abort").length, 0);
});

test("a storm whose run cannot be built is a rejected judgement, not a throw", async (t) => {
  const spec = loadStorm({ ...STORM, machine: { type: "sim" } });
  const bad = { ...spec, machine: { type: "sim", bugs: ["no-such-bug"] } } as unknown as StormSpec;
  let judged: Promise<unknown> | undefined;
  t.notThrows(() => {
    judged = judgeStorm(bad);
  });
  await t.throwsAsync(judged!, { message: /unknown sim bug/ });
});
