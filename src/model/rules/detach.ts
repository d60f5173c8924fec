// Detach: one detach does the work, once, after attach, never vetoed when
// forced, and it completes; device events follow the profile's automaton
// (automata.ts: its forbidden edges name these rules). The rules, then their
// check (DetachMonitor: attach, deactivate, detach begin / wait / commit /
// end, panic, the detach deadline).
// Tests: test/check/rules.test.ts (a breaking and a keeping trace per rule),
// test/check/netbsd-orders.test.ts (legal and buggy NetBSD orders), test/check/races.test.ts.

import type { DeviceEvent, ModelEvent } from "../events.js";
import type { Core } from "../core.js";
import { DRAINED, ENOENT, holdersOf, newAttempt, refsHeld, type Attempt, type Dev, type Payload } from "../state.js";
import type { Timer } from "../timers.js";
import { cannotSleep } from "./context.js";
import { BOTH, NETBSD, fmtDur, rule } from "./define.js";
import { judgeTasks } from "./interface.js";

export const DETACH_RULES = [
  rule({
    id: "single-detach-in-progress",
    severity: "fatal",
    side: "guest",
    principle: 5,
    profiles: BOTH,
    needs: ["detach-phases"],
    watches: ["device:detach-begin", "device:detach-wait", "ifnet:detach-begin"],
    statement:
      "At most one detach does the work per device: no second DETACH_BEGIN (ca_detach) or second if_detach while one runs. A second caller sleeps in config_detach_enter (DETACH_WAIT) and then returns ENOENT; that is legal. From an agent that cannot report DETACH_WAIT (no commit-point capability), a second DETACH_BEGIN is taken for such a sleeper.",
    basis: "docs/netbsd.md#config-detach-enter docs/netbsd.md#bug-double-detach docs/netbsd.md#measured",
  }),
  rule({
    id: "detach-once",
    severity: "fatal",
    side: "guest",
    principle: 5,
    profiles: BOTH,
    needs: ["device-lifecycle"],
    watches: ["device:detach-end"],
    statement:
      "A device instance is detached successfully at most once; a detach after a successful one returns ENOENT.",
    basis: "docs/netbsd.md#config-detach-enter",
  }),
  rule({
    id: "detach-after-attach-done",
    severity: "error",
    side: "guest",
    principle: 7,
    profiles: BOTH,
    needs: ["detach-phases"],
    watches: ["device:detach-begin"],
    statement:
      "A detach begins only after the device's attach has returned (a caller may wait for it in config_detach_enter).",
    basis: "docs/netbsd.md#config-detach-enter docs/netbsd.md#bug-detach-before-attach",
  }),
  rule({
    id: "forced-detach-no-veto",
    severity: "fatal",
    side: "guest",
    principle: 4,
    profiles: BOTH,
    needs: ["device-lifecycle"],
    watches: ["device:detach-end", "panic"],
    statement:
      "A forced detach (USB/PCMCIA removal; every Linux disconnect) never fails: a veto under DETACH_FORCE is a panic.",
    basis: "docs/netbsd.md#config-detach docs/netbsd.md#bug-forced-veto",
  }),
  rule({
    id: "veto-before-teardown",
    severity: "error",
    side: "guest",
    principle: 4,
    profiles: NETBSD,
    needs: ["ifnet", "detach-phases"],
    watches: ["device:detach-end", "ifnet:detach-begin"],
    statement:
      "A driver vetoes an unforced detach (EBUSY) only before tearing anything down: after if_detach began it must finish.",
    basis: "docs/netbsd.md#if-detach docs/netbsd.md#config-detach",
  }),
  rule({
    id: "detach-completes",
    severity: "error",
    side: "guest",
    principle: 3,
    profiles: BOTH,
    needs: ["detach-phases"],
    watches: ["deadline:device:detach-begin"],
    statement:
      "A detach that began returns within the deadline (a hang names the holders it waits for). A held psref keeping it waiting after the routing socket's departure is normal until the deadline.",
    basis: "docs/netbsd.md#bug-leaked-ref docs/netbsd.md#psref docs/netbsd.md#measured",
    liveness: true,
  }),
  rule({
    id: "detach-end-after-if-detach",
    severity: "error",
    side: "guest",
    principle: 3,
    profiles: BOTH,
    needs: ["ifnet", "detach-phases"],
    watches: ["device:detach-end"],
    statement:
      "A successful detach of a device with an interface returns only after if_detach has returned.",
    basis: "docs/netbsd.md#usbnet-detach docs/netbsd.md#pcmcia",
  }),
  rule({
    id: "lifecycle-order",
    severity: "error",
    side: "guest",
    principle: 3,
    profiles: BOTH,
    needs: ["device-lifecycle"],
    watches: ["device:*"],
    statement:
      "Device events follow the profile's lifecycle automaton (absent -> present -> attaching -> attached -> running -> [deactivated] -> detaching -> detached -> freed; see docs/automata.md).",
    basis: "docs/netbsd.md#config-detach docs/netbsd.md#config-attach",
  }),
  rule({
    id: "guest-no-panic",
    severity: "fatal",
    side: "guest",
    principle: 4,
    profiles: BOTH,
    needs: [],
    watches: ["panic"],
    statement:
      "The guest kernel does not panic.",
    basis: "docs/netbsd.md#config-detach docs/netbsd.md#bug-forced-veto",
  }),
  rule({
    id: "attach-succeeds",
    severity: "warning",
    side: "guest",
    principle: null,
    profiles: BOTH,
    needs: ["device-lifecycle"],
    watches: ["device:attach-end"],
    statement:
      "The driver's attach of a hot-added NIC succeeds. On Linux a failed probe leaves no instance, so its NIC's removal expects no detach.",
    basis: "docs/netbsd.md#cdce docs/netbsd.md#linux-usbnet-probe-failure",
  }),
] as const;

