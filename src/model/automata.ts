// Lifecycle automata as data, in the style of Linux's runtime-verification
// monitors (kernel/trace/rv/): a table of states and legal transitions per OS
// profile, checked per object. An event with no transition from the current
// state breaks the rule named in `forbidden` (most specific entry first), else
// `lifecycle-order`.

import type { ProfileName, RuleId } from "./rules.js";

export const DEVICE_STATES = [
  "absent",
  "present",
  "attaching",
  "attached",
  "running",
  "deactivated",
  "detaching",
  "detached",
  "freed",
] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export const DEVICE_EVENTS = [
  "host-add",
  "attach-begin",
  "attach-end",
  "attach-failed",
  "if-attach",
  "deactivate",
  "detach-begin",
  "veto",
  "detach-end",
  "detach-enoent",
  "free",
  "detach-wait",
  "commit",
] as const;
export type DeviceInput = (typeof DEVICE_EVENTS)[number];

export const IF_STATES = ["none", "attached", "deactivated", "detaching", "detached"] as const;
export type IfState = (typeof IF_STATES)[number];
export const IF_EVENTS = ["if-attach", "if-deactivate", "if-detach-begin", "if-detach-end", "access", "departure"] as const;
export type IfInput = (typeof IF_EVENTS)[number];

/**
 * A device state's position in DEVICE_STATES, or -1. A string switch: every
 * device and interface event steps an automaton, and each step looked up a
 * Map by state and then a Map by input (two hash lookups through builtins);
 * the cases compare internalized strings by pointer.
 * test/model/model.test.ts holds these to the arrays' order.
 */
export function deviceStateIndex(s: string): number {
  switch (s) {
    case "absent":
      return 0;
    case "present":
      return 1;
    case "attaching":
      return 2;
    case "attached":
      return 3;
    case "running":
      return 4;
    case "deactivated":
      return 5;
    case "detaching":
      return 6;
    case "detached":
      return 7;
    case "freed":
      return 8;
    default:
      return -1;
  }
}

/** A device input's position in DEVICE_EVENTS, or -1 (see deviceStateIndex). */
export function deviceInputIndex(e: string): number {
  switch (e) {
    case "host-add":
      return 0;
    case "attach-begin":
      return 1;
    case "attach-end":
      return 2;
    case "attach-failed":
      return 3;
    case "if-attach":
      return 4;
    case "deactivate":
      return 5;
    case "detach-begin":
      return 6;
    case "veto":
      return 7;
    case "detach-end":
      return 8;
    case "detach-enoent":
      return 9;
    case "free":
      return 10;
    case "detach-wait":
      return 11;
    case "commit":
      return 12;
    default:
      return -1;
  }
}

/** An interface state's position in IF_STATES, or -1 (see deviceStateIndex). */
export function ifStateIndex(s: string): number {
  switch (s) {
    case "none":
      return 0;
    case "attached":
      return 1;
    case "deactivated":
      return 2;
    case "detaching":
      return 3;
    case "detached":
      return 4;
    default:
      return -1;
  }
}

/** An interface input's position in IF_EVENTS, or -1 (see deviceStateIndex). */
export function ifInputIndex(e: string): number {
  switch (e) {
    case "if-attach":
      return 0;
    case "if-deactivate":
      return 1;
    case "if-detach-begin":
      return 2;
    case "if-detach-end":
      return 3;
    case "access":
      return 4;
    case "departure":
      return 5;
    default:
      return -1;
  }
}

/** All the states and inputs an automaton of one kind may use (a profile's may use fewer), with their positions. */
export interface Alphabet<S extends string, E extends string> {
  states: readonly S[];
  inputs: readonly E[];
  state: (s: S) => number;
  input: (e: E) => number;
}

export const DEVICE_ALPHABET: Alphabet<DeviceState, DeviceInput> = {
  states: DEVICE_STATES,
  inputs: DEVICE_EVENTS,
  state: deviceStateIndex,
  input: deviceInputIndex,
};
export const IF_ALPHABET: Alphabet<IfState, IfInput> = { states: IF_STATES, inputs: IF_EVENTS, state: ifStateIndex, input: ifInputIndex };

