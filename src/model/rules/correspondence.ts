// Host and guest: every host add attaches, every host remove detaches and
// frees, and the guest reports only what the host added. The rules, then
// their check (CorrespondenceMonitor: the host's adds and removes joined to
// the guest's devices by serial and MAC, and their deadlines).
// Tests: test/check/rules.test.ts (a breaking and a keeping trace per rule),
// test/check/behaviour.test.ts.

import type { Core } from "../core.js";
import type { HostAddEvent, HostRemoveEvent } from "../events.js";
import { holdersOf, type Nic, type Payload } from "../state.js";
import type { Timer } from "../timers.js";
import { BOTH, fmtDur, rule } from "./define.js";

export const CORRESPONDENCE_RULES = [
  rule({
    id: "host-add-attaches",
    severity: "error",
    side: "guest",
    principle: null,
    profiles: BOTH,
    needs: ["device-lifecycle"],
    watches: ["deadline:host-add"],
    statement:
      "Every host add leads to a guest attach (or a reported attach failure) within the deadline.",
    basis: "docs/netbsd.md#host-guest",
    liveness: true,
  }),
  rule({
    id: "host-remove-detaches",
    severity: "error",
    side: "guest",
    principle: 2,
    profiles: BOTH,
    needs: ["device-lifecycle"],
    watches: ["deadline:host-remove"],
    statement:
      "Every host remove makes the guest begin detaching that device within the deadline (a detach never begun: the lost-detach bug class, or a thread a cascade keeps blocked). A missing routing-socket departure alone is not a lost detach.",
    basis: "docs/netbsd.md#usb-unplug docs/netbsd.md#routing-socket docs/netbsd.md#host-guest",
    liveness: true,
  }),
  rule({
    id: "host-remove-frees",
    severity: "error",
    side: "guest",
    principle: 1,
    profiles: BOTH,
    needs: ["device-lifecycle"],
    watches: ["deadline:host-remove"],
    statement:
      "Every host remove leads to a completed detach and free within the deadline; otherwise the device leaks, naming the holders still outstanding.",
    basis: "docs/netbsd.md#bug-leaked-ref docs/netbsd.md#host-guest",
    liveness: true,
  }),
  rule({
    id: "guest-device-added-by-host",
    severity: "error",
    side: "guest",
    principle: null,
    profiles: BOTH,
    needs: ["device-lifecycle"],
    watches: ["device:attach-begin"],
    statement:
      "The guest reports no device the host did not add (joined by USB serial == QEMU id, or MAC).",
    basis: "docs/netbsd.md#host-guest",
  }),
] as const;

/** Judges the host's adds and removes against what the guest reports, in time. */
export class CorrespondenceMonitor {
  private readonly X_HOST_ADD_ATTACHES: number;
  private readonly X_HOST_REMOVE_DETACHES: number;
  private readonly X_HOST_REMOVE_FREES: number;

  constructor(private readonly c: Core) {
    this.X_HOST_ADD_ATTACHES = c.ix("host-add-attaches");
    this.X_HOST_REMOVE_DETACHES = c.ix("host-remove-detaches");
    this.X_HOST_REMOVE_FREES = c.ix("host-remove-frees");
  }

  onHostAdd(e: HostAddEvent): void {
    const c = this.c;
    c.nicsAdded++;
    const old = c.nics.get(e.nicId);
    if (old) {
      c.timers.cancel(old.attachTimer);
      c.timers.cancel(old.removeTimer);
      c.timers.cancel(old.finaliseTimer);
    }
    const nic: Nic = {
      id: e.nicId,
      kind: e.nicKind,
      bus: e.bus,
      mac: e.mac.toLowerCase(),
      addEvent: e,
      removeEvent: null,
      dev: null,
      everLinked: false,
      attachTimer: null,
      removeTimer: null,
      finaliseTimer: null,
      attachReported: false,
      removeReported: false,
      finaliseReported: false,
      deleted: false,
      freed: false,
    };
    nic.attachTimer = c.timers.arm(e.t + c.deadlines.attachNs, { k: "attach", nic });
    c.nics.set(e.nicId, nic);
    if (nic.mac) c.nicsByMac.set(nic.mac, nic);
    c.trackAction(e.actionId, { action: "add", nic, nicId: e.nicId, event: e });
  }

