// References: every reference taken is released, drains wait for them, and
// no new one is taken past its kind's cut-off. The rules, the cut-offs
// (netbsdCutoff / linuxCutoff), then their check (ReferenceMonitor: the
// per-device ledger of holders, drains, devmon's device-detach report).
// Tests: test/check/rules.test.ts (a breaking and a keeping trace per rule),
// test/check/netbsd-orders.test.ts (psrefs before if_deactivate, acquires before the commit).

import type { DeviceState, IfState } from "../automata.js";
import type { Core } from "../core.js";
import type { DeviceEvent, ObjectKind, RefEvent } from "../events.js";
import { SmallMap } from "../small-map.js";
import { DEVICE_KINDS, NO_REFS, holdersOf, ledgerToWrite, refsHeld, type Dev } from "../state.js";
import { cannotSleep } from "./context.js";
import { BOTH, rule } from "./define.js";
import { judgeTasks } from "./interface.js";

export const REFERENCE_RULES = [
  rule({
    id: "no-ref-after-detach-begin",
    severity: "error",
    side: "guest",
    principle: 7,
    profiles: BOTH,
    needs: ["refs"],
    watches: ["ref:acquire", "device:commit", "device:drain-begin", "device:detach-step", "ifnet:deactivate", "ifnet:detach-begin"],
    statement:
      "No new reference is taken once its kind's cut-off has passed (until a veto puts the device back): device localcount refs from config_detach_commit on (NetBSD; the localcount drain when COMMIT is not reported), ifnet and ifaddr psrefs from if_deactivate on (if_detach's begin), usbnet refs from unp_dying on; Linux: from the detach's begin. Acquires before the cut-off are legal and are drained.",
    basis: "docs/netbsd.md#device-lookup-acquire docs/netbsd.md#commit-point docs/netbsd.md#if-get docs/netbsd.md#measured",
  }),
  rule({
    id: "release-only-held",
    severity: "error",
    side: "guest",
    principle: 1,
    profiles: BOTH,
    needs: ["refs"],
    watches: ["ref:release"],
    statement:
      "Every release matches an earlier acquire by the same holder on the same object; nothing is released that is not held.",
    basis: "docs/netbsd.md#localcount",
  }),
  rule({
    id: "drain-completes-empty",
    severity: "error",
    side: "guest",
    principle: 1,
    profiles: BOTH,
    needs: ["refs", "detach-phases"],
    watches: ["device:drain-end"],
    statement:
      "A reference drain (localcount, psref, unp_refcnt, sc_refcnt, netdev) ends only when no reference of that kind is held; a wait that gives up is a bug.",
    basis: "docs/netbsd.md#usb-detach-wait docs/netbsd.md#bug-timed-out-waits",
  }),
  rule({
    id: "if-detach-waits-for-psrefs",
    severity: "error",
    side: "guest",
    principle: 3,
    profiles: BOTH,
    needs: ["refs", "ifnet"],
    watches: ["ifnet:detach-end"],
    statement:
      "if_detach returns only after every psref holder on the interface and its addresses has released.",
    basis: "docs/netbsd.md#if-detach docs/netbsd.md#psref",
  }),
  rule({
    id: "detach-drains-refs",
    severity: "error",
    side: "guest",
    principle: 3,
    profiles: BOTH,
    needs: ["refs", "device-lifecycle"],
    watches: ["device:detach-end", "device:detach-reported"],
    statement:
      "A successful detach returns (and devmon reports device-detach) only after all references on the device, interface, driver (unp_refcnt, sc_refcnt) and its usb_tasks were drained.",
    basis: "docs/netbsd.md#config-detach docs/netbsd.md#devmon docs/netbsd.md#usbnet-detach",
  }),
] as const;

/** What a cut-off depends on: the device's and interface's states and the detach's progress. */
export interface CutoffView {
  state: DeviceState;
  ifState: IfState;
  drains: Pick<ReadonlyMap<ObjectKind, number>, "has"> | null;
  attempt: { committed: boolean; devDrainBegun: boolean; dying: boolean; stopped: boolean } | null;
}

/**
 * The cut-off a new reference of this kind has passed on NetBSD, or null
 * while it may still be taken (docs/netbsd.md#commit-point, #if-get,
 * #usbnet-detach). What the guest does not report is taken at its latest
 * possible point, so nothing legal is flagged.
 */
