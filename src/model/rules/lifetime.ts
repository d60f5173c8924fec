// Lifetime: the softc is freed once, after the drains, with nothing held, and
// nothing touches it afterwards. The rules, then their check (LifetimeMonitor:
// FREE per profile, double free, events naming a freed instance); every
// family's tombstone lookup reports use after free through Core.uaf.
// Tests: test/check/rules.test.ts (a breaking and a keeping trace per rule),
// test/check/netbsd-orders.test.ts (FREE inside config_detach).

import type { Core } from "../core.js";
import type { DeviceEvent } from "../events.js";
import { DRAINED, ENOENT, holdersOf, refsHeld, tombHistory, type Dev, type Tomb } from "../state.js";
import { BOTH, rule } from "./define.js";
import { judgeTasks } from "./interface.js";

export const LIFETIME_RULES = [
  rule({
    id: "free-after-drain",
    severity: "fatal",
    side: "guest",
    principle: 3,
    profiles: BOTH,
    needs: ["free", "device-lifecycle"],
    watches: ["device:free"],
    statement:
      "The softc is freed only after the reference drains. NetBSD: config_devfree runs inside config_detach after ca_detach and the localcount drain, so FREE comes before DETACH_END(0), or after it when a device iterator defers it; Linux: free_netdev inside usbnet_disconnect, only after unregister_netdev returned.",
    basis: "docs/netbsd.md#devfree docs/netbsd.md#measured docs/netbsd.md#linux-usbnet-disconnect",
  }),
  rule({
    id: "free-with-zero-refs",
    severity: "fatal",
    side: "guest",
    principle: 1,
    profiles: BOTH,
    needs: ["free", "refs"],
    watches: ["device:free"],
    statement:
      "Memory is freed only when the last reference is gone: no holder may still hold anything at free.",
    basis: "docs/netbsd.md#devfree docs/netbsd.md#usb-detach-wait",
  }),
  rule({
    id: "free-once",
    severity: "fatal",
    side: "guest",
    principle: 5,
    profiles: BOTH,
    needs: ["free"],
    watches: ["device:free"],
    statement:
      "A device instance is freed exactly once (no double free, also when unload and removal race).",
    basis: "docs/netbsd.md#config-detach-enter docs/netbsd.md#bug-double-detach",
  }),
  rule({
    id: "no-event-after-free",
    severity: "fatal",
    side: "guest",
    principle: 1,
    profiles: BOTH,
    needs: ["free"],
    watches: ["device:*", "ref:*", "ifnet:*", "vnode:method-call"],
    statement:
      "Nothing touches a device instance after it is freed (use after free): no device, reference, interface or node event names it, and no sleeper in config_detach_enter wakes on it. Only the config_detach that freed it returns.",
    basis: "docs/netbsd.md#devfree docs/netbsd.md#config-detach-enter docs/netbsd.md#bug-double-detach",
  }),
] as const;

/** Judges FREE and events naming a freed instance. */
export class LifetimeMonitor {
  private readonly X_DETACH_COMPLETES: number;
  private readonly X_DETACH_DRAINS_REFS: number;
  private readonly X_DETACH_ONCE: number;
  private readonly X_FREE_AFTER_DRAIN: number;
  private readonly X_FREE_ONCE: number;
  private readonly X_FREE_WITH_ZERO_REFS: number;
  private readonly X_NO_EVENT_AFTER_FREE: number;

  constructor(private readonly c: Core) {
    this.X_DETACH_COMPLETES = c.ix("detach-completes");
    this.X_DETACH_DRAINS_REFS = c.ix("detach-drains-refs");
    this.X_DETACH_ONCE = c.ix("detach-once");
    this.X_FREE_AFTER_DRAIN = c.ix("free-after-drain");
    this.X_FREE_ONCE = c.ix("free-once");
    this.X_FREE_WITH_ZERO_REFS = c.ix("free-with-zero-refs");
    this.X_NO_EVENT_AFTER_FREE = c.ix("no-event-after-free");
  }

