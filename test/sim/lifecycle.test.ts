import test from "ava";
import { checkRecords, formatVerdict } from "../../src/check/index.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { lifecycleProblems } from "./expect.js";
import type { Harness } from "./harness.js";
import { runStorm } from "./storm.js";

const T = plugstorm.telemetry.v1;
const DK = T.DeviceEvent.Kind;
const IK = T.IfEvent.Kind;

// 10,000 hot-plug cycles across 20 seeds, USB and PCMCIA at once, with held
// references released during detach, traffic, open nodes, and the sick case.
// Every fourth seed has cdce built in (GENERIC): its unload detaches nothing.
const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);
const CYCLES_PER_SEED = 500;

/** How often the storm produced each legal NetBSD order the model must accept. */
interface Orders {
  waiters: number;
  freeInside: number;
  freeDeferred: number;
  departureBeforeDrain: number;
  departureAfterDrain: number;
  earlyPsrefs: number;
  builtinUnloads: number;
}

function orders(h: Harness, o: Orders): void {
  const draining = new Set<string>();
  const lastFree = new Map<string, boolean>();
  for (const f of h.frames) {
    const d = f.device;
    if (d) {
      const name = d.name ?? "";
      if (d.kind === DK.DETACH_WAIT) o.waiters++;
      if (d.kind === DK.DRAIN_BEGIN && d.objectKind === T.ObjectKind.OBJECT_KIND_IFNET) draining.add(name);
      if (d.kind === DK.DRAIN_END && d.objectKind === T.ObjectKind.OBJECT_KIND_IFNET) draining.delete(name);
      if (d.kind === DK.FREE) lastFree.set(name, true);
      if (d.kind === DK.DETACH_END && (d.error ?? 0) === 0) {
        if (lastFree.get(name)) o.freeInside++;
        else if (d.deferred) o.freeDeferred++;
      }
      if (d.kind === DK.ATTACH_BEGIN) lastFree.delete(name);
    }
    if (f.ifnet?.kind === IK.DEPARTURE) {
      if (draining.has(f.ifnet.device ?? "")) o.departureBeforeDrain++;
      else o.departureAfterDrain++;
    }
    if (f.ref?.kind === T.RefEvent.Kind.ACQUIRE && f.ref.holder?.endsWith(".ip_output")) o.earlyPsrefs++;
    if (f.module?.kind === T.ModuleEvent.Kind.UNLOAD_END && f.module.builtin) o.builtinUnloads++;
  }
}

for (let g = 0; g < 4; g++) {
  const seeds = SEEDS.slice(g * 5, g * 5 + 5);
  test.serial(`clean storms, seeds ${seeds.join(",")}: every NIC attached, detached and freed exactly once, with no verdict`, async (t) => {
    let cycles = 0;
    let sick = 0;
    let holds = 0;
    const o: Orders = { waiters: 0, freeInside: 0, freeDeferred: 0, departureBeforeDrain: 0, departureAfterDrain: 0, earlyPsrefs: 0, builtinUnloads: 0 };
    for (const seed of seeds) {
      const { h, stats } = await runStorm({ seed, cycles: CYCLES_PER_SEED, builtinModules: seed % 4 === 0 ? ["if_cdce"] : [], trafficP: 0.3 });
      t.deepEqual(lifecycleProblems(h), [], `seed ${seed}`);
      t.is(h.m.kernel.devices.size, 0, `seed ${seed}: devices left in the kernel`);
      const vs = checkRecords(h.records, { profile: "netbsd" }).verdicts;
      t.deepEqual(vs.map((v) => v.rule), [], `seed ${seed}:\n${vs.slice(0, 3).map(formatVerdict).join("\n")}`);
      orders(h, o);
      cycles += stats.cycles;
      sick += stats.sick;
      holds += stats.holds;
    }
    t.is(cycles, seeds.length * CYCLES_PER_SEED);
    // The storms must really have exercised the sick case and held references.
    t.true(sick > 0, "no sick case ran");
    t.true(holds > 100, `only ${holds} cycles held references`);
    // ... and NetBSD's real orders (docs/netbsd.md): each at least once per group.
    t.true(o.freeInside > 100, `FREE inside config_detach only ${o.freeInside} times`);
    t.true(o.waiters > 0 && o.freeDeferred > 0, `waiters ${o.waiters}, deferred frees ${o.freeDeferred}`);
    t.true(o.departureBeforeDrain > 0 && o.departureAfterDrain > 0, `departures before/after the drain: ${o.departureBeforeDrain}/${o.departureAfterDrain}`);
    t.true(o.earlyPsrefs > 0, "no psref taken during a detach's early steps");
    if (seeds.some((s) => s % 4 === 0)) t.true(o.builtinUnloads > 0, "no built-in module unload");
  });
}