export interface Transition<S extends string, E extends string> {
  from: S;
  event: E;
  to: S;
  note?: string;
}

export interface Forbidden<S extends string, E extends string> {
  from: S | "*";
  event: E | "*";
  rule: RuleId;
}

export interface Automaton<S extends string, E extends string> {
  name: string;
  /** The kind's states and inputs: where Monitor finds a (state, input) pair's next state. */
  alphabet: Alphabet<S, E>;
  initial: S;
  states: readonly S[];
  events: readonly E[];
  transitions: readonly Transition<S, E>[];
  forbidden: readonly Forbidden<S, E>[];
}

type DevT = Transition<DeviceState, DeviceInput>;
type DevF = Forbidden<DeviceState, DeviceInput>;

const commonDevice: readonly DevT[] = [
  { from: "absent", event: "host-add", to: "present", note: "host device_add" },
  { from: "present", event: "attach-begin", to: "attaching", note: "config_attach / probe" },
  { from: "attaching", event: "attach-end", to: "attached" },
  { from: "attaching", event: "if-attach", to: "attaching", note: "interface attaches inside ca_attach" },
  { from: "attached", event: "if-attach", to: "running" },
  { from: "attached", event: "detach-begin", to: "detaching" },
  { from: "running", event: "detach-begin", to: "detaching" },
  { from: "detaching", event: "detach-end", to: "detached", note: "drains done" },
  { from: "detached", event: "detach-begin", to: "detached", note: "loser of a detach race: must return ENOENT" },
  { from: "detached", event: "detach-enoent", to: "detached", note: "already detached" },
];

const commonForbidden: readonly DevF[] = [
  { from: "absent", event: "attach-begin", rule: "guest-device-added-by-host" },
  { from: "attaching", event: "detach-begin", rule: "detach-after-attach-done" },
  { from: "detaching", event: "detach-begin", rule: "single-detach-in-progress" },
  { from: "detached", event: "detach-end", rule: "detach-once" },
  { from: "freed", event: "free", rule: "free-once" },
  { from: "freed", event: "detach-wait", rule: "no-event-after-free" },
  { from: "freed", event: "*", rule: "no-event-after-free" },
  { from: "*", event: "free", rule: "free-after-drain" },
];

export const NETBSD_DEVICE: Automaton<DeviceState, DeviceInput> = {
  name: "netbsd-device",
  alphabet: DEVICE_ALPHABET,
  initial: "absent",
  states: DEVICE_STATES,
  events: DEVICE_EVENTS,
  transitions: [
    ...commonDevice,
    { from: "attaching", event: "attach-failed", to: "attached", note: "attach error: config_attach keeps the device_t, with no interface, until it is detached" },
    { from: "running", event: "deactivate", to: "deactivated", note: "DVACT_DEACTIVATE (PCMCIA removal interrupt)" },
    { from: "attached", event: "deactivate", to: "deactivated" },
    { from: "deactivated", event: "detach-begin", to: "detaching", note: "event thread config_detach(FORCE)" },
    // config_detach clears DVF_ACTIVE only after ca_detach returns, and
    // config_deactivate acts on any device still DVF_ACTIVE: a card pulled
    // while an unforced detach (modunload, drvctl) runs is deactivated mid-detach.
    { from: "detaching", event: "deactivate", to: "detaching", note: "card removal interrupt during an unforced detach" },
    { from: "detaching", event: "veto", to: "running", note: "EBUSY without DETACH_FORCE: device stays" },
    // config_detach_enter sleeps while dv_pending or dv_detaching; the sleeper
    // later returns ENOENT, or runs the detach itself after a veto.
    { from: "attaching", event: "detach-wait", to: "attaching", note: "config_detach_enter sleeps while dv_pending" },
    { from: "detaching", event: "detach-wait", to: "detaching", note: "config_detach_enter sleeps while another lwp detaches" },
    { from: "detached", event: "detach-wait", to: "detached", note: "sleeper (free deferred by its deviter)" },
    // Threads report independently: the sleeper's report may come before the winner's DETACH_BEGIN.
    { from: "running", event: "detach-wait", to: "running", note: "sleeper reported before the winner's DETACH_BEGIN" },
    { from: "attached", event: "detach-wait", to: "attached", note: "sleeper reported before the winner's DETACH_BEGIN" },
    { from: "deactivated", event: "detach-wait", to: "deactivated", note: "sleeper reported before the winner's DETACH_BEGIN" },
    {
      from: "detaching",
      event: "commit",
      to: "detaching",
      note: "config_detach_commit (dv_detached): CUT-OFF for new device localcount refs",
    },
    {
      from: "detaching",
      event: "free",
      to: "freed",
      note: "FREE: config_devfree inside config_detach, after the localcount drain; DETACH_END(0) follows",
    },
    { from: "detached", event: "free", to: "freed", note: "FREE deferred: a device iterator held it (config_alldevs_exit)" },
    { from: "freed", event: "detach-end", to: "freed", note: "config_detach returns 0 after its own config_devfree (once)" },
  ],
  forbidden: commonForbidden,
};