const noSuchNic = (_dev: Dev, e: DeviceEvent): string => `guest attached ${e.name} (serial "${e.serial}", mac "${e.mac}") but the host added no such NIC`;

/** Judges a device's attach and detach: the device automaton's steps and what they cannot say as data. */
export class DetachMonitor {
  private readonly X_ATTACH_SUCCEEDS: number;
  private readonly X_DETACH_AFTER_ATTACH_DONE: number;
  private readonly X_DETACH_COMPLETES: number;
  private readonly X_DETACH_DRAINS_REFS: number;
  private readonly X_DETACH_END_AFTER_IF_DETACH: number;
  private readonly X_DETACH_IN_THREAD_CONTEXT: number;
  private readonly X_DETACH_ONCE: number;
  private readonly X_FORCED_DETACH_NO_VETO: number;
  private readonly X_GUEST_DEVICE_ADDED_BY_HOST: number;
  private readonly X_GUEST_NO_PANIC: number;
  private readonly X_HOST_ADD_ATTACHES: number;
  private readonly X_HOST_REMOVE_DETACHES: number;
  private readonly X_LIFECYCLE_ORDER: number;
  private readonly X_PCMCIA_DEACTIVATE_BEFORE_DETACH: number;
  private readonly X_SINGLE_DETACH_IN_PROGRESS: number;
  private readonly X_VETO_BEFORE_TEARDOWN: number;

  constructor(private readonly c: Core) {
    this.X_ATTACH_SUCCEEDS = c.ix("attach-succeeds");
    this.X_DETACH_AFTER_ATTACH_DONE = c.ix("detach-after-attach-done");
    this.X_DETACH_COMPLETES = c.ix("detach-completes");
    this.X_DETACH_DRAINS_REFS = c.ix("detach-drains-refs");
    this.X_DETACH_END_AFTER_IF_DETACH = c.ix("detach-end-after-if-detach");
    this.X_DETACH_IN_THREAD_CONTEXT = c.ix("detach-in-thread-context");
    this.X_DETACH_ONCE = c.ix("detach-once");
    this.X_FORCED_DETACH_NO_VETO = c.ix("forced-detach-no-veto");
    this.X_GUEST_DEVICE_ADDED_BY_HOST = c.ix("guest-device-added-by-host");
    this.X_GUEST_NO_PANIC = c.ix("guest-no-panic");
    this.X_HOST_ADD_ATTACHES = c.ix("host-add-attaches");
    this.X_HOST_REMOVE_DETACHES = c.ix("host-remove-detaches");
    this.X_LIFECYCLE_ORDER = c.ix("lifecycle-order");
    this.X_PCMCIA_DEACTIVATE_BEFORE_DETACH = c.ix("pcmcia-deactivate-before-detach");
    this.X_SINGLE_DETACH_IN_PROGRESS = c.ix("single-detach-in-progress");
    this.X_VETO_BEFORE_TEARDOWN = c.ix("veto-before-teardown");
  }

