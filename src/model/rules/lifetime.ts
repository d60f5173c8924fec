// Lifetime: the softc is freed once, after the drains, with nothing held, and nothing touches it afterwards.
// Judged in src/model/checker.ts by free, freeInDetach, doubleFree, onTombDevice and every handler's tombstone lookup.

import { BOTH, rule } from "./define.js";

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
