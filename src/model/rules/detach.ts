// Detach: one detach does the work, once, after attach, never vetoed when forced, and it completes; device events follow the profile's automaton.
// Judged in src/model/checker.ts by the device automaton (automata.ts: forbidden edges name these rules), detachBegin, detachWait, detachEnd, attachEnd, the detach deadline.

import { BOTH, NETBSD, rule } from "./define.js";

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
