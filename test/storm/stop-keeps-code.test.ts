import test from "ava";
import { OPTIMIZED, runV8Child } from "../helpers/v8-child.js";

// V8 treats a field that no object of its class has rewritten since its
// construction as a constant, and code optimised on it depends on that. The
// step source's stop flag was written only at a stop, so the first stop in a
// process (a shrink's first run, after storms that ran to their end) threw
// away next() and the step loop it is inlined in. Checked in a child node that
// can ask V8 (--allow-natives-syntax): with next() optimised on sources that
// never stopped, stopping a new source must leave it optimised.
const schedule = new URL("../../src/storm/schedule.js", import.meta.url).href;
const storm = new URL("../../src/storm/index.js", import.meta.url).href;

const CHILD = `
const { StepSource } = await import(${JSON.stringify(schedule)});
const { validateStorm, DEFAULT_STORM, expandSteps } = await import(${JSON.stringify(storm)});
const generated = validateStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule, cycles: 30 } });
const explicit = { ...generated, schedule: { ...generated.schedule, steps: expandSteps(generated) } };
const next = StepSource.prototype.next;
const drain = (spec) => { const s = new StepSource(spec); let n = 0; while (s.next() !== null) n++; return n; };
%PrepareFunctionForOptimization(next);
for (let i = 0; i < 3; i++) { drain(generated); drain(explicit); }
%OptimizeFunctionOnNextCall(next);
drain(generated);
drain(explicit);
const before = %GetOptimizationStatus(next);
new StepSource(explicit).stopNewCycles();
const after = %GetOptimizationStatus(next);
console.log(JSON.stringify({ before, after }));
`;

test("the first stop of a step source leaves next() optimised", (t) => {
  const out = runV8Child(CHILD, import.meta.url);
  const { before, after } = JSON.parse(out.trim().split("\n").pop()!) as { before: number; after: number };
  t.truthy(before & OPTIMIZED, `next() was optimised before the stop (status ${before.toString(2)})`);
  t.truthy(after & OPTIMIZED, `next() still optimised after the stop (status ${after.toString(2)})`);
});
