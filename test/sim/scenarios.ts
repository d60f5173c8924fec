// Scripted runs for the tests: one scenario per injectable bug that gives the
// bug its chance to strike, and the sick case. Each returns the harness after
// the machine stopped, with the records a trace would hold.

import { plugstorm } from "../../src/gen/plugstorm.js";
import type { BugName } from "../../src/sim/index.js";
import { DK, Harness, type HarnessOptions, OBJ } from "./harness.js";

const AK = plugstorm.trace.v1.HostAction.Kind;

/** Longer than the checker's default detach deadline (30 s), so liveness rules are judged. */
const PAST_DEADLINES_MS = 35_000;

async function attached(h: Harness, kind: "usb-net" | "pcmcia-ne2000"): Promise<{ nicId: string; dev: string }> {
  const r = await h.add(kind);
  if (r.outcome !== "done") throw new Error(`add ${kind}: ${r.outcome} ${r.message ?? ""}`);
  await h.until(() => h.reached(r.nicId, DK.ATTACH_END), `attach of ${r.nicId}`);
  return { nicId: r.nicId, dev: h.deviceOf(r.nicId)! };
}

async function freed(h: Harness, nicId: string, deadlineMs = 10_000): Promise<void> {
  await h.until(() => h.reached(nicId, DK.FREE), `free of the device of ${nicId}`, deadlineMs);
}

/** The sick case: a module unload and a card removal detach the same device. */
export async function sickCase(
  h: Harness,
  kind: "usb-net" | "pcmcia-ne2000",
  order: "unload-first" | "remove-first",
): Promise<{ unloadAck: plugstorm.telemetry.v1.ICommandAck; nicId: string; dev: string }> {
  const { nicId, dev } = await attached(h, kind);
  // A socket keeps if_detach waiting, so the second path arrives while the first is detaching.
  await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holdNs: 300e6, holder: `sock-${dev}` } }, AK.HOLD_REFS);
  const module = kind === "usb-net" ? "if_cdce" : "if_ne";
  let id: number;
  if (order === "unload-first") {
    id = h.send({ unloadModule: { name: module } }, AK.UNLOAD_MODULE);
    await h.sleepMs(20);
    await h.remove(nicId);
  } else {
    await h.remove(nicId);
    id = h.send({ unloadModule: { name: module } }, AK.UNLOAD_MODULE);
  }
  await h.until(() => h.acks.has(id), "the unload's ack", 10_000);
  await freed(h, nicId);
  return { unloadAck: h.acks.get(id)!, nicId, dev };
}

export interface BugRun {
  h: Harness;
  /** Set when the script itself saw something go wrong (ack errors are expected under bugs). */
  note: string;
}

/** Runs the scenario that gives `bug` its chance; the harness is stopped on return. */
export async function runBugScenario(bug: BugName | null, scenario: BugName, seed = 11, extra: HarnessOptions = {}): Promise<Harness> {
  const opts: HarnessOptions = { seed, bugs: bug === null ? [] : [bug], ...extra };
  if (scenario === "detach-wait-timeout") opts.timing = { usbDetachWaitNs: 10e9, ...opts.timing };
  if (scenario === "method-after-revoke") opts.timing = { nodeIoNs: 5e6, ...opts.timing };
  const h = new Harness(opts);
  try {
    await h.start();
    await SCRIPTS[scenario](h);
    await h.sleepMs(5);
  } finally {
    await h.stop();
  }
  return h;
}