export function netbsdCutoff(d: CutoffView, kind: ObjectKind): string | null {
  const a = d.attempt;
  const s = d.state;
  if (s === "detached") return "config_detach returned";
  const ifGone = d.ifState === "deactivated" || d.ifState === "detaching" || d.ifState === "detached";
  switch (kind) {
    case "ifnet":
    case "ifaddr":
      // if_get skips only deactivated interfaces; if_detach begins with if_deactivate.
      return ifGone ? `if_deactivate (the interface is ${d.ifState})` : null;
    case "usbnet":
      if (a !== null && a.dying) return "usbnet_detach set unp_dying";
      if (d.drains?.has("usbnet") === true) return "the unp_refcnt drain began";
      if (s === "deactivated") return "usbnet_activate set unp_dying (deactivated)";
      return ifGone && s === "detaching" ? "if_detach began (unp_dying is set before it)" : null;
    case "transfer":
      if (a !== null && a.stopped) return "usbnet_stop aborted the pipes";
      return ifGone && s === "detaching" ? "if_detach began (the pipes are closed before it)" : null;
    case "device":
    case "vnode":
    case "softc-refcnt":
      if (a === null) return null;
      if (a.committed) return "config_detach_commit";
      if (a.devDrainBegun) return "the localcount drain began (so after config_detach_commit)";
      return null;
    default:
      // devsw refs are dropped by cdev_open itself when the device lookup fails;
      // usb_add_task may queue at any time (usbnet_detach waits for it).
      return null;
  }
}

/** Linux: nothing new once the disconnect began; netdev refs also not once unregister began. */
export function linuxCutoff(d: CutoffView, kind: ObjectKind): string | null {
  const s = d.state;
  if (s === "detaching" || s === "detached") return `the detach began (the device is ${s})`;
  if ((kind === "ifnet" || kind === "netdev") && (d.ifState === "detaching" || d.ifState === "detached"))
    return `unregister_netdev began (the interface is ${d.ifState})`;
  return null;
}

/** Judges reference events against each device's ledger, and the drains. */
export class ReferenceMonitor {
  private readonly X_DETACH_DRAINS_REFS: number;
  private readonly X_DRAIN_COMPLETES_EMPTY: number;
  private readonly X_NO_EVENT_AFTER_FREE: number;
  private readonly X_NO_REF_AFTER_DETACH_BEGIN: number;
  private readonly X_NO_SLEEP_IN_INTERRUPT: number;
  private readonly X_RELEASE_ONLY_HELD: number;
  /** References on objects of no known device (module refs, trace began mid-run). */
  private readonly looseLedger = new Map<string, Map<string, number>>();

  constructor(private readonly c: Core) {
    this.X_DETACH_DRAINS_REFS = c.ix("detach-drains-refs");
    this.X_DRAIN_COMPLETES_EMPTY = c.ix("drain-completes-empty");
    this.X_NO_EVENT_AFTER_FREE = c.ix("no-event-after-free");
    this.X_NO_REF_AFTER_DETACH_BEGIN = c.ix("no-ref-after-detach-begin");
    this.X_NO_SLEEP_IN_INTERRUPT = c.ix("no-sleep-in-interrupt");
    this.X_RELEASE_ONLY_HELD = c.ix("release-only-held");
  }

  /** The live device a reference event names: by its device, else by the object (an interface name for psrefs). */
  private refDev(e: RefEvent): Dev | undefined {
    const c = this.c;
    if (e.device) return c.device(e.device);
    if (e.objectKind === "ifnet" || e.objectKind === "netdev" || e.objectKind === "ifaddr") return c.ifnames.get(e.object) ?? c.devices.get(e.object);
    return c.devices.get(e.object);
  }

  /** The name of the device a reference event names when it is not live (to find its tombstone). */
  private refDevName(e: RefEvent): string {
    if (e.device) return e.device;
    if (e.objectKind === "ifnet" || e.objectKind === "netdev" || e.objectKind === "ifaddr") return this.c.ifTombs.get(e.object) ?? e.object;
    return e.object;
  }

  onRef(e: RefEvent): void {
    const c = this.c;
    const dev = this.refDev(e);
    if (dev === undefined) {
      const tomb = c.findTomb(this.refDevName(e), 0);
      if (tomb) {
        // A lookup refusing a freed device is the right answer; anything else touches freed memory.
        if (e.kind === "acquire-failed") c.ex(this.X_NO_EVENT_AFTER_FREE);
        else c.uaf(e, tomb, `${e.kind} of ${e.objectKind} ${e.object} by ${e.holder}`);
        return;
      }
      this.looseRef(e);
      return;
    }
    c.ringPush(dev, e);
    if (e.kind === "acquire-failed") {
      c.ex(this.X_NO_REF_AFTER_DETACH_BEGIN);
      return;
    }
    if (e.kind === "acquire") {
      c.ex(this.X_NO_SLEEP_IN_INTERRUPT);
      c.ex(this.X_NO_REF_AFTER_DETACH_BEGIN);
      if (e.objectKind === "device" && cannotSleep(e.context)) {
        c.violate("no-sleep-in-interrupt", `${dev.name}: device_lookup_acquire (may sleep) by ${e.holder} in ${e.context} context`, { at: e, dev, holders: [e.holder] });
      } else {
        const past = c.profile === "netbsd" ? netbsdCutoff(dev, e.objectKind) : linuxCutoff(dev, e.objectKind);
        if (past !== null)
          c.violate("no-ref-after-detach-begin", `${dev.name}: ${e.holder}${e.holderDesc ? ` (${e.holderDesc})` : ""} acquired a ${e.objectKind} reference on ${e.object} after ${past}`, { at: e, dev, holders: [e.holder] });
      }
      let m = dev.ledger.get(e.objectKind);
      if (m === undefined) ledgerToWrite(dev).set(e.objectKind, (m = new SmallMap()));
      m.set(e.holder, (m.get(e.holder) ?? 0) + 1);
      if (e.holderDesc) (dev.descs ??= new Map()).set(e.holder, e.holderDesc);
      dev.refTotal++;
      if (dev.refTotal > c.maxRefs.count) c.maxRefs = { count: dev.refTotal, device: dev.name, nicId: dev.nic?.id ?? "", tNs: e.t };
      return;
    }
    // release
    c.ex(this.X_RELEASE_ONLY_HELD);
    const m = dev.ledger.get(e.objectKind);
    const n = m?.get(e.holder) ?? 0;
    if (n <= 0) {
      c.violate("release-only-held", `${dev.name}: ${e.holder} released a ${e.objectKind} reference on ${e.object} it does not hold`, { at: e, dev, holders: [e.holder] });
      return;
    }
    if (n === 1) {
      // The last holder's map (and the ledger, the last kind's) is dropped: the
      // shared NO_REFS stands for a device holding nothing. A ledger of more than
      // one kind is the device's own (NO_REFS holds none).
      if (m!.size > 1) m!.delete(e.holder);
      else if (dev.ledger.size > 1) ledgerToWrite(dev).delete(e.objectKind);
      else dev.ledger = NO_REFS;
      dev.descs?.delete(e.holder);
    } else m!.set(e.holder, n - 1);
    dev.refTotal--;
  }

