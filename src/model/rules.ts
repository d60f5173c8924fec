// The rule table. It is data so a kernel engineer can review it line by line
// (`plugstorm model rules` prints it); the checker refers to rules by id only.
// Principles are the numbered ones of the design's "The detach protocol being
// checked"; `basis` lists the anchors of docs/netbsd.md (in this repository)
// holding the facts a rule rests on, so each rule can be reviewed alone.

import type { CapabilityName } from "./events.js";

export type ProfileName = "netbsd" | "linux";
export type Severity = "warning" | "error" | "fatal";
export type Side = "host" | "guest" | "channel";

/** "refs" is satisfied by either kernel-refs or agent-refs. */
export type Observation = CapabilityName | "refs";

export interface Rule {
  id: string;
  statement: string;
  /** design.md principle 1..7, or null for host/channel/correspondence rules. */
  principle: number | null;
  basis: string;
  profiles: readonly ProfileName[];
  severity: Severity;
  side: Side;
  /** What the guest must be able to observe for the rule to be judged at all. */
  needs: readonly Observation[];
  /** Judged on a deadline (trace time), not on a single event. */
  liveness: boolean;
}

const BOTH: readonly ProfileName[] = ["netbsd", "linux"];
const NETBSD: readonly ProfileName[] = ["netbsd"];

function r(
  id: string,
  severity: Severity,
  side: Side,
  principle: number | null,
  profiles: readonly ProfileName[],
  needs: readonly Observation[],
  statement: string,
  basis: string,
  liveness = false,
): Rule {
  return { id, statement, principle, basis, profiles, severity, side, needs, liveness };
}

