// The rule table. It is data so a kernel engineer can review it line by line
// (`plugstorm model rules` prints it); the checker refers to rules by id only.
// Principles are the numbered ones of docs/design.md "The detach protocol
// being checked"; `basis` points at the NetBSD fact (docs/netbsd.md) or the
// design section a rule rests on.

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
    "No new reference is taken on a device, its interface or its transfers once it is deactivated or its detach has begun (until a veto puts it back).",
    "netbsd.md §1 device_lookup_acquire fails once detaching; §3 psref_target_destroy: caller guarantees no new refs"),
  r("release-only-held", "error", "guest", 1, BOTH, ["refs"],
    "Every release matches an earlier acquire by the same holder on the same object; nothing is released that is not held.",
    "netbsd.md §2 localcount_drain KASSERTs total > 0 (negative counts)"),
  r("drain-completes-empty", "error", "guest", 1, BOTH, ["refs", "detach-phases"],
    "A reference drain (localcount, psref, unp_refcnt, netdev) ends only when no reference of that kind is held; a wait that gives up is a bug.",
    "netbsd.md §4 usb_detach_wait times out after 60 s and carries on; §8.5"),
  r("if-detach-waits-for-psrefs", "error", "guest", 3, BOTH, ["refs", "ifnet"],
    "if_detach returns only after every psref holder on the interface has released.",
    "netbsd.md §3 if_detach: pserialize_perform + psref_target_destroy"),
  r("detach-drains-refs", "error", "guest", 3, BOTH, ["refs", "device-lifecycle"],
    "A successful detach returns only after all references on the device, interface and driver were drained.",
    "netbsd.md §1 config_detach step 7 localcount_drain; §4 usbnet_detach step 8"),
  r("detach-end-after-if-detach", "error", "guest", 3, BOTH, ["ifnet", "detach-phases"],
    "A successful detach of a device with an interface returns only after if_detach has returned.",
    "netbsd.md §4 usbnet_detach step 6; §5 dp8390_detach"),
  r("free-after-drain", "fatal", "guest", 3, BOTH, ["free", "device-lifecycle"],
    "The softc is freed only after the reference drains: NetBSD after config_detach succeeded (ca_detach, localcount drain); Linux inside usbnet_disconnect, only after unregister_netdev returned (netdev refcount drained).",
    "netbsd.md §1 config_detach step 10: config_devfree after localcount_drain; Linux usbnet_disconnect: unregister_netdev -> netdev_run_todo -> free_netdev"),
  r("free-with-zero-refs", "fatal", "guest", 1, BOTH, ["free", "refs"],
    "Memory is freed only when the last reference is gone: no holder may still hold anything at free.",
    "design.md principle 1"),
  r("free-once", "fatal", "guest", 5, BOTH, ["free"],
    "A device instance is freed exactly once (no double free, also when unload and removal race).",
    "netbsd.md §1 config_detach_enter comment; §8.1"),
  r("no-event-after-free", "fatal", "guest", 1, BOTH, ["free"],
    "Nothing touches a device instance after it is freed (use after free): no device, reference, interface or node event names it.",
    "netbsd.md §8.1 concurrent double detach -> UAF"),
  // ---- context (principle 2)
  r("detach-in-thread-context", "error", "guest", 2, BOTH, ["context", "detach-phases"],
    "config_detach runs in thread context (USB event thread, PCMCIA event thread, drvctl, module unload), never in interrupt or softint context.",
    "netbsd.md §4 usb_event_thread; §5 pcic_event_thread"),
  r("no-sleep-in-interrupt", "error", "guest", 2, BOTH, ["context"],
    "Nothing that may sleep (reference drains, if_detach, device_lookup_acquire, module unload) runs in interrupt or softint context.",
    "netbsd.md §5 DVACT_DEACTIVATE at splhigh must not sleep; §8.4"),
  r("pcmcia-deactivate-before-detach", "error", "guest", 2, NETBSD, ["detach-phases"],
    "On PCMCIA card removal the driver is deactivated (in interrupt context) before the event thread's forced detach.",
    "netbsd.md §5 pcic_intr_socket -> pcmcia_card_deactivate, then pcic_event_thread -> config_detach(FORCE)"),
  // ---- detach (principles 3, 4, 5)
  r("single-detach-in-progress", "fatal", "guest", 5, BOTH, ["detach-phases"],
    "At most one detach is in progress per device; a second one waits until the first returns.",
    "netbsd.md §1 config_detach_enter waits while dv_detaching; §8.1"),
  r("detach-once", "fatal", "guest", 5, BOTH, ["device-lifecycle"],
    "A device instance is detached successfully at most once; a detach after a successful one returns ENOENT.",
    "netbsd.md §1 config_detach step 2 (dv_del_gen -> ENOENT); design.md principle 5"),
  r("detach-after-attach-done", "error", "guest", 7, BOTH, ["detach-phases"],
    "A detach begins only after the device's attach has returned.",
    "netbsd.md §1 config_detach_enter waits while dv_pending; §8.3 (upl, kern/54495)"),
  r("forced-detach-no-veto", "fatal", "guest", 4, BOTH, ["device-lifecycle"],
    "A forced detach (USB/PCMCIA removal; every Linux disconnect) never fails: a veto under DETACH_FORCE is a panic.",
    "netbsd.md §1 config_detach step 5 panic(\"forced detach ... failed\"); §8.8"),
  r("veto-before-teardown", "error", "guest", 4, NETBSD, ["ifnet", "detach-phases"],
    "A driver vetoes an unforced detach (EBUSY) only before tearing anything down: after if_detach began it must finish.",
    "netbsd.md §3 if_detach cannot fail or veto; §1 veto leaves the device attached"),
  r("detach-completes", "error", "guest", 3, BOTH, ["detach-phases"],
    "A detach that began returns within the deadline (a hang names the holders it waits for).",
    "netbsd.md §8.6 leaked reference -> drain hang (psref_target_destroy has no timeout)", true),
  // ---- interface
  r("no-ifnet-access-after-if-detach", "fatal", "guest", 3, BOTH, ["ifnet"],
    "Nothing touches an interface (ioctl, task, output, up/down) after if_detach returned.",
    "netbsd.md §4 usbnet_detach step 7 (mcast task re-check); §8.2"),
  // ---- vnodes (principle 6)
  r("no-method-after-revoke", "fatal", "guest", 6, NETBSD, ["vnodes"],
    "After vdevgone revoked a device node, no driver method (open, read, write, ioctl, close ...) is called on it again.",
    "netbsd.md §2 vdevgone/spec_node_revoke, deadfs; §8.7"),
  r("deadfs-answers", "error", "guest", 6, NETBSD, ["vnodes"],
    "Calls on a revoked node are answered by deadfs: open ENXIO, read/write EIO (tty read 0), ioctl EBADF, close/poll 0.",
    "netbsd.md §2 dead_vnops.c 1.59"),
  r("close-once", "error", "guest", 6, NETBSD, ["vnodes"],
    "d_close runs once per open: a node closed by revoke is not closed again by the driver.",
    "netbsd.md §2 spec_node_revoke forces one VOP_CLOSE; §8.7"),
  // ---- modules (principles 4, 5)
  r("unload-frees-instances", "error", "guest", 4, BOTH, ["modules"],
    "A module unload ends successfully only after every instance of its driver is detached and freed; otherwise it is vetoed.",
    "netbsd.md §6 config_fini_component -> config_cfdata_detach -> config_detach(d, 0)"),
  r("unload-completes", "error", "guest", 4, BOTH, ["modules"],
    "A module unload returns (success or veto) within the deadline.",
    "netbsd.md §6 module_do_unload", true),
  r("sick-case-completes", "error", "guest", 5, BOTH, ["modules", "detach-phases"],
    "When a module unload and a card removal detach the same device, both paths complete within the deadline: one detach wins, the other sees ENOENT.",
    "design.md principle 5", true),
  r("lifecycle-order", "error", "guest", 3, BOTH, ["device-lifecycle"],
    "Device events follow the profile's lifecycle automaton (absent -> present -> attaching -> attached -> running -> [deactivated] -> detaching -> detached -> freed).",
    "netbsd.md §1 config_attach/config_detach sequence"),
  r("guest-no-panic", "fatal", "guest", 4, BOTH, [],
    "The guest kernel does not panic.",
    "netbsd.md §1 config_detach step 5; §8.8"),
  r("attach-succeeds", "warning", "guest", null, BOTH, ["device-lifecycle"],
    "The driver's attach of a hot-added NIC succeeds.",
    "netbsd.md §4 cdce_attach may bail out before usbnet_attach"),
  // ---- host/guest correspondence
  r("host-add-attaches", "error", "guest", null, BOTH, ["device-lifecycle"],
    "Every host add leads to a guest attach (or a reported attach failure) within the deadline.",
    "design.md host/guest correspondence", true),
  r("host-remove-detaches", "error", "guest", 2, BOTH, ["device-lifecycle"],
    "Every host remove makes the guest begin detaching that device within the deadline (no lost detach).",
    "design.md principle 2: as soon as the device is dead, removal starts; netbsd.md §4 uhub_explore", true),
  r("host-remove-frees", "error", "guest", 1, BOTH, ["device-lifecycle"],
    "Every host remove leads to a completed detach and free within the deadline; otherwise the device leaks, naming the holders still outstanding.",
    "design.md host/guest correspondence; netbsd.md §8.6", true),
  r("guest-device-added-by-host", "error", "guest", null, BOTH, ["device-lifecycle"],
    "The guest reports no device the host did not add (joined by USB serial == QEMU id, or MAC).",
    "design.md device identity"),
  // ---- host side
  r("qemu-accepts-command", "error", "host", null, BOTH, [],
    "QEMU accepts every device_add / device_del plugstorm sends.",
    "qemu.md"),
  r("host-remove-finalised", "error", "host", null, BOTH, [],
    "Every device_del is finalised by a DEVICE_DELETED event within the deadline.",
    "qemu.md device_del semantics", true),
  r("host-action-completes", "error", "host", null, BOTH, [],
    "Every host action completes (no lost QMP connection, no command timeout).",
    "design.md data flow"),
  r("machine-does-not-crash", "fatal", "host", null, BOTH, [],
    "The machine (QEMU) does not exit on its own.",
    "qemu.md"),
  r("machine-responsive", "error", "host", null, BOTH, [],
    "The machine keeps answering the host's QMP heartbeat; while it does not (stopped, hung), no deadline runs.",
    "a stopped QEMU process (SIGSTOP) answers no QMP command until SIGCONT, and its guest cannot run: its deadlines say nothing about the guest (test/qemu/frozen.test.ts)"),
  r("profile-matches-guest", "warning", "host", null, BOTH, [],
    "The model profile matches the operating system the guest says it runs.",
    "design.md guests"),
  // ---- channel
  r("no-frames-lost", "warning", "channel", null, BOTH, [],
    "No telemetry frame is lost, corrupted or dropped by the agent (verdicts after a loss may rest on missing events).",
    "design.md telemetry"),
  r("guest-telemetry-present", "error", "channel", null, BOTH, [],
    "Guest telemetry arrives within the deadline after the machine starts when NICs are added.",
    "design.md telemetry", true),
  r("commands-acknowledged", "warning", "channel", null, BOTH, [],
    "The guest agent acknowledges every command within its deadline.",
    "design.md telemetry"),
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
  "task-after-if-detach": "no-ifnet-access-after-if-detach",
  "detach-before-attach-done": "detach-after-attach-done",
  "detach-wait-timeout": "drain-completes-empty",
  "method-after-revoke": "no-method-after-revoke",
  "forced-detach-veto": "forced-detach-no-veto",
  "unload-double-free": "free-once",
  "lost-detach": "host-remove-detaches",
};

/** The netbsd.md §8 bug class each rule stands for. */
export const BUG_CLASS_RULES: Record<string, readonly string[]> = {
  "8.1 concurrent double detach": ["single-detach-in-progress", "detach-once", "no-event-after-free"],
  "8.2 task rescheduled across if_detach": ["no-ifnet-access-after-if-detach"],
  "8.3 detach before attach completed": ["detach-after-attach-done"],
  "8.4 sleep in the wrong context": ["no-sleep-in-interrupt", "detach-in-thread-context"],
  "8.5 timed-out reference waits": ["drain-completes-empty"],
  "8.6 leaked reference -> drain hang": ["detach-completes", "host-remove-frees"],
  "8.7 revoke vs close/I/O": ["no-method-after-revoke", "close-once"],
  "8.8 forced detach failing": ["forced-detach-no-veto"],
};
