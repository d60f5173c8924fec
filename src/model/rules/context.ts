// Context: what sleeps runs in thread context; PCMCIA removal deactivates in
// the interrupt first. These rules have no events of their own: the families
// whose events sleep judge them with cannotSleep (below) where they happen:
// DetachMonitor (config_detach, the PCMCIA detach), ReferenceMonitor (drains,
// device_lookup_acquire), InterfaceMonitor (if_detach), ModuleMonitor (unload).
// Tests: test/check/rules.test.ts (a breaking and a keeping trace per rule).

import type { ExecContext } from "../events.js";
import { BOTH, NETBSD, rule } from "./define.js";

export const CONTEXT_RULES = [
  rule({
    id: "detach-in-thread-context",
    severity: "error",
    side: "guest",
    principle: 2,
    profiles: BOTH,
    needs: ["context", "detach-phases"],
    watches: ["device:detach-begin", "device:detach-wait"],
    statement:
      "config_detach runs in thread context (USB event thread, PCMCIA event thread, drvctl, module unload), never in interrupt or softint context.",
    basis: "docs/netbsd.md#usb-unplug docs/netbsd.md#pcmcia",
  }),
  rule({
    id: "no-sleep-in-interrupt",
    severity: "error",
    side: "guest",
    principle: 2,
    profiles: BOTH,
    needs: ["context"],
    watches: ["device:drain-begin", "ref:acquire", "ifnet:detach-begin", "module:unload-begin"],
    statement:
      "Nothing that may sleep (reference drains, if_detach, device_lookup_acquire, module unload) runs in interrupt or softint context.",
    basis: "docs/netbsd.md#pcmcia docs/netbsd.md#bug-wrong-context",
  }),
  rule({
    id: "pcmcia-deactivate-before-detach",
    severity: "error",
    side: "guest",
    principle: 2,
    profiles: NETBSD,
    needs: ["detach-phases"],
    watches: ["device:deactivate", "device:detach-begin"],
    statement:
      "On PCMCIA card removal the driver is deactivated (in interrupt context) before the event thread's forced detach.",
    basis: "docs/netbsd.md#pcmcia",
  }),
] as const;

/** Execution contexts in which a thread may not sleep (spl raised, or a softint). */
export function cannotSleep(context: ExecContext): boolean {
  return context === "interrupt" || context === "softint";
}
