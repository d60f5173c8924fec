// The simulated kernel produces NetBSD's real orders (docs/netbsd.md), each
// by name, and the checker accepts every one of them.

import test from "ava";
import { checkRecords, formatVerdict } from "../../src/check/index.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { DK, Harness, OBJ } from "./harness.js";

const T = plugstorm.telemetry.v1;
const IK = T.IfEvent.Kind;
const MK = T.ModuleEvent.Kind;
const AK = plugstorm.trace.v1.HostAction.Kind;

async function run(opts: ConstructorParameters<typeof Harness>[0], script: (h: Harness) => Promise<void>): Promise<Harness> {
  const h = new Harness(opts);
  try {
    await h.start();
    await script(h);
    await h.sleepMs(5);
  } finally {
    await h.stop();
  }
  return h;
}

function clean(h: Harness): string {
  return checkRecords(h.records, { profile: "netbsd" })
    .verdicts.map(formatVerdict)
    .join("\n");
}

/** Kinds of cdce0's frames, in order, named. */
function order(h: Harness): string[] {
  const out: string[] = [];
  for (const f of h.frames) {
    if (f.device?.name === "cdce0") {
      const k = DK[f.device.kind ?? 0]!;
      out.push(k === "DRAIN_BEGIN" || k === "DRAIN_END" ? `${k}(${T.ObjectKind[f.device.objectKind ?? 0]})` : k);
    }
    if (f.ifnet?.kind === IK.DEPARTURE) out.push("DEPARTURE");
  }
  return out;
}

async function unplugWithPsref(h: Harness): Promise<void> {
  const r = await h.add("usb-net");
  await h.until(() => h.reached(r.nicId, DK.ATTACH_END), "attach");
  await h.command({ holdRefs: { device: "cdce0", kind: OBJ.OBJECT_KIND_IFNET, holdNs: 50e6, holder: "sock" } }, AK.HOLD_REFS);
  await h.remove(r.nicId);
  await h.until(() => h.reached(r.nicId, DK.FREE), "free");
}

for (const departure of ["before-drain", "after-drain"] as const) {
  test(`departure ${departure}: the departure sits ${departure === "before-drain" ? "inside" : "after"} if_detach's psref drain, FREE inside config_detach`, async (t) => {
    const h = await run({ seed: 5, departure }, unplugWithPsref);
    const o = order(h);
    const dep = o.indexOf("DEPARTURE");
    const drainEnd = o.indexOf("DRAIN_END(OBJECT_KIND_IFNET)");
    t.true(dep > 0 && drainEnd > 0, o.join(" "));
    t.is(dep < drainEnd, departure === "before-drain", o.join(" "));
    t.deepEqual(o.slice(-2), ["FREE", "DETACH_END"], o.join(" "));
    t.true(o.indexOf("COMMIT") < o.indexOf("DRAIN_BEGIN(OBJECT_KIND_DEVICE)") && o.indexOf("DETACH_REPORTED") < o.indexOf("FREE"), o.join(" "));
    t.is(clean(h), "");
  });
}

test("a built-in cdce: modunload succeeds, detaches nothing, and cdce0 runs on until the unplug", async (t) => {
  const h = await run({ seed: 6, builtinModules: ["if_cdce"] }, async (h) => {
    const r = await h.add("usb-net");
    await h.until(() => h.reached(r.nicId, DK.ATTACH_END), "attach");
    t.is((await h.command({ unloadModule: { name: "if_cdce" } }, AK.UNLOAD_MODULE)).error, 0);
    t.is((await h.command({ startTraffic: { device: "cdce0", packetsPerSecond: 100 } }, AK.START_TRAFFIC)).error, 0);
    await h.remove(r.nicId);
    await h.until(() => h.reached(r.nicId, DK.FREE), "free");
  });
  const end = h.frames.find((f) => f.module?.kind === MK.UNLOAD_END)!.module!;
  t.true(end.builtin === true);
  t.deepEqual(end.instances ?? [], []);
  t.is(order(h).filter((k) => k === "DETACH_BEGIN").length, 1, "only the unplug detaches");
  t.is(clean(h), "");
});

test("a machine rejects an unknown built-in module", (t) => {
  t.throws(() => new Harness({ builtinModules: ["if_urndis"] }), { message: /builtinModules: no module "if_urndis"/ });
});
