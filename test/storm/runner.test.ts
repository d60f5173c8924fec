import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTrace } from "../../src/trace/index.js";
import { checkRecords } from "../../src/check/index.js";
import { loadStorm, parseStorm, runStorm, shrinkStorm, type StormInput, type StormSpec } from "../../src/storm/index.js";

const STORM: StormInput = {
  name: "det",
  machine: { type: "sim" },
  nics: { mix: [{ kind: "usb-net", count: 2 }, { kind: "pcmcia-ne2000", count: 1 }] },
  schedule: { cycles: 30, maxInFlight: 3, dwell: { uniform: { min: "1ms", max: "6ms" } }, seed: 9 },
  holders: [{ kind: "ifnet", count: 2, probability: 0.5, hold: { exponential: { mean: "3ms" } } }],
  traffic: { probability: 0.3 },
  sick: { probability: 0.2 },
  unload: { probability: 0.1 },
  detach: { probability: 0.1 },
};

function temp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), "plugstorm-storm-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test("same seed on the sim machine gives a byte-identical trace; another seed does not", async (t) => {
  const dir = temp(t);
  const spec = loadStorm(STORM);
  const a = await runStorm(spec, { out: join(dir, "a"), reports: false });
  const b = await runStorm(spec, { out: join(dir, "b"), reports: false });
  const c = await runStorm(spec, { out: join(dir, "c"), reports: false, seed: 10 });
  const ta = readFileSync(a.traceFile!);
  t.true(ta.length > 1000);
  t.true(ta.equals(readFileSync(b.traceFile!)), "seed 9 twice: same bytes");
  t.false(ta.equals(readFileSync(c.traceFile!)), "seed 10 differs");
  t.is(parseTrace(ta).header.wallClockStartMs, 0);
  t.is(a.cyclesDone, 30);
  t.is(a.status, "clean");
});

test("live verdicts are recorded in the trace and an offline check finds the same ones", async (t) => {
  const dir = temp(t);
  const spec = loadStorm({ ...STORM, machine: { type: "sim", bugs: ["free-before-drain"] } });
  const r = await runStorm(spec, { out: dir, reports: false });
  t.is(r.status, "violations");
  t.is(r.exitCode, 1);
  const trace = parseTrace(readFileSync(r.traceFile!));
  const recorded = trace.records.filter((x) => x.verdict).map((x) => `${x.verdict!.rule}@${x.verdict!.recordIndex}`);
  t.deepEqual(recorded.sort(), r.verdicts.map((v) => `${v.rule}@${v.recordIndex}`).sort());
  const offline = checkRecords(trace.records, { profile: "netbsd", deadlines: {
    attachNs: spec.deadlines.attach * 1e6, detachNs: spec.deadlines.detach * 1e6, finaliseNs: spec.deadlines.removal * 1e6,
    unloadNs: spec.deadlines.unload * 1e6, telemetryNs: spec.deadlines.guest * 1e6 }, endTNs: r.machineEndNs });
  t.deepEqual(offline.verdicts.map((v) => `${v.rule}@${v.recordIndex}`).sort(), recorded.sort());
});

test("stopOnFirstViolation stops the run at the first failing verdict", async (t) => {
  const spec = loadStorm({ ...STORM, machine: { type: "sim", bugs: ["leak-ref"] }, schedule: { ...STORM.schedule, cycles: 500 }, stopOnFirstViolation: true });
  const r = await runStorm(spec, { out: null });
  t.is(r.status, "violations");
  t.is(r.abortReason, "violation");
  t.true(r.cyclesDone < 500);
});

test("an abort signal ends the run cleanly with a complete trace", async (t) => {
  const dir = temp(t);
  const ac = new AbortController();
  const spec = loadStorm({ ...STORM, schedule: { ...STORM.schedule, cycles: 1_000_000 } });
  const r = await runStorm(spec, {
    out: dir,
    signal: ac.signal,
    onProgress: (p) => {
      if (p.cyclesDone >= 20) ac.abort();
    },
  });
  t.is(r.status, "aborted");
  t.is(r.abortReason, "interrupted");
  const trace = parseTrace(readFileSync(r.traceFile!));
  t.is(trace.status.tail, "clean");
  t.is(trace.records.at(-1)!.mark?.name, "storm-end");
  t.true(r.reportFiles.some((f) => f.endsWith("report.json")));
});

test("the shrinker judges a candidate met again by its first run: it counts, but no storm runs twice", async (t) => {
  const spec = loadStorm({ ...STORM, machine: { type: "sim", bugs: ["leak-ref"] }, schedule: { ...STORM.schedule, cycles: 40 } });
  const ran: Array<{ spec: StormSpec; seed: number; failed: boolean; final?: boolean }> = [];
  let judged = 0;
  const s = await shrinkStorm(spec, { maxRuns: 400, onRun: (r) => ran.push(r), onProgress: (p) => (judged = p.runs) });
  t.is(judged, s.runs);
  // The last entry is the minimal storm, run once more in full for the result.
  const last = ran.at(-1)!;
  t.true(last.final);
  t.true(last.failed);
  t.deepEqual(last.spec.schedule.steps, s.steps);
  t.is(ran.filter((r) => r.final).length, 1);
  const judgedRuns = ran.slice(0, -1);
  t.true(judgedRuns.length < s.runs, `${judgedRuns.length} storms run for ${s.runs} candidates judged`);
  // The first entry is the storm as given; every candidate after it was run once.
  const lists = judgedRuns.slice(1).map((r) => JSON.stringify(r.spec.schedule.steps));
  t.is(new Set(lists).size, lists.length);
  // What the memo relies on: a candidate run again fares as it did.
  for (const r of ran.slice(1)) {
    const again = await runStorm(r.spec, { out: null, seed: r.seed });
    t.is(again.failedRules.includes(s.rule), r.failed);
  }
});

test("the shrinker finds a smaller explicit storm that breaks the same rule", async (t) => {
  const spec = loadStorm({ ...STORM, machine: { type: "sim", bugs: ["leak-ref"] }, schedule: { ...STORM.schedule, cycles: 40 } });
  const s = await shrinkStorm(spec, { maxRuns: 400 });
  t.true(s.steps.length < s.originalSteps, `${s.originalSteps} -> ${s.steps.length}`);
  t.truthy(s.spec.schedule.steps);
  const again = await runStorm(s.spec, { out: null });
  t.true(again.failedRules.includes(s.rule));
  t.regex(s.yaml, /steps:/);
  // The spec is validated from the input the YAML was written from: it is the YAML's storm.
  t.deepEqual(s.spec, parseStorm(s.yaml, "<shrunk storm>"));
  // It is validated once, when first read, and a copy of the result carries it (and its JSON does).
  t.is(s.spec, s.spec);
  t.is({ ...s }.spec, s.spec);
  t.deepEqual(JSON.parse(JSON.stringify({ ...s, final: null })).spec, JSON.parse(JSON.stringify(s.spec)));
  // The result's summary is made when first read, and is there to read.
  t.truthy((again.summary as { rules?: unknown[] } | null)?.rules?.length);
  t.deepEqual(JSON.parse(JSON.stringify(again)).summary, JSON.parse(JSON.stringify(again.summary)));
});