  attachBegin(e: DeviceEvent): Dev {
    const c = this.c;
    const old = c.device(e.name);
    if (old !== undefined && old.state !== "freed") {
      c.ex(this.X_LIFECYCLE_ORDER);
      c.violate("lifecycle-order", `${e.name} attached again while the previous instance is ${old.state} (never freed)`, { at: e, dev: old });
    }
    let nic = c.joinNic(e.serial, e.mac);
    if (nic && nic.dev && nic.dev.state !== "freed" && nic.dev.name !== e.name) nic = null; // already joined elsewhere
    const dev = c.newDev(e.name, e, nic, nic ? "present" : "absent");
    c.ringPush(dev, e);
    c.ex(this.X_GUEST_DEVICE_ADDED_BY_HOST);
    if (c.stepDev(dev, "attach-begin", e, noSuchNic) === false)
      dev.state = "attaching";
    dev.attachBeginT = e.t;
    return dev;
  }

  attachEnd(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    const failed = e.error !== 0;
    if (!c.stepDev(dev, failed ? "attach-failed" : "attach-end", e)) return;
    const nic = dev.nic;
    c.ex(this.X_HOST_ADD_ATTACHES);
    if (nic) {
      c.timers.cancel(nic.attachTimer);
      nic.attachTimer = null;
    }
    c.latFor(dev.driver).attach.add(e.t - (nic && nic.dev === dev ? nic.addEvent.t : dev.attachBeginT));
    c.ex(this.X_ATTACH_SUCCEEDS);
    if (failed) c.violate("attach-succeeds", `attach of ${dev.name} failed with error ${e.error}`, { at: e, dev });
    // Linux: the failed probe already freed what it made; nothing will detach.
    if (dev.state === "freed") {
      c.dropDev(dev, true);
      return;
    }
    if (dev.ifState !== "none") dev.state = "running";
  }

  detachBegin(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    const force = e.force || c.alwaysForced;
    // A sleeper that runs the detach itself (the first one was vetoed) stops waiting.
    if (dev.waiters !== null && e.thread) this.takeWaiter(dev, e.thread);
    if (dev.state === "detaching" && !c.observed.has("commit-point")) {
      // An agent without DETACH_WAIT may report DETACH_BEGIN at config_detach's
      // entry, for the sleeper too: take it as one. Two detaches doing the work
      // are still caught by their evidence (a second if_detach, a second
      // success, an event after the free).
      c.ex(this.X_SINGLE_DETACH_IN_PROGRESS);
      (dev.waiters ??= []).push(e.thread);
      return;
    }
    c.ex(this.X_DETACH_IN_THREAD_CONTEXT);
    if (cannotSleep(e.context))
      c.violate("detach-in-thread-context", `${dev.name}: config_detach called in ${e.context} context`, { at: e, dev });
    if (dev.bus === "pcmcia" && force && dev.state !== "detached") {
      c.ex(this.X_PCMCIA_DEACTIVATE_BEFORE_DETACH);
      if (dev.state !== "deactivated")
        c.violate("pcmcia-deactivate-before-detach", `${dev.name}: forced PCMCIA detach without a prior deactivate (state ${dev.state})`, { at: e, dev });
      else if (dev.deactivateContext !== null && dev.deactivateContext !== "interrupt" && dev.deactivateContext !== "unknown" && c.observed.has("context"))
        c.violate("pcmcia-deactivate-before-detach", `${dev.name}: card-removal deactivate ran in ${dev.deactivateContext} context, not in the interrupt`, { at: e, dev });
    }
    c.ex(this.X_DETACH_AFTER_ATTACH_DONE);
    c.ex(this.X_SINGLE_DETACH_IN_PROGRESS);
    const attempt: Attempt = newAttempt(e.t, e.index, force, e.thread);
    const wasDetached = dev.state === "detached";
    if (!c.stepDev(dev, "detach-begin", e, dev.state === "detaching"
      ? `${dev.name}: a second detach (${force ? "DETACH_FORCE" : "flags 0"}${e.thread ? `, thread ${e.thread}` : ""}) began while the detach from ${dev.attempt?.thread || "another thread"} (record #${dev.attempt?.index ?? "?"}) is in progress`
      : dev.state === "attaching" ? `${dev.name}: detach began before attach returned` : undefined)) {
      if (dev.state === "attaching") {
        dev.state = "detaching";
        dev.attempt = attempt;
      } else if (dev.state === "detaching") dev.loser = attempt;
      return;
    }
    if (wasDetached) {
      dev.loser = attempt;
      return;
    }
    dev.attempt = attempt;
    dev.detachTimer = c.timers.arm(e.t + c.deadlines.detachNs, { k: "detach", dev, attempt });
    if (dev.nic?.removeEvent) c.ex(this.X_HOST_REMOVE_DETACHES);
  }

