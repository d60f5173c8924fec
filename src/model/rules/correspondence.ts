// Host and guest: every host add attaches, every host remove detaches and frees, and the guest reports only what the host added.
// Judged in src/model/checker.ts by onHostAdd, onHostRemove, attachBegin, the attach and remove deadlines.

import { BOTH, rule } from "./define.js";

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
      "Every host remove makes the guest begin detaching that device within the deadline (no lost detach). A missing routing-socket departure alone is not a lost detach.",
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