export const LINUX_DEVICE: Automaton<DeviceState, DeviceInput> = {
  name: "linux-device",
  alphabet: DEVICE_ALPHABET,
  initial: "absent",
  states: DEVICE_STATES.filter((s) => s !== "deactivated"),
  events: DEVICE_EVENTS.filter((e) => e !== "deactivate" && e !== "detach-wait" && e !== "commit"),
  transitions: [
    ...commonDevice,
    // A failed probe leaves no instance: usbnet_probe's error path unbinds and
    // frees its netdev before returning the error, and no disconnect follows.
    { from: "attaching", event: "attach-failed", to: "freed", note: "probe error: usbnet_probe frees its netdev (free_netdev) before returning" },
    // usbnet_disconnect -> unregister_netdev (netdev_run_todo waits for the
    // refcount) -> free_netdev, all before usbnet_disconnect returns: the free
    // ends the detach. The checker still requires the interface unregistered,
    // every drain ended and no reference held (free-after-drain,
    // free-with-zero-refs).
    {
      from: "detaching",
      event: "free",
      to: "freed",
      note: "FREE: free_netdev inside usbnet_disconnect, after unregister_netdev drained; ends the detach",
    },
    { from: "detached", event: "free", to: "freed", note: "FREE: free_netdev" },
  ],
  forbidden: [{ from: "detaching", event: "veto", rule: "forced-detach-no-veto" }, ...commonForbidden],
};

type IfT = Transition<IfState, IfInput>;

const commonIf: readonly IfT[] = [
  { from: "none", event: "if-attach", to: "attached", note: "if_register / register_netdevice" },
  { from: "attached", event: "access", to: "attached" },
  { from: "attached", event: "if-detach-begin", to: "detaching", note: "if_detach (its if_deactivate): CUT-OFF for new psrefs" },
  { from: "detaching", event: "access", to: "detaching", note: "outputs already point at if_null*" },
  { from: "detaching", event: "if-detach-end", to: "detached", note: "psref holders drained" },
];

const ifForbidden: readonly Forbidden<IfState, IfInput>[] = [
  { from: "detached", event: "access", rule: "no-ifnet-access-after-if-detach" },
  // Two if_detach calls on one interface are two detaches doing the work at once (docs/netbsd.md#bug-double-detach).
  { from: "detaching", event: "if-detach-begin", rule: "single-detach-in-progress" },
  { from: "detached", event: "if-detach-begin", rule: "single-detach-in-progress" },
];