  /** DETACH_WAIT: a caller sleeps in config_detach_enter; it returns ENOENT or, after a veto, runs the detach. */
  detachWait(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    c.ex(this.X_SINGLE_DETACH_IN_PROGRESS);
    c.ex(this.X_DETACH_IN_THREAD_CONTEXT);
    if (cannotSleep(e.context))
      c.violate("detach-in-thread-context", `${dev.name}: config_detach called in ${e.context} context`, { at: e, dev });
    if (!c.stepDev(dev, "detach-wait", e)) return;
    (dev.waiters ??= []).push(e.thread);
  }

  /** Removes one sleeper (by thread when known); false when none waits. */
  takeWaiter(dev: Dev, thread: string): boolean {
    const w = dev.waiters;
    if (w === null || w.length === 0) return false;
    let i = thread ? w.indexOf(thread) : -1;
    if (i < 0) {
      if (thread && w.every((x) => x !== "")) return false;
      i = thread ? w.indexOf("") : 0;
    }
    w.splice(i, 1);
    if (w.length === 0) dev.waiters = null;
    return true;
  }

  detachEnd(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    c.ex(this.X_DETACH_ONCE);
    if (e.error === ENOENT) {
      if ((dev.state === "detaching" || dev.state === "detached") && this.takeWaiter(dev, e.thread)) return;
      if (dev.state === "detached" || dev.loser) {
        dev.loser = null;
        return;
      }
      c.ex(this.X_LIFECYCLE_ORDER);
      c.violate("lifecycle-order", `${dev.name}: detach returned ENOENT but ${dev.name} is ${dev.state}`, { at: e, dev });
      return;
    }
    if (dev.attempt === null && dev.state !== "detached" && dev.state !== "detaching") {
      if (c.observed.has("detach-phases")) {
        c.ex(this.X_LIFECYCLE_ORDER);
        c.violate("lifecycle-order", `${dev.name}: detach returned but no detach began`, { at: e, dev });
      }
      // Without DETACH_PHASES only completions are reported: the begin is implied.
      dev.attempt = newAttempt(e.t, e.index, e.force || c.alwaysForced, e.thread);
      dev.state = "detaching";
    }
    const attempt: Attempt = (dev.loser && dev.state === "detached" ? dev.loser : dev.attempt) ??
      newAttempt(e.t, e.index, e.force || c.alwaysForced, e.thread);
    if (e.error !== 0) {
      // A veto.
      c.ex(this.X_FORCED_DETACH_NO_VETO);
      c.vetoes++;
      if (attempt.force || e.force || c.alwaysForced) {
        c.violate("forced-detach-no-veto", `${dev.name}: forced detach failed with error ${e.error} (config_detach panics)`, { at: e, dev });
      } else {
        c.ex(this.X_VETO_BEFORE_TEARDOWN);
        if (attempt.sawIfDetach || attempt.committed)
          // config_detach KASSERTs that a failing ca_detach did not commit (docs/netbsd.md#config-detach).
          c.violate("veto-before-teardown", `${dev.name}: detach vetoed (error ${e.error}) after ${attempt.sawIfDetach ? "if_detach began" : "config_detach_commit"}`, { at: e, dev });
        else if (dev.state === "detaching" && c.stepDev(dev, "veto", e)) {
          // A veto leaves DVF_ACTIVE as it was: a device deactivated before or
          // during the vetoed detach stays deactivated (config_detach never
          // calls ca_activate; docs/netbsd.md#config-detach).
          dev.state = dev.deactivateContext !== null ? "deactivated" : dev.ifState === "none" ? "attached" : "running";
        }
      }
      if (dev.loser === attempt) dev.loser = null;
      else {
        dev.attempt = null;
        c.timers.cancel(dev.detachTimer);
        dev.detachTimer = null;
      }
      return;
    }
    // Success.
    if (dev.state === "detached") {
      c.violate("detach-once", `${dev.name}: detached successfully a second time${attempt.thread ? ` (thread ${attempt.thread})` : ""}; the later detach must return ENOENT`, { at: e, dev });
      dev.loser = null;
      return;
    }
    c.ex(this.X_DETACH_END_AFTER_IF_DETACH);
    if (dev.ifState === "attached" || dev.ifState === "deactivated" || dev.ifState === "detaching")
      c.violate("detach-end-after-if-detach", `${dev.name}: detach returned while interface ${dev.ifname || "?"} is ${dev.ifState} (if_detach ${dev.ifState === "detaching" ? "still running" : "never called"})`, { at: e, dev });
    c.ex(this.X_DETACH_DRAINS_REFS);
    if (refsHeld(dev, DRAINED) > 0) {
      const h = holdersOf(dev, DRAINED, c.texts);
      c.violate("detach-drains-refs", `${dev.name}: detach returned with references outstanding: ${h.text}`, { at: e, dev, holders: h.ids });
    }
    if (dev.attempt) judgeTasks(c, dev, dev.attempt, e, "config_detach's return");
    if (!c.stepDev(dev, "detach-end", e)) return;
    c.detaches++;
    c.ex(this.X_DETACH_COMPLETES);
    c.timers.cancel(dev.detachTimer);
    dev.detachTimer = null;
    c.latFor(dev.driver).detach.add(e.t - (dev.attempt?.t ?? e.t));
    dev.attempt = null;
    if (!c.observed.has("free")) c.dropDev(dev, true);
  }

