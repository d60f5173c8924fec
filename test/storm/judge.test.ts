import test from "ava";
import { getEventListeners } from "node:events";
import { BUG_NAMES } from "../../src/sim/bugs.js";
import { judgeStorm } from "../../src/storm/runner.js";
import { loadStorm, runStorm, shrinkStorm, type StormInput, type StormSpec } from "../../src/storm/index.js";
import { FrameMemo, type HelloAckMemo } from "../../src/telemetry/index.js";
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

// A shrink runs many storms one after another in one process, and what a run
// builds from its storm (the checker's deadlines and capability tables, the
// step source) is shared or cached across runs: no run may carry anything
// into the next. Each of a shrink's candidates must judge as it does in a
// fresh order, and as runStorm runs it.
test("each of a shrink's candidates judges as runStorm runs it, in any order", async (t) => {
  const spec = loadStorm({ ...STORM, machine: { type: "sim", bugs: ["leak-ref"] } });
  const ran: { spec: StormSpec; seed: number; failed: boolean }[] = [];
  const s = await shrinkStorm(spec, { maxRuns: 60, onRun: (r) => ran.push(r) });
  t.true(ran.some((r) => r.failed) && ran.some((r) => !r.failed), "the shrink ran failing and passing candidates");
  const inOrder = [];
  for (const r of ran) inOrder.push(await judgeStorm(r.spec, { seed: r.seed }));
  const reversed = [];
  for (const r of [...ran].reverse()) reversed.unshift(await judgeStorm(r.spec, { seed: r.seed }));
  for (let i = 0; i < ran.length; i++) {
    const r = ran[i]!;
    const full = await runStorm(r.spec, { out: null, seed: r.seed });
    t.is(inOrder[i]!.failedRules.includes(s.rule), r.failed, `candidate ${i}`);
    t.deepEqual(inOrder[i]!.failedRules, full.failedRules, `candidate ${i}`);
    t.deepEqual(inOrder[i]!.stop, full.stop, `candidate ${i}`);
    t.is(inOrder[i]!.records, full.records, `candidate ${i}`);
    t.deepEqual(reversed[i], inOrder[i], `candidate ${i}`);
  }
});

test("a run after a violating run judges like one before it", async (t) => {
  const leaky = loadStorm({ ...STORM, machine: { type: "sim", bugs: ["leak-ref"] } });
  // The same deadlines, holders and model: only the machine's bug differs.
  const clean: StormSpec = { ...leaky, machine: { type: "sim", bugs: [] } };
  const before = await judgeStorm(clean);
  const bad = await judgeStorm(leaky);
  t.true(bad.failedRules.length > 0);
  const after = await judgeStorm(clean);
  t.deepEqual(after, before);
  t.deepEqual(after.failedRules, []);
});

test("judged runs sharing a FrameMemo (a shrink's) judge as runs without one, and do share through it", async (t) => {
  const memo = new FrameMemo();
  const specs = ["leak-ref", "lost-detach", ...BUG_NAMES.slice(0, 3)].map((bug) => loadStorm({ ...STORM, machine: { type: "sim", bugs: [bug] } }));
  let firstAck: HelloAckMemo | null = null;
  // Each storm twice, with the memo filled by the storms before it: the same seed's opening frames, the HelloAck.
  for (const round of [0, 1]) {
    for (const [i, spec] of specs.entries()) {
      const plain = await judgeStorm(spec);
      const shared = await judgeStorm(spec, { frameMemo: memo });
      t.deepEqual(shared, plain, `storm ${i}, round ${round}`);
      firstAck ??= memo.helloAck;
      t.not(firstAck, null, "the run answered its agent's Hello through the memo");
      t.is(memo.helloAck, firstAck, "every run's HelloAck is the first one's");
    }
  }
});