export const RULES: readonly Rule[] = [
  // ---- references (principle 1, 7)
  r("no-ref-after-detach-begin", "error", "guest", 7, BOTH, ["refs"],
    "No new reference is taken once its kind's cut-off has passed (until a veto puts the device back): device localcount refs from config_detach_commit on (NetBSD; the localcount drain when COMMIT is not reported), ifnet and ifaddr psrefs from if_deactivate on (if_detach's begin), usbnet refs from unp_dying on; Linux: from the detach's begin. Acquires before the cut-off are legal and are drained.",
    "docs/netbsd.md#device-lookup-acquire docs/netbsd.md#commit-point docs/netbsd.md#if-get docs/netbsd.md#measured"),
  r("release-only-held", "error", "guest", 1, BOTH, ["refs"],
    "Every release matches an earlier acquire by the same holder on the same object; nothing is released that is not held.",
    "docs/netbsd.md#localcount"),
  r("drain-completes-empty", "error", "guest", 1, BOTH, ["refs", "detach-phases"],
    "A reference drain (localcount, psref, unp_refcnt, sc_refcnt, netdev) ends only when no reference of that kind is held; a wait that gives up is a bug.",
    "docs/netbsd.md#usb-detach-wait docs/netbsd.md#bug-timed-out-waits"),
  r("if-detach-waits-for-psrefs", "error", "guest", 3, BOTH, ["refs", "ifnet"],
    "if_detach returns only after every psref holder on the interface and its addresses has released.",
    "docs/netbsd.md#if-detach docs/netbsd.md#psref"),
  r("detach-drains-refs", "error", "guest", 3, BOTH, ["refs", "device-lifecycle"],
    "A successful detach returns (and devmon reports device-detach) only after all references on the device, interface, driver (unp_refcnt, sc_refcnt) and its usb_tasks were drained.",
    "docs/netbsd.md#config-detach docs/netbsd.md#devmon docs/netbsd.md#usbnet-detach"),
  r("detach-end-after-if-detach", "error", "guest", 3, BOTH, ["ifnet", "detach-phases"],
    "A successful detach of a device with an interface returns only after if_detach has returned.",
    "docs/netbsd.md#usbnet-detach docs/netbsd.md#pcmcia"),
  r("free-after-drain", "fatal", "guest", 3, BOTH, ["free", "device-lifecycle"],
    "The softc is freed only after the reference drains. NetBSD: config_devfree runs inside config_detach after ca_detach and the localcount drain, so FREE comes before DETACH_END(0), or after it when a device iterator defers it; Linux: free_netdev inside usbnet_disconnect, only after unregister_netdev returned.",
    "docs/netbsd.md#devfree docs/netbsd.md#measured docs/netbsd.md#linux-usbnet-disconnect"),
  r("free-with-zero-refs", "fatal", "guest", 1, BOTH, ["free", "refs"],
    "Memory is freed only when the last reference is gone: no holder may still hold anything at free.",
    "docs/netbsd.md#devfree docs/netbsd.md#usb-detach-wait"),
  r("free-once", "fatal", "guest", 5, BOTH, ["free"],
    "A device instance is freed exactly once (no double free, also when unload and removal race).",
    "docs/netbsd.md#config-detach-enter docs/netbsd.md#bug-double-detach"),
  r("no-event-after-free", "fatal", "guest", 1, BOTH, ["free"],
    "Nothing touches a device instance after it is freed (use after free): no device, reference, interface or node event names it, and no sleeper in config_detach_enter wakes on it. Only the config_detach that freed it returns.",
    "docs/netbsd.md#devfree docs/netbsd.md#config-detach-enter docs/netbsd.md#bug-double-detach"),
  // ---- context (principle 2)
  r("detach-in-thread-context", "error", "guest", 2, BOTH, ["context", "detach-phases"],
    "config_detach runs in thread context (USB event thread, PCMCIA event thread, drvctl, module unload), never in interrupt or softint context.",
    "docs/netbsd.md#usb-unplug docs/netbsd.md#pcmcia"),
  r("no-sleep-in-interrupt", "error", "guest", 2, BOTH, ["context"],
    "Nothing that may sleep (reference drains, if_detach, device_lookup_acquire, module unload) runs in interrupt or softint context.",
    "docs/netbsd.md#pcmcia docs/netbsd.md#bug-wrong-context"),
  r("pcmcia-deactivate-before-detach", "error", "guest", 2, NETBSD, ["detach-phases"],
    "On PCMCIA card removal the driver is deactivated (in interrupt context) before the event thread's forced detach.",
    "docs/netbsd.md#pcmcia"),
  // ---- detach (principles 3, 4, 5)
  r("single-detach-in-progress", "fatal", "guest", 5, BOTH, ["detach-phases"],
    "At most one detach does the work per device: no second DETACH_BEGIN (ca_detach) or second if_detach while one runs. A second caller sleeps in config_detach_enter (DETACH_WAIT) and then returns ENOENT; that is legal.",
    "docs/netbsd.md#config-detach-enter docs/netbsd.md#bug-double-detach docs/netbsd.md#measured"),
  r("detach-once", "fatal", "guest", 5, BOTH, ["device-lifecycle"],
    "A device instance is detached successfully at most once; a detach after a successful one returns ENOENT.",
    "docs/netbsd.md#config-detach-enter"),
  r("detach-after-attach-done", "error", "guest", 7, BOTH, ["detach-phases"],
    "A detach begins only after the device's attach has returned (a caller may wait for it in config_detach_enter).",
    "docs/netbsd.md#config-detach-enter docs/netbsd.md#bug-detach-before-attach"),
  r("forced-detach-no-veto", "fatal", "guest", 4, BOTH, ["device-lifecycle"],
    "A forced detach (USB/PCMCIA removal; every Linux disconnect) never fails: a veto under DETACH_FORCE is a panic.",
    "docs/netbsd.md#config-detach docs/netbsd.md#bug-forced-veto"),
  r("veto-before-teardown", "error", "guest", 4, NETBSD, ["ifnet", "detach-phases"],
    "A driver vetoes an unforced detach (EBUSY) only before tearing anything down: after if_detach began it must finish.",
    "docs/netbsd.md#if-detach docs/netbsd.md#config-detach"),
  r("detach-completes", "error", "guest", 3, BOTH, ["detach-phases"],
    "A detach that began returns within the deadline (a hang names the holders it waits for). A held psref keeping it waiting after the routing socket's departure is normal until the deadline.",
    "docs/netbsd.md#bug-leaked-ref docs/netbsd.md#psref docs/netbsd.md#measured", true),
  // ---- interface
  r("no-ifnet-access-after-if-detach", "fatal", "guest", 3, BOTH, ["ifnet"],
    "Nothing touches an interface (ioctl, task, output, up/down) after if_detach returned.",
    "docs/netbsd.md#usbnet-detach docs/netbsd.md#bug-task-across-if-detach"),
  r("usb-task-waited", "fatal", "guest", 3, NETBSD, ["detach-steps", "refs"],
    "usbnet_detach waits for its usb_tasks after if_detach: no task queued on the device is still pending once the detach passes its second task wait (or reaches its unp_refcnt drain).",
    "docs/netbsd.md#usbnet-detach docs/netbsd.md#bug-task-across-if-detach"),
  // ---- vnodes (principle 6)
  r("no-method-after-revoke", "fatal", "guest", 6, NETBSD, ["vnodes"],
    "After vdevgone revoked a device node, no driver method (open, read, write, ioctl, close ...) is called on it again; the revoke's own forced close is not a call after it.",
    "docs/netbsd.md#vdevgone docs/netbsd.md#deadfs docs/netbsd.md#bug-revoke-close"),
  r("deadfs-answers", "error", "guest", 6, NETBSD, ["vnodes"],
    "Calls on a revoked node are answered by deadfs: open ENXIO, read EIO (0 on a tty), write EIO, ioctl EBADF, close/poll 0. Without the tty flag a read may answer 0 or EIO.",
    "docs/netbsd.md#deadfs"),
  r("close-once", "error", "guest", 6, NETBSD, ["vnodes"],
    "d_close runs once per open of a node: a file is closed once, and the process's last close and the revoke's forced close never both reach the driver.",
    "docs/netbsd.md#vdevgone docs/netbsd.md#bug-revoke-close"),
  // ---- modules (principles 4, 5)
  r("unload-frees-instances", "error", "guest", 4, BOTH, ["modules"],
    "A module unload ends successfully only after every instance it listed is detached and freed; otherwise it is vetoed. The agent's list is trusted: a built-in module's FINI detaches nothing.",
    "docs/netbsd.md#modules"),
  r("unload-completes", "error", "guest", 4, BOTH, ["modules"],
    "A module unload returns (success or veto) within the deadline.",
    "docs/netbsd.md#modules", true),
  r("sick-case-completes", "error", "guest", 5, BOTH, ["modules", "detach-phases"],
    "When a module unload and a card removal detach the same device, both paths complete within the deadline: one detach wins, the other waits and sees ENOENT.",
    "docs/netbsd.md#config-detach-enter docs/netbsd.md#modules", true),
  r("lifecycle-order", "error", "guest", 3, BOTH, ["device-lifecycle"],
    "Device events follow the profile's lifecycle automaton (absent -> present -> attaching -> attached -> running -> [deactivated] -> detaching -> detached -> freed; see docs/automata.md).",
    "docs/netbsd.md#config-detach docs/netbsd.md#config-attach"),
  r("guest-no-panic", "fatal", "guest", 4, BOTH, [],
    "The guest kernel does not panic.",
    "docs/netbsd.md#config-detach docs/netbsd.md#bug-forced-veto"),
  r("attach-succeeds", "warning", "guest", null, BOTH, ["device-lifecycle"],
    "The driver's attach of a hot-added NIC succeeds.",
    "docs/netbsd.md#cdce"),
  // ---- host/guest correspondence
  r("host-add-attaches", "error", "guest", null, BOTH, ["device-lifecycle"],
    "Every host add leads to a guest attach (or a reported attach failure) within the deadline.",
    "docs/netbsd.md#host-guest", true),
  r("host-remove-detaches", "error", "guest", 2, BOTH, ["device-lifecycle"],
    "Every host remove makes the guest begin detaching that device within the deadline (no lost detach). A missing routing-socket departure alone is not a lost detach.",
    "docs/netbsd.md#usb-unplug docs/netbsd.md#routing-socket docs/netbsd.md#host-guest", true),
  r("host-remove-frees", "error", "guest", 1, BOTH, ["device-lifecycle"],
    "Every host remove leads to a completed detach and free within the deadline; otherwise the device leaks, naming the holders still outstanding.",
    "docs/netbsd.md#bug-leaked-ref docs/netbsd.md#host-guest", true),
  r("guest-device-added-by-host", "error", "guest", null, BOTH, ["device-lifecycle"],
    "The guest reports no device the host did not add (joined by USB serial == QEMU id, or MAC).",
    "docs/netbsd.md#host-guest"),
  // ---- host side
  r("qemu-accepts-command", "error", "host", null, BOTH, [],
    "QEMU accepts every device_add / device_del plugstorm sends.",
    "docs/netbsd.md#qemu"),
  r("host-remove-finalised", "error", "host", null, BOTH, [],
    "Every device_del is finalised by a DEVICE_DELETED event within the deadline.",
    "docs/netbsd.md#qemu", true),
  r("host-action-completes", "error", "host", null, BOTH, [],
    "Every host action completes (no lost QMP connection, no command timeout).",
    "docs/netbsd.md#qemu"),
  r("machine-does-not-crash", "fatal", "host", null, BOTH, [],
    "The machine (QEMU) does not exit on its own.",
    "docs/netbsd.md#qemu"),
  r("profile-matches-guest", "warning", "host", null, BOTH, [],
    "The model profile matches the operating system the guest says it runs.",
    "docs/netbsd.md#telemetry"),
  // ---- channel
  r("no-frames-lost", "warning", "channel", null, BOTH, [],
    "No telemetry frame is lost, corrupted or dropped by the agent (verdicts after a loss may rest on missing events).",
    "docs/netbsd.md#telemetry"),
  r("guest-telemetry-present", "error", "channel", null, BOTH, [],
    "Guest telemetry arrives within the deadline after the machine starts when NICs are added.",
    "docs/netbsd.md#telemetry", true),
  r("commands-acknowledged", "warning", "channel", null, BOTH, [],
    "The guest agent acknowledges every command within its deadline.",
    "docs/netbsd.md#telemetry"),
];

