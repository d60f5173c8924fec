import test from "ava";
import { StepSource, loadStorm, type Step } from "../../src/storm/index.js";
import { everyStepStorm } from "../helpers/storms.js";

// An explicit list's source draws nothing (it makes no generator of its own):
// its steps are the list's, the same for every seed, and a stop still ends
// only new cycles.
test("an explicit list's steps are the same for every seed, and a stop skips only new cycles", (t) => {
  const steps: Step[] = [
    { op: "add", nic: "a", kind: "usb-net" },
    { op: "sleep", ns: 5000 },
    { op: "hold", nic: "a", kind: "ifnet", count: 1, forNs: 1000, holder: "h" },
    { op: "add", nic: "b", kind: "usb-net" },
    { op: "remove", nic: "a" },
    { op: "remove", nic: "b" },
  ];
  const base = loadStorm(everyStepStorm("explicit"));
  const spec = { ...base, schedule: { ...base.schedule, steps, cycles: 2 } };
  for (const seed of [1, 2, 99]) {
    const src = new StepSource(spec, seed);
    t.is(src.totalCycles, 2);
    const out: Step[] = [];
    for (let s = src.next(); s; s = src.next()) out.push(s);
    t.deepEqual(out, steps);
  }
  const src = new StepSource(spec, 1);
  t.is(src.next(), steps[0]!);
  src.stopNewCycles();
  const rest: Step[] = [];
  for (let s = src.next(); s; s = src.next()) rest.push(s);
  // The sleep is dropped once stopped, b is never added, a's steps still run.
  t.deepEqual(rest, [steps[2], steps[4]]);
});