export const NETBSD_IF: Automaton<IfState, IfInput> = {
  name: "netbsd-ifnet",
  alphabet: IF_ALPHABET,
  initial: "none",
  states: IF_STATES,
  events: IF_EVENTS,
  transitions: [
    ...commonIf,
    { from: "attached", event: "if-deactivate", to: "deactivated", note: "if_deactivate: CUT-OFF for new ifnet psrefs (if_get skips it)" },
    { from: "deactivated", event: "access", to: "deactivated", note: "if_null* stubs answer" },
    { from: "deactivated", event: "if-detach-begin", to: "detaching" },
    { from: "deactivated", event: "if-deactivate", to: "deactivated" },
    { from: "detaching", event: "if-deactivate", to: "detaching", note: "card removal interrupt while if_detach drains" },
    // RTM_IFANNOUNCE IFAN_DEPARTURE goes out inside if_detach: before the
    // psref drain (7.x), after it (10.x). The agent reads it from the routing
    // socket, possibly late, and may miss it (full socket buffer).
    { from: "detaching", event: "departure", to: "detaching", note: "IFAN_DEPARTURE before the drain ends (7.x)" },
    { from: "detached", event: "departure", to: "detached", note: "IFAN_DEPARTURE after the drain (10.x) or read late" },
    { from: "deactivated", event: "departure", to: "deactivated", note: "IFAN_DEPARTURE seen before if_detach's begin was" },
    { from: "attached", event: "departure", to: "attached", note: "IFAN_DEPARTURE from an agent that sees no if_detach" },
  ],
  forbidden: ifForbidden,
};

export const LINUX_IF: Automaton<IfState, IfInput> = {
  name: "linux-netdev",
  alphabet: IF_ALPHABET,
  initial: "none",
  states: IF_STATES.filter((s) => s !== "deactivated"),
  events: IF_EVENTS.filter((e) => e !== "if-deactivate" && e !== "departure"),
  transitions: commonIf,
  forbidden: ifForbidden,
};

/** A compiled automaton: O(1) lookups by (state, event). */
export class Monitor<S extends string, E extends string> {
  /** The next state by (state, input) position in the alphabet, row by row; undefined: no transition. */
  private readonly next: (S | undefined)[];
  private readonly width: number;
  private readonly stateIx: (s: S) => number;
  private readonly inputIx: (e: E) => number;
  private readonly bad = new Map<string, Map<string, RuleId>>();

  constructor(readonly spec: Automaton<S, E>) {
    const a = spec.alphabet;
    this.stateIx = a.state;
    this.inputIx = a.input;
    this.width = a.inputs.length;
    this.next = new Array<S | undefined>(a.states.length * this.width).fill(undefined);
    for (const t of spec.transitions) {
      const i = a.state(t.from);
      const j = a.input(t.event);
      if (i < 0 || j < 0 || a.state(t.to) < 0) throw new Error(`automaton ${spec.name}: ${t.from} --${t.event}--> ${t.to} is outside its alphabet`);
      // A pair listed twice takes its last target, as Map.set did.
      this.next[i * this.width + j] = t.to;
    }
    for (const f of spec.forbidden) {
      let m = this.bad.get(f.from);
      if (m === undefined) this.bad.set(f.from, (m = new Map()));
      if (!m.has(f.event)) m.set(f.event, f.rule);
    }
  }

  /** The next state, or undefined when the event is illegal in `from`. */
  step(from: S, event: E): S | undefined {
    const i = this.stateIx(from);
    const j = this.inputIx(event);
    return i < 0 || j < 0 ? undefined : this.next[i * this.width + j];
  }

  /** The rule an illegal (state, event) breaks. */
  ruleFor(from: S, event: E): RuleId {
    return (
      this.bad.get(from)?.get(event) ??
      this.bad.get(from)?.get("*") ??
      this.bad.get("*")?.get(event) ??
      "lifecycle-order"
    );
  }
}

export interface ProfileAutomata {
  device: Automaton<DeviceState, DeviceInput>;
  ifnet: Automaton<IfState, IfInput>;
}

export const AUTOMATA: Record<ProfileName, ProfileAutomata> = {
  netbsd: { device: NETBSD_DEVICE, ifnet: NETBSD_IF },
  linux: { device: LINUX_DEVICE, ifnet: LINUX_IF },
};
