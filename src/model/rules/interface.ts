// Interface: nothing touches an interface after if_detach, and no usb_task
// queued across it is left behind. The rules, then their check
// (InterfaceMonitor: ifnet events through the ifnet automaton, usbnet_detach's
// steps; judgeTasks for usb-task-waited, called where the detach passes its
// second task wait).
// Tests: test/check/rules.test.ts (a breaking and a keeping trace per rule),
// test/check/netbsd-orders.test.ts.

import type { Core } from "../core.js";
import type { DeviceEvent, IfEvent } from "../events.js";
import { PSREF_KINDS, USB_TASK, holdersOf, refsHeld, tombHistory, type Attempt, type Dev } from "../state.js";
import { cannotSleep } from "./context.js";
import { BOTH, NETBSD, rule } from "./define.js";

export const INTERFACE_RULES = [
  rule({
    id: "no-ifnet-access-after-if-detach",
    severity: "fatal",
    side: "guest",
    principle: 3,
    profiles: BOTH,
    needs: ["ifnet"],
    watches: ["ifnet:access", "ifnet:up", "ifnet:down"],
    statement:
      "Nothing touches an interface (ioctl, task, output, up/down) after if_detach returned.",
    basis: "docs/netbsd.md#usbnet-detach docs/netbsd.md#bug-task-across-if-detach",
  }),
  rule({
    id: "usb-task-waited",
    severity: "fatal",
    side: "guest",
    principle: 3,
    profiles: NETBSD,
    needs: ["detach-steps", "refs"],
    watches: ["ref:usb-task", "device:detach-step", "device:drain-begin", "device:detach-end", "device:free"],
    statement:
      "usbnet_detach waits for its usb_tasks after if_detach: no task queued on the device is still pending once the detach passes its second task wait (or reaches its unp_refcnt drain).",
    basis: "docs/netbsd.md#usbnet-detach docs/netbsd.md#bug-task-across-if-detach",
  }),
] as const;

const touchedAfterIfDetach = (dev: Dev, e: IfEvent): string =>
  `${dev.name}: interface ${e.ifname} touched (${e.kind}${e.accessor ? ` by ${e.accessor}` : ""}) after if_detach returned`;

/** Judges ifnet events and usbnet_detach's steps. */
export class InterfaceMonitor {
  private readonly X_IF_DETACH_WAITS_FOR_PSREFS: number;
  private readonly X_NO_EVENT_AFTER_FREE: number;
  private readonly X_NO_IFNET_ACCESS_AFTER_IF_DETACH: number;
  private readonly X_NO_SLEEP_IN_INTERRUPT: number;
  private readonly X_SINGLE_DETACH_IN_PROGRESS: number;

  constructor(private readonly c: Core) {
    this.X_IF_DETACH_WAITS_FOR_PSREFS = c.ix("if-detach-waits-for-psrefs");
    this.X_NO_EVENT_AFTER_FREE = c.ix("no-event-after-free");
    this.X_NO_IFNET_ACCESS_AFTER_IF_DETACH = c.ix("no-ifnet-access-after-if-detach");
    this.X_NO_SLEEP_IN_INTERRUPT = c.ix("no-sleep-in-interrupt");
    this.X_SINGLE_DETACH_IN_PROGRESS = c.ix("single-detach-in-progress");
  }