  free(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    if (dev.state !== "detached" && !c.observed.has("device-lifecycle") && !c.observed.has("detach-phases")) {
      // Detach completion is not observed: a free says it completed.
      dev.state = "detached";
      dev.attempt = null;
    }
    c.ex(this.X_FREE_AFTER_DRAIN);
    c.ex(this.X_FREE_ONCE);
    let endPending = false;
    if (dev.state === "detaching" && dev.attempt !== null && c.devMon.step(dev.state, "free") === "freed") {
      // The profile frees inside the detach (NetBSD: config_devfree before
      // config_detach returns; Linux: free_netdev before usbnet_disconnect
      // returns): the free is the detach's completion.
      this.freeInDetach(dev, e);
      endPending = c.devMon.step("freed", "detach-end") === "freed";
    } else if (dev.state !== "detached") {
      const rule = c.devMon.ruleFor(dev.state, "free");
      const h = holdersOf(dev, DRAINED, c.texts);
      c.exercise(rule);
      c.violate(rule, `${dev.name}: softc freed while ${dev.state}${dev.attempt ? " (detach still running)" : ""}${h.text ? `; still held: ${h.text}` : ""}`, { at: e, dev, holders: h.ids });
    } else {
      c.ex(this.X_FREE_WITH_ZERO_REFS);
      if (refsHeld(dev, DRAINED) > 0) {
        const h = holdersOf(dev, DRAINED, c.texts);
        c.violate("free-with-zero-refs", `${dev.name}: softc freed with references outstanding: ${h.text}`, { at: e, dev, holders: h.ids });
      }
    }
    c.dropDev(dev, true);
    if (endPending) {
      const tomb = c.tombs.get(dev.name);
      if (tomb !== undefined) tomb.endPending = true;
    }
  }

  /** A free that completes a detach still running (the profile's automaton allows detaching -> freed). */
  freeInDetach(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    const a = dev.attempt!;
    judgeTasks(c, dev, a, e, "the free");
    const ifBusy = dev.ifState === "attached" || dev.ifState === "deactivated" || dev.ifState === "detaching";
    const draining = dev.drains !== null && dev.drains.size > 0 ? dev.drains.keys().join(", ") : "";
    // After the commit, config_detach drains the localcount before config_devfree:
    // judged when the guest reports that drain at all (netbsd.md#devfree).
    const undrained =
      c.profile === "netbsd" &&
      !a.devDrained &&
      (a.devDrainBegun || (a.committed && (c.seesDeviceDrain || c.observed.has("detach-phases"))));
    if (ifBusy || draining || undrained) {
      const h = holdersOf(dev, DRAINED, c.texts);
      const why = ifBusy
        ? `interface ${dev.ifname || "?"} is ${dev.ifState} (${c.profile === "netbsd" ? "if_detach" : "unregister"} ${dev.ifState === "detaching" ? "still waiting for its references" : "never called"})`
        : draining
          ? `the ${draining} drain has not ended`
          : "config_detach_commit ran but the localcount drain has not";
      c.violate("free-after-drain", `${dev.name}: freed during its detach while ${why}${h.text ? `; still held: ${h.text}` : ""}`, { at: e, dev, holders: h.ids });
    } else {
      c.ex(this.X_FREE_WITH_ZERO_REFS);
      if (refsHeld(dev, DRAINED) > 0) {
        const h = holdersOf(dev, DRAINED, c.texts);
        c.violate("free-with-zero-refs", `${dev.name}: freed with references outstanding: ${h.text}`, { at: e, dev, holders: h.ids });
      }
    }
    c.detaches++;
    c.ex(this.X_DETACH_COMPLETES);
    c.timers.cancel(dev.detachTimer);
    dev.detachTimer = null;
    c.latFor(dev.driver).detach.add(e.t - (dev.attempt?.t ?? e.t));
    dev.attempt = null;
  }

  doubleFree(e: DeviceEvent, tomb: Tomb): void {
    const c = this.c;
    c.ex(this.X_FREE_ONCE);
    c.violate("free-once", `${tomb.name}${tomb.instance ? ` instance ${tomb.instance}` : ""} freed a second time (double free)`, {
      at: e,
      device: tomb.name,
      nicId: tomb.nicId,
      history: [...tombHistory(tomb), e],
    });
  }

  /** A device event naming a freed instance. */
  onTombDevice(e: DeviceEvent, tomb: Tomb): void {
    const c = this.c;
    if (e.kind === "free") return this.doubleFree(e, tomb);
    if (e.kind === "detach-end" && e.error === 0 && tomb.endPending) {
      // config_detach returning 0 after its own config_devfree (netbsd.md#devfree).
      tomb.endPending = false;
      tomb.ring.push(e);
      c.ex(this.X_DETACH_ONCE);
      c.ex(this.X_DETACH_DRAINS_REFS);
      c.ex(this.X_NO_EVENT_AFTER_FREE);
      return;
    }
    if (e.kind === "detach-end" && e.error === ENOENT)
      return c.uaf(e, tomb, `a caller sleeping in config_detach_enter on ${e.name}${e.thread ? ` (thread ${e.thread})` : ""} woke and returned ENOENT`);
    if (e.kind === "detach-wait")
      return c.uaf(e, tomb, `config_detach entered on ${e.name}${e.thread ? ` by ${e.thread}` : ""} (no deviter reference kept it alive)`);
    c.uaf(e, tomb, `${e.kind} of ${e.name}`);
  }
}
