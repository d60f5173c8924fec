import test from "ava";
import { runV8Child } from "../helpers/v8-child.js";

// The runner iterates each verdict list the live checker hands it (the
// recorder after every record, the end of a run after finish()). V8 makes
// the list Array.prototype.map returns packed in the builtin but holey in
// optimised code that inlined it, so a list's map changed the moment the
// checker's code was optimised, and the runner's loops, optimised for one,
// deopted (a shrink's runs met it in their fifth round). Every list must be
// packed whatever tier made it: checked in a child node that can ask V8
// (--allow-natives-syntax), with push and finish forced to optimised code.
const checking = new URL("../../src/storm/checking.js", import.meta.url).href;
const storm = new URL("../../src/storm/index.js", import.meta.url).href;

const CHILD = `
const { LiveChecker } = await import(${JSON.stringify(checking)});
const { loadStorm, runStorm, DEFAULT_STORM } = await import(${JSON.stringify(storm)});
const spec = loadStorm({ ...DEFAULT_STORM, machine: { type: "sim", bugs: ["leak-ref"] }, schedule: { ...DEFAULT_STORM.schedule, cycles: 40 } });
const records = [];
await runStorm(spec, { out: null, live: { header() {}, record(r) { records.push(r); } } });
const P = LiveChecker.prototype;
%PrepareFunctionForOptimization(P.push);
%PrepareFunctionForOptimization(P.finish);
const seen = { push: 0, finish: 0, holey: 0, optimised: 0 };
for (let round = 0; round < 4; round++) {
  if (round === 2) { %OptimizeFunctionOnNextCall(P.push); %OptimizeFunctionOnNextCall(P.finish); }
  for (const lean of [true, false]) {
    // Cut short at points through the storm: the deadlines still open there give verdicts at finish.
    for (let cut = 50; cut < records.length; cut += 97) {
      const c = new LiveChecker(spec, lean);
      let t = 0;
      for (let i = 0; i < cut; i++) {
        const vs = c.push(records[i], i);
        t = Number(records[i].tNs ?? t);
        if (vs.length > 0) { seen.push++; if (%HasHoleyElements(vs)) seen.holey++; }
      }
      const end = c.finish(t + 60e9);
      if (end.length > 0) { seen.finish++; if (%HasHoleyElements(end)) seen.holey++; }
    }
  }
  // Bit 4 of the status: TurboFan code.
  if (round >= 2 && (%GetOptimizationStatus(P.push) & 16) && (%GetOptimizationStatus(P.finish) & 16)) seen.optimised++;
}
process.stdout.write(JSON.stringify(seen));
`;

test("the live checker's verdict lists are packed arrays, from optimised code too", (t) => {
  const out = runV8Child(CHILD, import.meta.url);
  const seen = JSON.parse(out) as { push: number; finish: number; holey: number; optimised: number };
  // The storm must give verdicts both while running and at its end, and the
  // check must have run on optimised code, for the count of holey lists to mean anything.
  t.true(seen.push > 0, out);
  t.true(seen.finish > 0, out);
  t.true(seen.optimised > 0, out);
  t.is(seen.holey, 0, out);
});
