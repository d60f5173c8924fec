// One AbortSignal spans the hundreds of runs a shrink makes: each run must
// remove its listener, or Node warns (MaxListenersExceededWarning) and leaks.

import test from "ava";
import { getEventListeners } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runStorm, shrinkStorm, validateStorm } from "../../src/storm/index.js";
import { run, tempDir } from "./helpers.js";

const LEAKY = `name: leaky
machine:
  type: sim
  bugs: [leak-ref]
nics:
  mix:
    - { kind: usb-net, count: 4 }
schedule:
  cycles: 60
  maxInFlight: 3
  dwell: { uniform: { min: 1ms, max: 8ms } }
  seed: 7
holders:
  - { kind: ifnet, count: 2, probability: 0.5, hold: { exponential: { mean: 4ms, max: 30ms } } }
`;

test("runStorm and shrinkStorm leave no listener on the caller's signal", async (t) => {
  const ac = new AbortController();
  const spec = validateStorm({ machine: { type: "sim", bugs: ["leak-ref"] }, nics: { mix: [{ kind: "usb-net", count: 2 }] }, schedule: { cycles: 10, seed: 3 }, holders: [{ kind: "ifnet", count: 1, probability: 1 }] });
  await runStorm(spec, { out: null, signal: ac.signal });
  t.is(getEventListeners(ac.signal, "abort").length, 0);
  const r = await shrinkStorm(spec, { signal: ac.signal });
  t.true(r.runs > 10, "enough runs that leaked listeners would pass Node's limit of 10");
  t.is(getEventListeners(ac.signal, "abort").length, 0);
});

test("plugstorm shrink prints no MaxListenersExceededWarning", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "leaky.yaml");
  writeFileSync(file, LEAKY);
  const r = await run(t, ["shrink", file, "-o", join(dir, "s.yaml")]);
  t.is(r.code, 1, r.stderr);
  t.notRegex(r.stderr, /MaxListenersExceeded|Warning/);
});
