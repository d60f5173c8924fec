// The recorder drains its records a batch at a time on sim runs that no
// verdict can change (src/storm/recorder.ts): the trace, the verdicts, their
// places and the trace bound's stop must be what a batch of one (each record
// through every stage as it comes) gives.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { plugstorm } from "../../src/gen/plugstorm.js";
import { DEFAULT_STORM, loadStorm, runStorm, type StormSpec } from "../../src/storm/index.js";
import { LiveChecker } from "../../src/storm/checking.js";
import { BOUND_MARGIN_BYTES, RECORD_BATCH, Recorder } from "../../src/storm/recorder.js";
import type { TraceOut } from "../../src/storm/trace-out.js";
import { parseTrace } from "../../src/trace/index.js";

type IRecord = plugstorm.trace.v1.IRecord;

/** A TraceOut that keeps what it is given, and counts bytesEach bytes a record. */
function capture(bytesEach = 0): TraceOut & { got: IRecord[] } {
  const got: IRecord[] = [];
  return {
    got,
    writes: true,
    append(r: IRecord) {
      got.push(r);
    },
    get size() {
      return got.length * bytesEach;
    },
    error: undefined,
    async close() {},
  };
}

function buggy(): StormSpec {
  return loadStorm({ ...DEFAULT_STORM, machine: { type: "sim", bugs: ["leak-ref", "free-before-drain", "sleep-in-interrupt"] }, schedule: { ...DEFAULT_STORM.schedule, cycles: 120 } });
}

/** Where the verdict records are in a list of records, with their rules. */
function verdictPlaces(recs: readonly IRecord[]): string[] {
  const out: string[] = [];
  recs.forEach((r, i) => {
    if (r.verdict) out.push(`${i}:${r.verdict.rule}`);
  });
  return out;
}

test("a batched storm places every verdict record where a batch of one places it", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-batch-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const spec = buggy();
  const live: IRecord[] = [];
  const indexes: number[] = [];
  const result = await runStorm(spec, {
    out: dir,
    reports: false,
    live: {
      header() {},
      record(r, i) {
        live.push(r);
        indexes.push(i);
      },
    },
  });
  t.true(result.verdicts.length >= 5, `verdicts: ${result.verdicts.length}`);
  t.deepEqual(indexes, live.map((_, i) => i));
  const inTrace = parseTrace(readFileSync(join(dir, "trace.pstrace"))).records;
  t.is(inTrace.length, live.length);
  t.deepEqual(verdictPlaces(inTrace), verdictPlaces(live));

  // The run's records but its verdicts, again through recorders of a batch of
  // one, of seven and of a full batch, with the run's end (its last record,
  // the storm-end mark, is at the machine's end time).
  const inputs = live.filter((r) => !r.verdict);
  const endNs = Number(inputs[inputs.length - 1]!.tNs ?? 0);
  for (const batch of [1, 7, RECORD_BATCH]) {
    const trace = capture();
    const checker = new LiveChecker(spec);
    const got: number[] = [];
    const rec = new Recorder(trace, checker, null, { header() {}, record: (_, i) => void got.push(i) }, Infinity, { verdict() {}, full() {} }, batch);
    for (const r of inputs) rec.append(r);
    rec.drain();
    for (const v of checker.finish(endNs)) rec.verdict(v, endNs);
    rec.close();
    t.deepEqual(verdictPlaces(trace.got), verdictPlaces(live), `batch ${batch}`);
    t.is(trace.got.length, live.length);
    t.is(rec.records, live.length);
    t.deepEqual(got, live.map((_, i) => i));
    t.deepEqual(rec.verdicts.map((v) => v.rule), result.verdicts.map((v) => v.rule), `batch ${batch}`);
  }
});

test("the trace bound stops a batched run at the record that reaches it, as a batch of one does", (t) => {
  const spec = loadStorm({ machine: { type: "sim" }, schedule: { cycles: 1 } });
  const bytesEach = 1000;
  // Batches at first, then within the margin each record as it comes.
  const max = BOUND_MARGIN_BYTES + 250_500;
  const firedAt: number[] = [];
  for (const batch of [1, RECORD_BATCH]) {
    const trace = capture(bytesEach);
    let appended = 0;
    let fired = -1;
    const rec = new Recorder(trace, new LiveChecker(spec), null, undefined, max, { verdict() {}, full: () => void (fired = appended) }, batch);
    for (; appended < 6000; ) {
      appended++;
      rec.append({ tNs: appended, mark: { name: "m", detail: "" } });
    }
    rec.close();
    t.is(trace.got.length, 6000);
    firedAt.push(fired);
  }
  t.is(firedAt[0], Math.ceil(max / bytesEach));
  t.is(firedAt[1], firedAt[0]);
});

test("records queued in a batch reach the trace without more records or reads, within milliseconds", async (t) => {
  const spec = loadStorm({ machine: { type: "sim" }, schedule: { cycles: 1 } });
  let reached!: () => void;
  const done = new Promise<void>((r) => (reached = r));
  const trace = capture();
  const out: TraceOut = { ...trace, writes: true, size: 0, append: (r) => { trace.append(r); reached(); } };
  const rec = new Recorder(out, new LiveChecker(spec), null, undefined, Infinity, { verdict() {}, full() {} }, RECORD_BATCH);
  rec.append({ tNs: 1, mark: { name: "m", detail: "" } });
  t.is(trace.got.length, 0);
  const t0 = performance.now();
  const timeout = setTimeout(() => reached(), 5000);
  await done;
  clearTimeout(timeout);
  t.is(trace.got.length, 1);
  t.true(performance.now() - t0 < 1000);
  rec.close();
});
