// The scheduler counts its NICs in flight as they come and go (per mix entry
// and per bus) where it walked them before every step: a seed must still name
// the same step list, and no cycle may start past a kind's count or its bus's ports.

import test from "ava";
import { createHash } from "node:crypto";
import { DEFAULT_STORM, busOf, expandSteps, validateStorm, type NicKind, type StormInput, type StormSpec } from "../../src/storm/index.js";

const d = DEFAULT_STORM;
const CASES: Record<string, StormInput> = {
  default: { ...d, schedule: { ...d.schedule!, cycles: 400, seed: 3 } },
  pcmciaHeavy: { ...d, nics: { mix: [{ kind: "usb-net", count: 2, weight: 1 }, { kind: "pcmcia-ne2000", count: 2, weight: 5 }] }, schedule: { ...d.schedule!, cycles: 400, maxInFlight: 3, seed: 9 } },
  rated: { ...d, schedule: { ...d.schedule!, cycles: 200, rate: 200, seed: 4 } },
  zeroWeight: { ...d, nics: { mix: [{ kind: "usb-net", count: 4, weight: 1 }, { kind: "pcmcia-ne2000", count: 2, weight: 0 }] }, schedule: { ...d.schedule!, cycles: 200, seed: 5 } },
};

// The step lists these seeds named before the counts (main at f81c51a): a
// written storm or a bug report's seed must keep naming the same run.
const NAMED: Record<string, string> = {
  default: "848f433e8d14addd",
  pcmciaHeavy: "96be24957439d22b",
  rated: "8d17098233e8f23a",
  zeroWeight: "62c64654a717e70c",
  twice: "d29405cbe1845f79",
  narrow: "d58a40d96795d40f",
};

/** Specs only code can make (validation refuses a kind listed twice), and one with a narrower USB bus. */
function built(): Record<string, StormSpec> {
  const base = validateStorm(CASES.default!);
  return {
    twice: { ...base, nics: { ...base.nics, mix: [...base.nics.mix, { kind: "usb-net", count: 1, weight: 4 }] } },
    narrow: { ...base, nics: { ...base.nics, ports: { ...base.nics.ports, usb: 1 } } },
  };
}

test("a seed names the same step list as before the scheduler counted its NICs", (t) => {
  const specs = Object.entries(CASES).map(([name, input]): [string, StormSpec] => [name, validateStorm(input)]).concat(Object.entries(built()));
  for (const [name, spec] of specs) {
    t.is(createHash("sha256").update(JSON.stringify(expandSteps(spec))).digest("hex").slice(0, 16), NAMED[name]!, name);
  }
});

/** Walks a step list and fails at an add past its kind's count (some entry naming the kind must have room), the bus's ports or maxInFlight. */
function assertRoom(t: import("ava").ExecutionContext, spec: StormSpec, label: string): void {
  const inFlight = new Map<string, NicKind>();
  let adds = 0;
  for (const s of expandSteps(spec)) {
    if (s.op === "add") {
      const count = Math.max(...spec.nics.mix.filter((m) => m.kind === s.kind && m.weight > 0).map((m) => m.count));
      const mine = [...inFlight.values()].filter((k) => k === s.kind).length;
      const bus = busOf(s.kind);
      const onBus = [...inFlight.values()].filter((k) => busOf(k) === bus).length;
      t.true(mine < count, `${label}: ${s.nic} past ${s.kind}'s count`);
      t.true(onBus < spec.nics.ports[bus], `${label}: ${s.nic} past the ${bus} ports`);
      t.true(inFlight.size < spec.schedule.maxInFlight, `${label}: ${s.nic} past maxInFlight`);
      inFlight.set(s.nic, s.kind);
      adds++;
    } else if (s.op === "remove" || s.op === "sick") inFlight.delete(s.nic);
  }
  t.is(adds, spec.schedule.cycles, label);
  t.is(inFlight.size, 0, label);
}

test("no cycle starts past its kind's count, its bus's ports or maxInFlight", (t) => {
  for (const [name, input] of Object.entries(CASES)) assertRoom(t, validateStorm(input), name);
  // A kind listed twice: an entry's count is over every NIC of the kind, as
  // when counted by walking; one USB port: the bus bounds the kinds on it.
  for (const [name, spec] of Object.entries(built())) assertRoom(t, spec, name);
});
