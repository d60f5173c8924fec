// The checker's per-object state: what it remembers of each NIC the host
// added, each live guest device (its automaton states, the detach in
// progress, its reference ledger and history) and each freed one (a
// tombstone), and the deadlines that may fire on them. The rule families
// (rules/*.ts) read and update it; only the core (core.ts) creates and drops it.

import type { DeviceState, IfState } from "./automata.js";
import type { At, ExecContext, HostAddEvent, HostRemoveEvent, ModelEvent, ObjectKind } from "./events.js";
import type { LogHistogram } from "./histogram.js";
import type { PendingUnload } from "./rules/modules.js";
import type { DeviceNodes } from "./rules/vnodes.js";
import { SmallMap, type ReadonlySmallMap } from "./small-map.js";
import type { Timer } from "./timers.js";

export const ENOENT = 2;

/** Kinds that must be drained before a detach returns and before the softc is freed. */
export const DRAINED: ReadonlySet<ObjectKind> = new Set<ObjectKind>([
  "device",
  "ifnet",
  "ifaddr",
  "usbnet",
  "softc-refcnt",
  "usb-task",
  "transfer",
  "netdev",
  "devsw",
]);
export const PSREF_KINDS: ReadonlySet<ObjectKind> = new Set<ObjectKind>(["ifnet", "ifaddr", "netdev"]);
export const DEVICE_KINDS: ReadonlySet<ObjectKind> = new Set<ObjectKind>(["device"]);
export const USB_TASK: ReadonlySet<ObjectKind> = new Set<ObjectKind>(["usb-task"]);

export interface Nic {
  id: string;
  kind: string;
  bus: string;
  mac: string;
  addEvent: HostAddEvent;
  removeEvent: HostRemoveEvent | null;
  dev: Dev | null;
  everLinked: boolean;
  attachTimer: Timer<Payload> | null;
  removeTimer: Timer<Payload> | null;
  finaliseTimer: Timer<Payload> | null;
  attachReported: boolean;
  removeReported: boolean;
  finaliseReported: boolean;
  deleted: boolean;
  freed: boolean;
}

export interface Attempt {
  t: number;
  index: number;
  force: boolean;
  thread: string;
  sawIfDetach: boolean;
  /** if_detach returned during this attempt. */
  ifDetached: boolean;
  /** COMMIT seen (dv_detached): device refs are refused from here on. */
  committed: boolean;
  /** The localcount drain began / ended in this attempt. */
  devDrainBegun: boolean;
  devDrained: boolean;
  /** usbnet_detach steps seen (DETACH_STEP). */
  dying: boolean;
  stopped: boolean;
  /** usb-task-waited was judged for this attempt. */
  tasksJudged: boolean;
}

export function newAttempt(t: number, index: number, force: boolean, thread: string): Attempt {
  return {
    t,
    index,
    force,
    thread,
    sawIfDetach: false,
    ifDetached: false,
    committed: false,
    devDrainBegun: false,
    devDrained: false,
    dying: false,
    stopped: false,
    tasksJudged: false,
  };
}

export type Unload = PendingUnload<Timer<Payload>>;

export interface Dev {
  name: string;
  instance: number;
  driver: string;
  bus: string;
  ifname: string;
  nic: Nic | null;
  state: DeviceState;
  ifState: IfState;
  attachBeginT: number;
  attempt: Attempt | null;
  /** A later detach racing a successful one (must return ENOENT). */
  loser: Attempt | null;
  /** Threads sleeping in config_detach_enter (DETACH_WAIT) on this device. */
  waiters: string[] | null;
  deactivateContext: ExecContext | null;
  /** Holders by kind; NO_REFS (shared, never written) while the device holds none: see ledgerToWrite. */
  ledger: ReadonlySmallMap<ObjectKind, SmallMap<string, number>>;
  descs: Map<string, string> | null;
  refTotal: number;
  /** Drains running, by kind, with their start; made at the device's first drain and kept. */
  drains: SmallMap<ObjectKind, number> | null;
  ring: ModelEvent[];
  ringPos: number;
  detachTimer: Timer<Payload> | null;
  livenessReported: boolean;
  vnodes: DeviceNodes | null;
  unload: Unload | null;
}

export interface Tomb {
  name: string;
  /** Freed inside config_detach (NetBSD): that detach's DETACH_END(0) is still to come. */
  endPending: boolean;
  removed: boolean;
  ifDetached: boolean;
  instance: number;
  nicId: string;
  ifname: string;
  /** The freed device's history ring, oldest at ringPos (ordered only when a verdict needs it). */
  ring: ModelEvent[];
  ringPos: number;
}