const SCRIPTS: Record<BugName, (h: Harness) => Promise<void>> = {
  async "leak-ref"(h) {
    const { nicId, dev } = await attached(h, "usb-net");
    await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holdNs: 50e6, holder: "sock" } }, AK.HOLD_REFS);
    await h.remove(nicId);
    await h.sleepMs(PAST_DEADLINES_MS);
  },
  async "free-before-drain"(h) {
    const { nicId, dev } = await attached(h, "usb-net");
    await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_DEVICE, holdNs: 100e6, holder: "ioctl" } }, AK.HOLD_REFS);
    await h.remove(nicId);
    await freed(h, nicId);
    await h.sleepMs(200);
  },
  async "acquire-after-detach"(h) {
    const { nicId, dev } = await attached(h, "usb-net");
    await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holdNs: 100e6, holder: "sock" } }, AK.HOLD_REFS);
    await h.remove(nicId);
    await h.until(() => h.frames.some((f) => f.ifnet?.kind === plugstorm.telemetry.v1.IfEvent.Kind.DETACH_BEGIN), "if_detach");
    await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holdNs: 10e6, holder: "late-sock" } }, AK.HOLD_REFS);
    await freed(h, nicId);
  },
  async "sleep-in-interrupt"(h) {
    const { nicId } = await attached(h, "pcmcia-ne2000");
    await h.remove(nicId);
    await freed(h, nicId);
  },
  async "skip-deactivate"(h) {
    const { nicId } = await attached(h, "pcmcia-ne2000");
    await h.remove(nicId);
    await freed(h, nicId);
  },
  async "double-detach-race"(h) {
    const { nicId, dev } = await attached(h, "usb-net");
    await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holdNs: 100e6, holder: "sock" } }, AK.HOLD_REFS);
    const id = h.send({ detachDevice: { device: dev } }, AK.DETACH_DEVICE, nicId);
    await h.sleepMs(5);
    await h.remove(nicId);
    await h.until(() => h.acks.has(id), "drvctl -d ack");
    await freed(h, nicId);
    await h.sleepMs(10);
  },
  async "task-after-if-detach"(h) {
    const { nicId } = await attached(h, "usb-net");
    await h.remove(nicId);
    await freed(h, nicId);
  },
  async "detach-before-attach-done"(h) {
    const r = await h.add("usb-net");
    await h.until(() => h.reached(r.nicId, DK.ATTACH_BEGIN), "attach begin");
    const dev = h.deviceOf(r.nicId)!;
    const id = h.send({ detachDevice: { device: dev } }, AK.DETACH_DEVICE, r.nicId);
    await h.until(() => h.acks.has(id), "drvctl -d ack");
    await h.sleepMs(10);
    await h.remove(r.nicId);
    await h.sleepMs(10);
  },
  async "detach-wait-timeout"(h) {
    const { nicId, dev } = await attached(h, "usb-net");
    await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_USBNET, holdNs: 20e9, holder: "busy" } }, AK.HOLD_REFS);
    await h.remove(nicId);
    await h.sleepMs(21_000);
  },
  async "method-after-revoke"(h) {
    const { nicId, dev } = await attached(h, "usb-net");
    await h.command({ openNode: { path: `/dev/${dev}`, holder: "fd3" } });
    await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holdNs: 50e6, holder: "sock" } }, AK.HOLD_REFS);
    await h.remove(nicId);
    await freed(h, nicId);
    await h.command({ closeNode: { path: `/dev/${dev}`, holder: "fd3" } });
  },
  async "forced-detach-veto"(h) {
    const { nicId } = await attached(h, "usb-net");
    await h.remove(nicId);
    await h.until(() => h.frames.some((f) => f.panic) || h.reached(nicId, DK.FREE), "the panic or the free");
  },
  async "unload-double-free"(h) {
    await sickCase(h, "usb-net", "remove-first");
    await h.sleepMs(10);
  },
  async "free-under-sleeper"(h) {
    // drvctl -d detaches while a socket keeps if_detach waiting; the unplug's
    // config_detach sleeps in config_detach_enter meanwhile.
    const { nicId, dev } = await attached(h, "usb-net");
    await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holdNs: 100e6, holder: "sock" } }, AK.HOLD_REFS);
    const id = h.send({ detachDevice: { device: dev } }, AK.DETACH_DEVICE, nicId);
    await h.sleepMs(5);
    await h.remove(nicId);
    await h.until(() => h.acks.has(id), "drvctl -d ack");
    await freed(h, nicId);
    await h.sleepMs(10);
  },
  async "dclose-twice"(h) {
    const { nicId, dev } = await attached(h, "usb-net");
    await h.command({ openNode: { path: `/dev/${dev}`, holder: "fd3" } });
    await h.remove(nicId);
    await freed(h, nicId);
    await h.command({ closeNode: { path: `/dev/${dev}`, holder: "fd3" } });
  },
  async "lost-detach"(h) {
    const { nicId } = await attached(h, "usb-net");
    await h.remove(nicId);
    await h.sleepMs(PAST_DEADLINES_MS);
  },
};
