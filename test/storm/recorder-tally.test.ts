// A run whose records only the checker reads (a judged run: the shrinker's)
// counts the records the checker takes no event from in their place, without
// making them (Recorder.tally): its records, verdicts and their indexes must
// be what appending every record gives.
import test from "ava";
import type { plugstorm } from "../../src/gen/plugstorm.js";
import { recordToEvent } from "../../src/check/adapter.js";
import { DEFAULT_STORM, loadStorm, runStorm, type StormSpec } from "../../src/storm/index.js";
import { LiveChecker, type StormVerdict } from "../../src/storm/checking.js";
import { RECORD_BATCH, Recorder } from "../../src/storm/recorder.js";
import { NO_TRACE_OUT, type TraceOut } from "../../src/storm/trace-out.js";
import { TimelineCollector } from "../../src/report/index.js";

type IRecord = plugstorm.trace.v1.IRecord;

/** The kinds of record the runner tallies: marks, guest commands, clock samples, QMP commands and replies. */
const TALLIED = ["mark", "guestCommand", "clock", "qmpCommand", "qmpReply"] as const;
const talliedKind = (r: IRecord): string | undefined => TALLIED.find((k) => r[k] != null);

function buggy(): StormSpec {
  return loadStorm({ ...DEFAULT_STORM, machine: { type: "sim", bugs: ["leak-ref", "free-before-drain", "sleep-in-interrupt"] }, schedule: { ...DEFAULT_STORM.schedule, cycles: 60 } });
}

/** A run's records as the live view gets them. */
async function recordsOf(spec: StormSpec): Promise<IRecord[]> {
  const live: IRecord[] = [];
  await runStorm(spec, { out: null, live: { header() {}, record: (r) => void live.push(r) } });
  return live;
}

const NO_HOOKS = { verdict() {}, full() {} };
const placed = (vs: readonly StormVerdict[]): string[] => vs.map((v) => `${v.recordIndex}:${v.rule}:${v.tNs}:${v.message}`);

test("the checker takes no event from a record the runner tallies", async (t) => {
  const records = await recordsOf(buggy());
  const seen = new Set<string>();
  for (const r of records) {
    const kind = talliedKind(r);
    if (kind === undefined) continue;
    seen.add(kind);
    t.is(recordToEvent(r, 0), null, kind);
    // The checker's one read of a record it maps to no event: console output.
    t.is(r.machine, undefined);
  }
  t.deepEqual([...seen].sort(), [...TALLIED].sort());
});

test("records tallied in their place give the verdicts and indexes of records appended", async (t) => {
  const spec = buggy();
  const inputs = (await recordsOf(spec)).filter((r) => !r.verdict);
  const endNs = Number(inputs[inputs.length - 1]!.tNs ?? 0);
  const run = (tally: boolean): { verdicts: string[]; records: number; tallied: number } => {
    const checker = new LiveChecker(spec, true);
    const rec = new Recorder(NO_TRACE_OUT, checker, null, undefined, Infinity, NO_HOOKS, 1);
    let tallied = 0;
    for (const r of inputs) {
      if (tally && talliedKind(r) !== undefined && rec.tally()) tallied++;
      else rec.append(r);
    }
    for (const v of checker.finish(endNs)) rec.verdict(v, endNs);
    rec.close();
    return { verdicts: placed(rec.verdicts), records: rec.records, tallied };
  };
  const appended = run(false);
  const tallied = run(true);
  t.true(appended.verdicts.length >= 3, `verdicts: ${appended.verdicts.length}`);
  t.true(tallied.tallied > inputs.length / 10, `tallied ${tallied.tallied} of ${inputs.length}`);
  t.deepEqual(tallied.verdicts, appended.verdicts);
  t.is(tallied.records, appended.records);
});

test("a record is tallied only when the checker alone reads records and none waits before it", (t) => {
  const spec = loadStorm({ machine: { type: "sim" }, schedule: { cycles: 1 } });
  const writing: TraceOut = { writes: true, size: 0, error: undefined, append() {}, async close() {} };
  const mark = (tNs: number): IRecord => ({ tNs, mark: { name: "m", detail: "" } });
  // Something else reads every record: each must be made.
  const readers = [
    new Recorder(writing, new LiveChecker(spec), null, undefined, Infinity, NO_HOOKS, 1),
    new Recorder(NO_TRACE_OUT, new LiveChecker(spec), null, { header() {}, record() {} }, Infinity, NO_HOOKS, 1),
    new Recorder(NO_TRACE_OUT, new LiveChecker(spec), new TimelineCollector(), undefined, Infinity, NO_HOOKS, 1),
  ];
  for (const rec of readers) {
    t.false(rec.tally());
    rec.mark(1, "m");
    t.is(rec.records, 1);
    rec.close();
  }
  // The checker alone: counted in its place, after the records before it.
  const alone = new Recorder(NO_TRACE_OUT, new LiveChecker(spec), null, undefined, Infinity, NO_HOOKS, 1);
  alone.append(mark(1));
  t.true(alone.tally());
  alone.mark(3, "m");
  t.is(alone.records, 3);
  alone.close();
  // A record queued in a batch waits before it: not tallied until the queue is through.
  const batched = new Recorder(NO_TRACE_OUT, new LiveChecker(spec), null, undefined, Infinity, NO_HOOKS, RECORD_BATCH);
  batched.append(mark(1));
  t.false(batched.tally());
  batched.drain();
  t.true(batched.tally());
  t.is(batched.records, 2);
  batched.close();
});