export type Payload =
  | { k: "attach"; nic: Nic }
  | { k: "remove"; nic: Nic }
  | { k: "finalise"; nic: Nic }
  | { k: "detach"; dev: Dev; attempt: Attempt }
  | { k: "unload"; unload: Unload }
  | { k: "telemetry"; from: At };

export interface Lat {
  attach: LogHistogram;
  detach: LogHistogram;
  removal: LogHistogram;
  drain: LogHistogram;
}

export interface ViolationCtx {
  at: At;
  dev?: Dev | null;
  nic?: Nic | null;
  device?: string;
  nicId?: string;
  holders?: string[];
  history?: readonly ModelEvent[];
  tNs?: number;
}

/**
 * The ledger of a device holding no references: one for all devices, never
 * written (ledgerToWrite replaces it first). A device made a Map at its attach
 * and another at its last release, which it mostly never wrote: a device that
 * takes its references in one burst now makes one Map, one that takes none none.
 */
export const NO_REFS: ReadonlySmallMap<ObjectKind, SmallMap<string, number>> = new SmallMap();

/** dev's ledger, to add to: its own, made now if it still has the shared NO_REFS. */
export function ledgerToWrite(dev: Dev): SmallMap<ObjectKind, SmallMap<string, number>> {
  const l = dev.ledger;
  if (l !== NO_REFS) return l as SmallMap<ObjectKind, SmallMap<string, number>>;
  const own = new SmallMap<ObjectKind, SmallMap<string, number>>();
  dev.ledger = own;
  return own;
}

/**
 * Holders still holding on `dev`, restricted to `kinds` (all when omitted):
 * their ids, and (texts) a description of each for a verdict's message, ""
 * without (a checker whose verdicts carry no text: CheckerOptions.texts).
 */
export function holdersOf(dev: Dev, kinds: ReadonlySet<ObjectKind> | undefined, texts: boolean): { ids: string[]; text: string } {
  const ids: string[] = [];
  // A ledger holds no count under 1 (a holder's last release deletes it): none at all when the total is 0.
  if (dev.refTotal === 0) return { ids, text: "" };
  const parts: string[] = [];
  // forEach, not entries(): see SmallMap.forEach.
  dev.ledger.forEach((m, kind) => {
    if (kinds && !kinds.has(kind)) return;
    m.forEach((n, holder) => {
      if (n <= 0) return;
      ids.push(holder);
      if (!texts) return;
      const desc = dev.descs?.get(holder);
      parts.push(`${kind} ref held by ${holder}${desc ? ` (${desc})` : ""}${n > 1 ? ` x${n}` : ""}`);
    });
  });
  return { ids, text: texts ? parts.join(", ") : "" };
}

/** References of these kinds held on `dev`. */
export function refsHeld(dev: Dev, kinds: ReadonlySet<ObjectKind>): number {
  if (dev.refTotal === 0) return 0;
  let n = 0;
  for (const [kind, m] of dev.ledger.entries()) if (kinds.has(kind)) for (const c of m.values()) n += c;
  return n;
}

export function ringList(dev: Dev): ModelEvent[] {
  if (dev.ringPos === 0) return dev.ring.slice();
  return [...dev.ring.slice(dev.ringPos), ...dev.ring.slice(0, dev.ringPos)];
}

/**
 * Events a tombstone keeps. Short on purpose: tombstones outlive many cycles,
 * and whatever they hold is promoted to the old generation.
 */
export const TOMB_HISTORY = 8;

export function lastOf(dev: Dev, n: number): ModelEvent[] {
  const ring = dev.ring;
  const len = ring.length;
  const k = len < n ? len : n;
  const out = new Array<ModelEvent>(k);
  // Oldest at ringPos: the last k events end just before it.
  for (let i = 0; i < k; i++) out[i] = ring[(dev.ringPos + len - k + i) % len]!;
  return out;
}

export function tombHistory(t: Tomb): ModelEvent[] {
  return t.ringPos === 0 ? t.ring : [...t.ring.slice(t.ringPos), ...t.ring.slice(0, t.ringPos)];
}

export function nicHistory(nic: Nic): ModelEvent[] {
  return nic.removeEvent ? [nic.addEvent, nic.removeEvent] : [nic.addEvent];
}

export function isModelEvent(x: At): x is ModelEvent {
  return typeof (x as { type?: unknown }).type === "string";
}