export type RuleId = string;

export const RULE_BY_ID: ReadonlyMap<string, Rule> = new Map(RULES.map((x) => [x.id, x]));

export function ruleById(id: string): Rule {
  const rule = RULE_BY_ID.get(id);
  if (rule === undefined) throw new Error(`unknown rule id "${id}"`);
  return rule;
}

/**
 * Which rule catches each injectable bug of the simulated NetBSD guest
 * (src/sim/bugs.ts): the first verdict of a run with only that bug enabled.
 */
export const BUG_RULES: Record<string, string> = {
  "leak-ref": "host-remove-frees",
  "free-before-drain": "free-after-drain",
  "acquire-after-detach": "no-ref-after-detach-begin",
  "sleep-in-interrupt": "no-sleep-in-interrupt",
  "skip-deactivate": "pcmcia-deactivate-before-detach",
  "double-detach-race": "single-detach-in-progress",
  "task-after-if-detach": "usb-task-waited",
  "detach-before-attach-done": "detach-after-attach-done",
  "detach-wait-timeout": "drain-completes-empty",
  "method-after-revoke": "no-method-after-revoke",
  "forced-detach-veto": "forced-detach-no-veto",
  "unload-double-free": "free-once",
  "lost-detach": "host-remove-detaches",
  "free-under-sleeper": "no-event-after-free",
  "dclose-twice": "close-once",
};

/** The bug class (docs/netbsd.md, "Bug classes") each rule stands for. */
export const BUG_CLASS_RULES: Record<string, readonly string[]> = {
  "8.1 concurrent double detach": ["single-detach-in-progress", "detach-once", "no-event-after-free"],
  "8.2 task rescheduled across if_detach": ["usb-task-waited", "no-ifnet-access-after-if-detach"],
  "8.3 detach before attach completed": ["detach-after-attach-done"],
  "8.4 sleep in the wrong context": ["no-sleep-in-interrupt", "detach-in-thread-context"],
  "8.5 timed-out reference waits": ["drain-completes-empty"],
  "8.6 leaked reference -> drain hang": ["detach-completes", "host-remove-frees"],
  "8.7 revoke vs close/I/O": ["no-method-after-revoke", "close-once"],
  "8.8 forced detach failing": ["forced-detach-no-veto"],
};