  /** References on objects that belong to no known device (module refs, trace began mid-run). */
  looseRef(e: RefEvent): void {
    const c = this.c;
    if (e.kind === "acquire-failed") return;
    const key = `${e.objectKind}:${e.object}`;
    let m = this.looseLedger.get(key);
    if (e.kind === "acquire") {
      if (m === undefined) this.looseLedger.set(key, (m = new Map()));
      m.set(e.holder, (m.get(e.holder) ?? 0) + 1);
      return;
    }
    // A release without a seen acquire here may predate the trace; only judge what we saw.
    if (m === undefined) return;
    const n = m.get(e.holder) ?? 0;
    c.ex(this.X_RELEASE_ONLY_HELD);
    if (n <= 0) {
      c.violate("release-only-held", `${e.holder} released a ${e.objectKind} reference on ${e.object} it does not hold`, { at: e, device: e.device || e.object, holders: [e.holder] });
      return;
    }
    if (n === 1) m.delete(e.holder);
    else m.set(e.holder, n - 1);
    if (m.size === 0) this.looseLedger.delete(key);
  }

  drainEnd(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    if (e.objectKind === "device" && dev.attempt) dev.attempt.devDrained = true;
    const began = dev.drains?.get(e.objectKind);
    if (began !== undefined) {
      // Kept when it empties (a SmallMap's emptying costs nothing): the next drain of this device writes it again.
      dev.drains!.delete(e.objectKind);
      c.latFor(dev.driver).drain.add(e.t - began);
    }
    c.ex(this.X_DRAIN_COMPLETES_EMPTY);
    const held = dev.refTotal === 0 ? undefined : dev.ledger.get(e.objectKind);
    if (held !== undefined && held.size > 0) {
      const h = holdersOf(dev, new Set<ObjectKind>([e.objectKind]), c.texts);
      c.violate("drain-completes-empty", `${dev.name}: ${e.objectKind} drain ended with references still held: ${h.text}`, { at: e, dev, holders: h.ids });
    }
  }

  /** devmon's "device-detach": sent after the localcount drain (netbsd.md#devmon). */
  detachReported(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    c.ex(this.X_DETACH_DRAINS_REFS);
    const draining = dev.drains?.has("device") === true;
    if (draining || refsHeld(dev, DEVICE_KINDS) > 0) {
      const h = holdersOf(dev, DEVICE_KINDS, c.texts);
      c.violate("detach-drains-refs", `${dev.name}: devmon reported device-detach ${draining ? "while the localcount drain runs" : "with device references outstanding"}${h.text ? `: ${h.text}` : ""}`, { at: e, dev, holders: h.ids });
    }
  }

  /** A reference drain begins: it sleeps, and it is a cut-off for some kinds. */
  drainBegin(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    c.ex(this.X_NO_SLEEP_IN_INTERRUPT);
    if (cannotSleep(e.context))
      c.violate("no-sleep-in-interrupt", `${dev.name}: ${e.objectKind} reference drain (sleeps) started in ${e.context} context`, { at: e, dev });
    (dev.drains ??= new SmallMap()).set(e.objectKind, e.t);
    if (e.objectKind === "device") {
      c.seesDeviceDrain = true;
      if (dev.attempt) dev.attempt.devDrainBegun = true;
    } else if (e.objectKind === "usbnet" && dev.attempt) judgeTasks(c, dev, dev.attempt, e, "its unp_refcnt drain began");
  }
}
