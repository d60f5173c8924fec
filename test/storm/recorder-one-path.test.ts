import test from "ava";
import { OPTIMIZED, runV8Child } from "../helpers/v8-child.js";

// A run that stops at its first violation (every judged run of a shrink)
// drains its recorder at each record; a storm that runs to its end drains
// it a batch at a time. Both go through append's one path: a branch that only
// the first took had no feedback in code V8 optimised on the second, so the
// first record of a shrink after storms in the same process (plugstorm storm
// shrinking its failure, a campaign's worker) threw away append and every
// function it was inlined in. Checked in a child node that can ask V8
// (--allow-natives-syntax): with append optimised on batched recorders, a
// recorder with a batch of one must leave it optimised.
const recorder = new URL("../../src/storm/recorder.js", import.meta.url).href;
const checking = new URL("../../src/storm/checking.js", import.meta.url).href;
const traceOut = new URL("../../src/storm/trace-out.js", import.meta.url).href;
const storm = new URL("../../src/storm/index.js", import.meta.url).href;

const CHILD = `
const { Recorder, RECORD_BATCH } = await import(${JSON.stringify(recorder)});
const { LiveChecker } = await import(${JSON.stringify(checking)});
const { NO_TRACE_OUT } = await import(${JSON.stringify(traceOut)});
const { loadStorm } = await import(${JSON.stringify(storm)});
const spec = loadStorm({ machine: { type: "sim" }, schedule: { cycles: 1 } });
const hooks = { verdict() {}, full() {} };
const feed = (batch, n) => {
  const rec = new Recorder(NO_TRACE_OUT, new LiveChecker(spec, true), null, undefined, Infinity, hooks, batch);
  for (let i = 0; i < n; i++) rec.append({ tNs: i, mark: { name: "m", detail: "" } });
  rec.close();
  return rec.records;
};
const append = Recorder.prototype.append;
%PrepareFunctionForOptimization(append);
for (let i = 0; i < 3; i++) feed(RECORD_BATCH, 3 * RECORD_BATCH);
%OptimizeFunctionOnNextCall(append);
feed(RECORD_BATCH, 3 * RECORD_BATCH);
const before = %GetOptimizationStatus(append);
const records = feed(1, 5);
const after = %GetOptimizationStatus(append);
console.log(JSON.stringify({ before, after, records }));
`;

test("a recorder with a batch of one leaves append as batched recorders had it optimised", (t) => {
  const out = runV8Child(CHILD, import.meta.url);
  const { before, after, records } = JSON.parse(out.trim().split("\n").pop()!) as { before: number; after: number; records: number };
  t.is(records, 5);
  t.truthy(before & OPTIMIZED, `append was optimised before (status ${before.toString(2)})`);
  t.truthy(after & OPTIMIZED, `append still optimised after a batch of one (status ${after.toString(2)})`);
});