  /** DVACT_DEACTIVATE (PCMCIA card removal): remembered to judge the forced detach that follows. */
  deactivate(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    if (c.stepDev(dev, "deactivate", e)) dev.deactivateContext = e.context;
  }

  /** config_detach_commit (dv_detached): the cut-off for device references. */
  commit(dev: Dev, e: DeviceEvent): void {
    const c = this.c;
    if (c.stepDev(dev, "commit", e) && dev.attempt) dev.attempt.committed = true;
  }

  panic(e: ModelEvent & { type: "panic" }): void {
    const c = this.c;
    const dev = e.device ? c.devices.get(e.device) ?? null : null;
    if (dev) c.ringPush(dev, e);
    // config_detach panics instead of returning when a forced detach fails:
    // the panic is that detach's end.
    if (dev && dev.attempt && dev.attempt.force && dev.state === "detaching") {
      c.ex(this.X_FORCED_DETACH_NO_VETO);
      c.violate("forced-detach-no-veto", `${dev.name}: forced detach failed and the kernel panicked: ${e.message}`, { at: e, dev });
    }
    c.ex(this.X_GUEST_NO_PANIC);
    c.violate("guest-no-panic", `guest kernel panicked: ${e.message}`, { at: e, dev, device: e.device });
    c.guestDeadAt = e.t;
  }

  /** The detach deadline: a detach that began did not return. */
  deadline(tm: Timer<Payload>, p: Payload & { k: "detach" }): void {
    const c = this.c;
    const dev = p.dev;
    if (!c.guestJudgeable(tm)) return;
    dev.detachTimer = null;
    if (dev.attempt !== p.attempt || dev.livenessReported || dev.state === "freed") return;
    dev.livenessReported = true;
    const h = holdersOf(dev, undefined, c.texts);
    const sick = dev.unload !== null && dev.nic !== null && dev.nic.removeEvent !== null;
    const rule = sick ? "sick-case-completes" : "detach-completes";
    c.exercise(rule);
    c.violate(rule, `${dev.name}: detach (${p.attempt.force ? "DETACH_FORCE" : "flags 0"}${p.attempt.thread ? `, thread ${p.attempt.thread}` : ""}) did not return within ${fmtDur(c.deadlines.detachNs)}${sick ? ` while module ${dev.unload!.name} unload and the removal of ${dev.nic!.id} race` : ""}${h.text ? `; waiting for: ${h.text}` : ""}`, { at: { t: p.attempt.t, index: p.attempt.index }, dev, holders: h.ids, tNs: tm.due });
  }
}
