// References: every reference taken is released, drains wait for them, and no new one is taken past its kind's cut-off.
// Judged in src/model/checker.ts by onRef (the ledger; the cut-offs are below), drainEnd, detachEnd, detachReported, onIf (detach-end).

import type { DeviceState, IfState } from "../automata.js";
import type { ObjectKind } from "../events.js";
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

/** What a cut-off depends on: the device's and interface's states and the detach's progress. */
export interface CutoffView {
  state: DeviceState;
  ifState: IfState;
  drains: ReadonlyMap<ObjectKind, number> | null;
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