  onIf(e: IfEvent): void {
    const c = this.c;
    let dev = e.device ? c.device(e.device) : undefined;
    if (dev === undefined) dev = c.ifnames.get(e.ifname);
    if (dev === undefined) {
      const name = e.device || c.ifTombs.get(e.ifname) || "";
      const tomb = name ? c.findTomb(name, 0) : undefined;
      // Routing-socket announcements are messages the agent reads later, not
      // touches of the interface: a departure read after the free is normal.
      if (tomb === undefined || e.kind === "counters") return;
      if (e.kind === "departure" || e.kind === "arrival") {
        c.ex(this.X_NO_EVENT_AFTER_FREE);
        return;
      }
      const what = `interface ${e.ifname} ${e.kind}${e.accessor ? ` by ${e.accessor}` : ""}`;
      if (tomb.ifDetached && (e.kind === "access" || e.kind === "up" || e.kind === "down") && c.isActive("no-ifnet-access-after-if-detach")) {
        // The interface lives in the freed softc: the if_detach race of netbsd.md#bug-task-across-if-detach, now touching freed memory.
        c.ex(this.X_NO_IFNET_ACCESS_AFTER_IF_DETACH);
        c.violate("no-ifnet-access-after-if-detach", `${what} after if_detach returned and ${tomb.name} was freed (use after free)`, {
          at: e,
          device: tomb.name,
          nicId: tomb.nicId,
          history: [...tombHistory(tomb), e],
        });
      } else c.uaf(e, tomb, what);
      return;
    }
    c.ringPush(dev, e);
    switch (e.kind) {
      case "attach":
        if (e.ifname && dev.ifname !== e.ifname) {
          if (dev.ifname && c.ifnames.get(dev.ifname) === dev) c.ifnames.delete(dev.ifname);
          dev.ifname = e.ifname;
          c.ifnames.set(e.ifname, dev);
        }
        if (c.stepIf(dev, "if-attach", e) && dev.state === "attached") c.stepDev(dev, "if-attach", e);
        return;
      case "deactivate":
        c.stepIf(dev, "if-deactivate", e);
        return;
      case "detach-begin":
        c.ex(this.X_NO_SLEEP_IN_INTERRUPT);
        if (cannotSleep(e.context))
          c.violate("no-sleep-in-interrupt", `${dev.name}: if_detach of ${e.ifname} (sleeps) called in ${e.context} context`, { at: e, dev });
        if (dev.attempt) dev.attempt.sawIfDetach = true;
        if (dev.ifState === "detaching" || dev.ifState === "detached") c.ex(this.X_SINGLE_DETACH_IN_PROGRESS);
        c.stepIf(dev, "if-detach-begin", e, dev.ifState === "detaching" || dev.ifState === "detached"
          ? `${dev.name}: if_detach of ${e.ifname} called a second time while the first ${dev.ifState === "detaching" ? "still runs" : "already returned"} (two detaches doing the work)`
          : undefined);
        return;
      case "detach-end": {
        c.ex(this.X_IF_DETACH_WAITS_FOR_PSREFS);
        if (refsHeld(dev, PSREF_KINDS) > 0) {
          const h = holdersOf(dev, PSREF_KINDS, c.texts);
          c.violate("if-detach-waits-for-psrefs", `${dev.name}: if_detach of ${e.ifname} returned with psrefs held: ${h.text}`, { at: e, dev, holders: h.ids });
        }
        c.stepIf(dev, "if-detach-end", e);
        if (dev.attempt) dev.attempt.ifDetached = true;
        return;
      }
      case "departure":
      case "arrival":
        // IFAN_DEPARTURE is sent from inside if_detach, before (7.x) or after
        // (10.x) its psref drain, and may be dropped: it proves nothing about
        // the drain or the detach (netbsd.md#routing-socket).
        return;
      case "up":
      case "down":
      case "access":
        c.ex(this.X_NO_IFNET_ACCESS_AFTER_IF_DETACH);
        c.stepIf(dev, "access", e, touchedAfterIfDetach);
        return;
      case "counters":
        return;
    }
  }

  detachStep(dev: Dev, e: DeviceEvent): void {
    const a = dev.attempt;
    if (a === null) return;
    switch (e.step) {
      case "dying":
        a.dying = true;
        return;
      case "stop":
        a.dying = true;
        a.stopped = true;
        return;
      case "refs-drained":
        judgeTasks(this.c, dev, a, e, "unp_refcnt drained");
        return;
      default:
        return;
    }
  }
}

/**
 * usb-task-waited, judged once per detach at the first point after the
 * second usb_rem_task_wait: a task still queued there was rescheduled
 * between the first task wait and if_detach and nobody waited for it
 * (netbsd.md#bug-task-across-if-detach).
 */
export function judgeTasks(c: Core, dev: Dev, a: Attempt, e: DeviceEvent, where: string): void {
  if (a.tasksJudged || !a.ifDetached) return;
  a.tasksJudged = true;
  c.ex(c.X_USB_TASK_WAITED);
  if (refsHeld(dev, USB_TASK) > 0) {
    const h = holdersOf(dev, USB_TASK, c.texts);
    c.violate("usb-task-waited", `${dev.name}: usbnet_detach reached "${where}" with a usb_task still queued after if_detach (no second usb_rem_task_wait): ${h.text}`, { at: e, dev, holders: h.ids });
  }
}
