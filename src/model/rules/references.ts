// References: every reference taken is released, drains wait for them, and no new one is taken past its kind's cut-off.
// Judged in src/model/checker.ts by onRef (ledger, cut-offs netbsdCutoff/linuxCutoff), drainEnd, detachEnd, detachReported, onIf (detach-end).

import { BOTH, rule } from "./define.js";

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