  onHostRemove(e: HostRemoveEvent): void {
    const c = this.c;
    c.nicsRemoved++;
    const nic = c.nics.get(e.nicId) ?? null;
    c.trackAction(e.actionId, { action: "remove", nic, nicId: e.nicId, event: e });
    if (nic === null) return;
    nic.removeEvent = e;
    if (nic.dev) c.ringPush(nic.dev, e);
    else {
      // Pulled before the guest saw it: the guest need not ever report it.
      c.timers.cancel(nic.attachTimer);
      nic.attachTimer = null;
    }
    nic.removeTimer = c.timers.arm(e.t + c.deadlines.detachNs, { k: "remove", nic });
    nic.finaliseTimer = c.timers.arm(e.t + c.deadlines.finaliseNs, { k: "finalise", nic });
  }

  /** The attach deadline: the host added a NIC and the guest's attach did not return. */
  attachDeadline(tm: Timer<Payload>, p: Payload & { k: "attach" }): void {
    const c = this.c;
    const nic = p.nic;
    if (!c.guestJudgeable(tm)) return;
    nic.attachTimer = null;
    const dev = nic.dev;
    if (dev !== null && dev.state !== "attaching" && dev.state !== "present") return;
    // A device plugged faulty (malformed descriptors, gone mid-enumeration)
    // may be refused before any driver probes, and then the guest has
    // nothing to report: no attach is not observed, not a violation. An
    // attach that began on it and never returned is still a hang.
    if (dev === null && nic.addEvent.deviceFault !== undefined) return;
    nic.attachReported = true;
    c.ex(this.X_HOST_ADD_ATTACHES);
    c.violate("host-add-attaches", dev
      ? `attach of ${dev.name} (${nic.id}) began but did not return within ${fmtDur(c.deadlines.attachNs)}`
      : `host added ${nic.id} (${nic.kind}) but the guest reported no attach within ${fmtDur(c.deadlines.attachNs)}`, { at: nic.addEvent, nic, dev, tNs: tm.due });
  }

  /** The removal deadline: the host removed a NIC and its device was not detached and freed. */
  removeDeadline(tm: Timer<Payload>, p: Payload & { k: "remove" }): void {
    const c = this.c;
    const nic = p.nic;
    if (!c.guestJudgeable(tm)) return;
    nic.removeTimer = null;
    const rm = nic.removeEvent;
    if (rm === null || nic.removeReported) return;
    const dev = nic.dev;
    if (dev === null) {
      // Never seen by the guest (removed before it attached): nothing to detach.
      c.maybeDropNic(nic);
      return;
    }
    if (nic.freed || dev.livenessReported) return;
    // Without DETACH_PHASES a detach is only seen when it completes: judge the whole removal.
    const begun = dev.attempt !== null || dev.state === "detaching" || dev.state === "detached" || !c.observed.has("detach-phases");
    nic.removeReported = true;
    dev.livenessReported = true;
    const h = holdersOf(dev, undefined, c.texts);
    if (!begun) {
      c.ex(this.X_HOST_REMOVE_DETACHES);
      // What was seen, not why: a stuck thread (a cascade's consequence) looks the same as the
      // sim's lost-detach bug, and naming that bug here sent readers after a bug not injected.
      c.violate("host-remove-detaches", `host removed ${nic.id} but ${dev.name} did not begin detaching within ${fmtDur(c.deadlines.detachNs)} (state ${dev.state}; no detach began)`, { at: rm, nic, dev, holders: h.ids, tNs: tm.due });
      return;
    }
    c.ex(this.X_HOST_REMOVE_FREES);
    c.violate("host-remove-frees", `host removed ${nic.id} but ${dev.name} was not ${c.observed.has("free") ? "freed" : "detached"} within ${fmtDur(c.deadlines.detachNs)} (state ${dev.state}${dev.ifState !== "none" ? `, interface ${dev.ifState}` : ""}); leaked${h.text ? `, still held: ${h.text}` : " with no reference known to be outstanding"}`, { at: rm, nic, dev, holders: h.ids, tNs: tm.due });
  }
}
