// The streaming checker: consumes model events one at a time, keeps one
// automaton + reference ledger per live device, and emits verdicts as rules
// break. Memory is O(live devices + outstanding references + outstanding
// deadlines): freed devices are dropped (a bounded tombstone set remembers
// them to catch use after free) and latencies go to fixed-size histograms.

import {
  AUTOMATA,
  Monitor,
  type DeviceInput,
  type DeviceState,
  type IfInput,
  type IfState,
} from "./automata.js";
import { resolveDeadlines, type Deadlines } from "./deadlines.js";
import {
  ALL_CAPABILITIES,
  describeEvent,
  isGuestEvent,
  type At,
  type CapabilityName,
  type DeviceEvent,
  type ExecContext,
  type HostAddEvent,
  type HostRemoveEvent,
  type IfEvent,
  type ModelEvent,
  type ModuleEvent,
  type ObjectKind,
  type RefEvent,
  type VnodeEvent,
} from "./events.js";
import { LogHistogram } from "./histogram.js";
import { RULES, type ProfileName, type Rule, type RuleId, type Severity, type Side } from "./rules.js";
import { fmtDur } from "./rules/define.js";
import { ModuleMonitor, type PendingUnload } from "./rules/modules.js";
import { linuxCutoff, netbsdCutoff } from "./rules/references.js";
import { NodeMonitor, nodeOf, type DeviceNodes, type NodeState } from "./rules/vnodes.js";
import { DeviceSideMonitor } from "./rules/device-side.js";
import { TimerQueue, type Timer } from "./timers.js";
import type { CheckResult, DriverLatency, HistoryEntry, RuleReport, Summary, Verdict } from "./verdict.js";

export interface CheckerOptions {
  profile: ProfileName;
  deadlines?: Partial<Deadlines>;
  onVerdict?: (v: Verdict) => void;
  /** Events kept per device for a verdict's history (default 16). */
  historySize?: number;
  /** Freed devices remembered to catch use after free (default 256). */
  tombstones?: number;
  /** Verdicts kept for the result (default 10000); later ones are counted only. */
  maxVerdicts?: number;
}

const ENOENT = 2;
const MAX_OPEN_ACTIONS = 4096;
const EIO = 5;
const ENXIO = 6;
const EBADF = 9;

/** Kinds that must be drained before a detach returns and before the softc is freed. */
const DRAINED: ReadonlySet<ObjectKind> = new Set<ObjectKind>([
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
const PSREF_KINDS: ReadonlySet<ObjectKind> = new Set<ObjectKind>(["ifnet", "ifaddr", "netdev"]);
const DEVICE_KINDS: ReadonlySet<ObjectKind> = new Set<ObjectKind>(["device"]);
const USB_TASK: ReadonlySet<ObjectKind> = new Set<ObjectKind>(["usb-task"]);

/** deadfs answers (dead_vnops.c); ops not listed are not judged. */

interface Nic {
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

interface Attempt {
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

function newAttempt(t: number, index: number, force: boolean, thread: string): Attempt {
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

type Unload = PendingUnload<Timer<Payload>>;

interface Dev {
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
  ledger: Map<ObjectKind, Map<string, number>>;
  descs: Map<string, string> | null;
  refTotal: number;
  drains: Map<ObjectKind, number> | null;
  ring: ModelEvent[];
  ringPos: number;
  detachTimer: Timer<Payload> | null;
  livenessReported: boolean;
  vnodes: DeviceNodes | null;
  unload: Unload | null;
}

interface Tomb {
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

type Payload =
  | { k: "attach"; nic: Nic }
  | { k: "remove"; nic: Nic }
  | { k: "finalise"; nic: Nic }
  | { k: "detach"; dev: Dev; attempt: Attempt }
  | { k: "unload"; unload: Unload }
  | { k: "telemetry"; from: At };

interface Lat {
  attach: LogHistogram;
  detach: LogHistogram;
  removal: LogHistogram;
  drain: LogHistogram;
}

interface ViolationCtx {
  at: At;
  dev?: Dev | null;
  nic?: Nic | null;
  device?: string;
  nicId?: string;
  holders?: string[];
  history?: readonly ModelEvent[];
  tNs?: number;
}

const EMPTY: readonly Verdict[] = Object.freeze([]) as readonly Verdict[];
const RULE_INDEX = new Map<RuleId, number>(RULES.map((r, i) => [r.id, i]));

function ruleIndex(id: RuleId): number {
  const i = RULE_INDEX.get(id);
  if (i === undefined) throw new Error(`internal: unknown rule ${id}`);
  return i;
}

// Rule indices for the hot path: counting a judged case is an array increment.
const X_ATTACH_SUCCEEDS = ruleIndex("attach-succeeds");
const X_COMMANDS_ACKNOWLEDGED = ruleIndex("commands-acknowledged");
const X_DETACH_AFTER_ATTACH_DONE = ruleIndex("detach-after-attach-done");
const X_DETACH_COMPLETES = ruleIndex("detach-completes");
const X_DETACH_DRAINS_REFS = ruleIndex("detach-drains-refs");
const X_DETACH_END_AFTER_IF_DETACH = ruleIndex("detach-end-after-if-detach");
const X_DETACH_IN_THREAD_CONTEXT = ruleIndex("detach-in-thread-context");
const X_DETACH_ONCE = ruleIndex("detach-once");
const X_DRAIN_COMPLETES_EMPTY = ruleIndex("drain-completes-empty");
const X_FORCED_DETACH_NO_VETO = ruleIndex("forced-detach-no-veto");
const X_FREE_AFTER_DRAIN = ruleIndex("free-after-drain");
const X_FREE_ONCE = ruleIndex("free-once");
const X_FREE_WITH_ZERO_REFS = ruleIndex("free-with-zero-refs");
const X_GUEST_DEVICE_ADDED_BY_HOST = ruleIndex("guest-device-added-by-host");
const X_GUEST_NO_PANIC = ruleIndex("guest-no-panic");
const X_GUEST_TELEMETRY_PRESENT = ruleIndex("guest-telemetry-present");
const X_HOST_ACTION_COMPLETES = ruleIndex("host-action-completes");
const X_HOST_ADD_ATTACHES = ruleIndex("host-add-attaches");
const X_HOST_REMOVE_DETACHES = ruleIndex("host-remove-detaches");
const X_HOST_REMOVE_FINALISED = ruleIndex("host-remove-finalised");
const X_HOST_REMOVE_FREES = ruleIndex("host-remove-frees");
const X_IF_DETACH_WAITS_FOR_PSREFS = ruleIndex("if-detach-waits-for-psrefs");
const X_LIFECYCLE_ORDER = ruleIndex("lifecycle-order");
const X_MACHINE_DOES_NOT_CRASH = ruleIndex("machine-does-not-crash");
const X_NO_EVENT_AFTER_FREE = ruleIndex("no-event-after-free");
const X_NO_FRAMES_LOST = ruleIndex("no-frames-lost");
const X_MACHINE_RESPONSIVE = ruleIndex("machine-responsive");
const X_NO_IFNET_ACCESS_AFTER_IF_DETACH = ruleIndex("no-ifnet-access-after-if-detach");
const X_NO_REF_AFTER_DETACH_BEGIN = ruleIndex("no-ref-after-detach-begin");
const X_NO_SLEEP_IN_INTERRUPT = ruleIndex("no-sleep-in-interrupt");
const X_PCMCIA_DEACTIVATE_BEFORE_DETACH = ruleIndex("pcmcia-deactivate-before-detach");
const X_PROFILE_MATCHES_GUEST = ruleIndex("profile-matches-guest");
const X_QEMU_ACCEPTS_COMMAND = ruleIndex("qemu-accepts-command");
const X_RELEASE_ONLY_HELD = ruleIndex("release-only-held");
const X_SICK_CASE_COMPLETES = ruleIndex("sick-case-completes");
const X_SINGLE_DETACH_IN_PROGRESS = ruleIndex("single-detach-in-progress");
const X_UNLOAD_COMPLETES = ruleIndex("unload-completes");
const X_UNLOAD_FREES_INSTANCES = ruleIndex("unload-frees-instances");
const X_VETO_BEFORE_TEARDOWN = ruleIndex("veto-before-teardown");
const X_USB_TASK_WAITED = ruleIndex("usb-task-waited");

export class Checker {
  readonly profile: ProfileName;
  readonly deadlines: Deadlines;
  private readonly onVerdict: ((v: Verdict) => void) | undefined;
  private readonly historySize: number;
  private readonly maxTombs: number;
  private readonly maxVerdicts: number;
  private readonly devMon: Monitor<DeviceState, DeviceInput>;
  private readonly ifMon: Monitor<IfState, IfInput>;
  private readonly alwaysForced: boolean;

  private readonly checks = new Float64Array(RULES.length);
  private readonly violations = new Float64Array(RULES.length);
  private readonly inProfile: boolean[];
  private active: boolean[];
  private observed: Set<CapabilityName> = new Set(ALL_CAPABILITIES);
  private capabilities: CapabilityName[] | null = null;

  private readonly nics = new Map<string, Nic>();
  private readonly nicsByMac = new Map<string, Nic>();
  private readonly devices = new Map<string, Dev>();
  private readonly ifnames = new Map<string, Dev>();
  private readonly tombs = new Map<string, Tomb>();
  private readonly ifTombs = new Map<string, string>();
  private readonly actions = new Map<number, { action: string; nic: Nic | null; nicId: string; event: At }>();
  private readonly looseLedger = new Map<string, Map<string, number>>();
  private readonly modules: ModuleMonitor<Dev, ViolationCtx, Timer<Payload>>;
  private readonly nodes = new NodeMonitor<ViolationCtx>({
    ex: (id) => this.ex(ruleIndex(id)),
    violate: (id, message, ctx) => {
      this.violate(id, message, ctx);
    },
    observes: (cap) => this.observed.has(cap),
  });
  private readonly deviceSide = new DeviceSideMonitor<ViolationCtx>(
    {
      ex: (id) => this.ex(ruleIndex(id)),
      violate: (id, message, ctx) => {
        this.violate(id, message, ctx);
      },
      observes: (cap) => this.observed.has(cap),
    },
    (e, device) => ({ at: e, nicId: e.nicId, ...(device ? { device } : {}) }),
  );
  private readonly timers = new TimerQueue<Payload>();
  /** Trace time the machine stopped answering the host's heartbeat; -1 while it answers. */
  private unreachableSince = -1;
  private readonly lat = new Map<string, Lat>();

  private all: Verdict[] = [];
  private droppedVerdicts = 0;
  private batch: Verdict[] | null = null;
  private now = 0;
  private events = 0;
  private guestFrames = 0;
  private telemetryTimer: Timer<Payload> | null = null;
  private telemetryDue = -1;
  private telemetryFired = false;
  private telemetryArmed = false;
  private guestDeadAt = -1;
  private framesLost = 0;
  private corrupt = 0;
  private lastDropped = 0;
  private lastEventsLost = 0;
  private devicesSeen = 0;
  private nicsAdded = 0;
  private nicsRemoved = 0;
  private cycles = 0;
  private detaches = 0;
  private vetoes = 0;
  private maxRefs = { count: 0, device: "", nicId: "", tNs: 0 };
  private bySide: Record<Side, number> = { host: 0, guest: 0, channel: 0 };
  private bySeverity: Record<Severity, number> = { warning: 0, error: 0, fatal: 0 };
  private finished = false;
  private machineSeen = false;
  /** The guest reports localcount drains (DRAIN device): a free in a detach must follow one. */
  private seesDeviceDrain = false;

  constructor(opts: CheckerOptions) {
    if (opts.profile !== "netbsd" && opts.profile !== "linux")
      throw new Error(`unknown model profile "${String(opts.profile)}"; known: netbsd, linux`);
    this.profile = opts.profile;
    this.deadlines = resolveDeadlines(opts.deadlines);
    this.onVerdict = opts.onVerdict;
    this.historySize = Math.max(1, opts.historySize ?? 16);
    this.maxTombs = Math.max(1, opts.tombstones ?? 256);
    this.maxVerdicts = Math.max(0, opts.maxVerdicts ?? 10000);
    this.devMon = new Monitor(AUTOMATA[this.profile].device);
    this.ifMon = new Monitor(AUTOMATA[this.profile].ifnet);
    this.alwaysForced = this.profile === "linux";
    this.inProfile = RULES.map((r) => r.profiles.includes(this.profile));
    this.active = this.computeActive();
    this.modules = new ModuleMonitor<Dev, ViolationCtx, Timer<Payload>>({
      ex: (id) => this.ex(ruleIndex(id)),
      violate: (id, message, ctx) => {
        this.violate(id, message, ctx);
      },
      observes: (cap) => this.observed.has(cap),
      device: (name) => this.devices.get(name),
      removedNic: (d) => (d.nic !== null && d.nic.removeEvent !== null ? d.nic.id : ""),
      removedAfterFree: (name) => this.tombs.get(name)?.removed === true,
      record: (d, e) => this.ringPush(d, e),
      holders: (d) => this.holdersOf(d),
      ctx: (at, dev, holders, tNs) => (tNs === undefined ? { at, dev, holders } : { at, dev, holders, tNs }),
      arm: (due, u) => this.timers.arm(due, { k: "unload", unload: u }),
      cancel: (t) => this.timers.cancel(t),
      unloadNs: this.deadlines.unloadNs,
    });
  }

  // ------------------------------------------------------------------ public

  /** Feeds one event; returns the verdicts it (and deadlines passed before it) produced. */
  push(e: ModelEvent): readonly Verdict[] {
    if (this.finished) throw new Error("Checker.push after finish()");
    this.batch = null;
    const t = e.t > this.now ? e.t : this.now;
    this.now = t;
    this.fireDue(t);
    this.events++;
    if (isGuestEvent(e)) this.onGuestFrame();
    switch (e.type) {
      case "device":
        this.onDevice(e);
        this.deviceSide.onGuestDevice(e);
        break;
      case "device-side":
        this.deviceSide.onTransfers(e);
        break;
      case "ref":
        this.onRef(e);
        break;
      case "ifnet":
        this.onIf(e);
        break;
      case "vnode":
        this.onVnode(e);
        break;
      case "module":
        this.onModule(e);
        break;
      case "host-add":
        this.onHostAdd(e);
        break;
      case "host-remove":
        this.onHostRemove(e);
        break;
      case "host-action":
        this.trackAction(e.actionId, { action: e.action, nic: this.nics.get(e.nicId) ?? null, nicId: e.nicId, event: e });
        break;
      case "host-result":
        this.onHostResult(e);
        break;
      case "qmp-device-deleted":
        this.onDeviceDeleted(e);
        break;
      case "hello":
        this.onHello(e);
        break;
      case "panic": {
        const dev = e.device ? this.devices.get(e.device) ?? null : null;
        if (dev) this.ringPush(dev, e);
        // config_detach panics instead of returning when a forced detach fails:
        // the panic is that detach's end.
        if (dev && dev.attempt && dev.attempt.force && dev.state === "detaching") {
          this.ex(X_FORCED_DETACH_NO_VETO);
          this.violate("forced-detach-no-veto", `${dev.name}: forced detach failed and the kernel panicked: ${e.message}`, { at: e, dev });
        }
        this.ex(X_GUEST_NO_PANIC);
        this.violate("guest-no-panic", `guest kernel panicked: ${e.message}`, { at: e, dev, device: e.device });
        this.guestDeadAt = e.t;
        break;
      }
      case "heartbeat":
        this.onHeartbeat(e);
        break;
      case "guest-other":
        break;
      case "channel":
        this.onChannel(e);
        break;
      case "machine":
        this.onMachine(e);
        break;
    }
    const out = this.batch;
    this.batch = null;
    return out ?? EMPTY;
  }

  /**
   * Moves trace time to tNs without an event and judges the deadlines due
   * before it. A live run calls this on a timer so a hang is reported while it
   * lasts; the verdicts are the ones a replay gives at its next event.
   */
  advance(tNs: number): readonly Verdict[] {
    if (this.finished) throw new Error("Checker.advance after finish()");
    if (!(tNs > this.now)) return EMPTY;
    this.batch = null;
    this.now = tNs;
    this.fireDue(tNs);
    const out = this.batch;
    this.batch = null;
    return out ?? EMPTY;
  }

  /** Judges deadlines due before endTNs (default: the last event's time) and summarises. */
  finish(endTNs?: number): CheckResult {
    if (!this.finished) {
      this.batch = null;
      const end = endTNs !== undefined && endTNs > this.now ? endTNs : this.now;
      this.now = end;
      if (this.telemetryTimer === null && this.guestFrames === 0 && this.events > 0) this.armTelemetry({ t: 0, index: 0 });
      this.fireDue(end);
      this.finished = true;
      // Rules judged on every frame are counted once here, not per frame on the hot path.
      if (this.guestFrames > 0) {
        this.ex(X_GUEST_NO_PANIC);
        this.ex(X_COMMANDS_ACKNOWLEDGED);
      }
      if (this.machineSeen) this.ex(X_MACHINE_DOES_NOT_CRASH);
      this.batch = null;
    }
    return { verdicts: this.all.slice(), summary: this.summary() };
  }

  // ------------------------------------------------------------------ rules plumbing

  private computeActive(): boolean[] {
    return RULES.map((r, i) => this.inProfile[i]! && r.needs.every((n) => this.isObserved(n)));
  }

  private isObserved(n: string): boolean {
    if (n === "refs") return this.observed.has("kernel-refs") || this.observed.has("agent-refs");
    return this.observed.has(n as CapabilityName);
  }

  private ex(i: number): void {
    if (this.active[i]) this.checks[i]! += 1;
  }

  private exercise(id: RuleId): void {
    this.ex(ruleIndex(id));
  }

  private isActive(id: RuleId): boolean {
    return this.active[RULE_INDEX.get(id)!]!;
  }

  /** Emits a verdict if the rule is judged in this run; returns whether it was emitted. */
  private violate(id: RuleId, message: string, c: ViolationCtx): boolean {
    const i = RULE_INDEX.get(id);
    if (i === undefined) throw new Error(`internal: unknown rule ${id}`);
    if (!this.active[i]) return false;
    const rule: Rule = RULES[i]!;
    this.checks[i]! += 1;
    this.violations[i]! += 1;
    const dev = c.dev ?? null;
    const nic = c.nic ?? dev?.nic ?? null;
    const hist = c.history ?? (dev ? ringList(dev) : nic ? nicHistory(nic) : [c.at as ModelEvent].filter(isModelEvent));
    const history: HistoryEntry[] = hist.map((x) => ({ index: x.index, tNs: x.t, text: describeEvent(x) }));
    const lossNote = this.framesLost > 0 && rule.side === "guest" ? ` (note: ${this.framesLost} telemetry frame(s) were lost before this)` : "";
    const v: Verdict = {
      rule: rule.id,
      statement: rule.statement,
      principle: rule.principle,
      side: rule.side,
      severity: rule.severity,
      device: c.device || dev?.name || "",
      nicId: c.nicId || nic?.id || "",
      holders: c.holders ?? [],
      message: message + lossNote,
      recordIndex: c.at.index,
      tNs: c.tNs ?? c.at.t,
      history,
    };
    this.bySide[v.side]++;
    this.bySeverity[v.severity]++;
    if (this.all.length < this.maxVerdicts) this.all.push(v);
    else this.droppedVerdicts++;
    (this.batch ??= []).push(v);
    this.onVerdict?.(v);
    return true;
  }

  // ------------------------------------------------------------------ helpers

  private ringPush(dev: Dev, e: ModelEvent): void {
    if (dev.ring.length < this.historySize) dev.ring.push(e);
    else {
      dev.ring[dev.ringPos] = e;
      dev.ringPos = (dev.ringPos + 1) % this.historySize;
    }
  }

  private latFor(driver: string): Lat {
    const key = driver || "(unknown)";
    let l = this.lat.get(key);
    if (l === undefined) {
      l = { attach: new LogHistogram(), detach: new LogHistogram(), removal: new LogHistogram(), drain: new LogHistogram() };
      this.lat.set(key, l);
    }
    return l;
  }

  private newDev(name: string, e: DeviceEvent | null, nic: Nic | null, state: DeviceState): Dev {
    const dev: Dev = {
      name,
      instance: e?.instance ?? 0,
      driver: e?.driver ?? "",
      bus: e?.bus ?? nic?.bus ?? "unknown",
      ifname: e?.ifname ?? "",
      nic,
      state,
      ifState: "none",
      attachBeginT: e?.t ?? this.now,
      attempt: null,
      loser: null,
      waiters: null,
      deactivateContext: null,
      ledger: new Map(),
      descs: null,
      refTotal: 0,
      drains: null,
      ring: [],
      ringPos: 0,
      detachTimer: null,
      livenessReported: false,
      vnodes: null,
      unload: null,
    };
    if (dev.bus === "unknown" && nic) dev.bus = nic.bus;
    if (nic) {
      nic.dev = dev;
      nic.everLinked = true;
      this.ringPush(dev, nic.addEvent);
      if (nic.removeEvent) this.ringPush(dev, nic.removeEvent);
    }
    const old = this.devices.get(name);
    if (old !== undefined) this.dropDev(old, false);
    this.devices.set(name, dev);
    if (dev.ifname) this.ifnames.set(dev.ifname, dev);
    this.devicesSeen++;
    return dev;
  }

  private joinNic(serial: string, mac: string): Nic | null {
    if (serial) {
      const n = this.nics.get(serial);
      if (n !== undefined) return n;
    }
    if (mac) {
      const n = this.nicsByMac.get(mac.toLowerCase());
      if (n !== undefined) return n;
    }
    return null;
  }

  /** Holders still holding on `dev`, restricted to `kinds` (all when omitted), as "kind:holder". */
  private holdersOf(dev: Dev, kinds?: ReadonlySet<ObjectKind>): { ids: string[]; text: string } {
    const ids: string[] = [];
    const parts: string[] = [];
    for (const [kind, m] of dev.ledger) {
      if (kinds && !kinds.has(kind)) continue;
      for (const [holder, n] of m) {
        if (n <= 0) continue;
        ids.push(holder);
        const desc = dev.descs?.get(holder);
        parts.push(`${kind} ref held by ${holder}${desc ? ` (${desc})` : ""}${n > 1 ? ` x${n}` : ""}`);
      }
    }
    return { ids, text: parts.join(", ") };
  }

  private refsHeld(dev: Dev, kinds: ReadonlySet<ObjectKind>): number {
    if (dev.refTotal === 0) return 0;
    let n = 0;
    for (const [kind, m] of dev.ledger) if (kinds.has(kind)) for (const c of m.values()) n += c;
    return n;
  }

  private findTomb(name: string, instance: number): Tomb | undefined {
    const tomb = this.tombs.get(name);
    if (tomb === undefined) return undefined;
    if (instance !== 0 && tomb.instance !== 0 && tomb.instance !== instance) return undefined;
    return tomb;
  }

  private uaf(at: ModelEvent, tomb: Tomb, what: string): void {
    this.ex(X_NO_EVENT_AFTER_FREE);
    this.violate("no-event-after-free", `${what} after ${tomb.name}${tomb.instance ? ` instance ${tomb.instance}` : ""} was freed (use after free)`, {
      at,
      device: tomb.name,
      nicId: tomb.nicId,
      history: [...tombHistory(tomb), at],
    });
  }

  /** Forgets a device: freed (tombstone kept) or replaced. */
  private dropDev(dev: Dev, freed: boolean): void {
    this.timers.cancel(dev.detachTimer);
    dev.detachTimer = null;
    if (this.devices.get(dev.name) === dev) this.devices.delete(dev.name);
    if (dev.ifname && this.ifnames.get(dev.ifname) === dev) this.ifnames.delete(dev.ifname);
    dev.state = "freed";
    if (!freed) return;
    if (dev.vnodes !== null) this.nodes.deviceFreed(dev.vnodes);
    const tomb: Tomb = { name: dev.name, endPending: false, removed: dev.nic?.removeEvent != null, ifDetached: dev.ifState === "detached", instance: dev.instance, nicId: dev.nic?.id ?? "", ifname: dev.ifname, ring: lastOf(dev, TOMB_HISTORY), ringPos: 0 };
    this.tombs.delete(dev.name);
    this.tombs.set(dev.name, tomb);
    if (this.tombs.size > this.maxTombs) this.tombs.delete(this.tombs.keys().next().value!);
    if (dev.ifname) {
      this.ifTombs.delete(dev.ifname);
      this.ifTombs.set(dev.ifname, dev.name);
      if (this.ifTombs.size > this.maxTombs) this.ifTombs.delete(this.ifTombs.keys().next().value!);
    }
    const nic = dev.nic;
    if (nic && nic.dev === dev) {
      nic.freed = true;
      if (nic.removeEvent) {
        this.ex(X_HOST_REMOVE_FREES);
        this.cycles++;
        this.latFor(dev.driver).removal.add(this.now - nic.removeEvent.t);
      }
      this.maybeDropNic(nic);
    }
  }

  private maybeDropNic(nic: Nic): void {
    if (nic.removeEvent === null || !nic.deleted) return;
    if (nic.dev !== null ? !nic.freed : nic.removeTimer !== null && !nic.removeTimer.cancelled) return;
    this.timers.cancel(nic.attachTimer);
    this.timers.cancel(nic.removeTimer);
    this.timers.cancel(nic.finaliseTimer);
    if (this.nics.get(nic.id) === nic) this.nics.delete(nic.id);
    if (nic.mac && this.nicsByMac.get(nic.mac) === nic) this.nicsByMac.delete(nic.mac);
  }

  /** Steps the device automaton; on an illegal event reports the rule the table names. */
  private stepDev(dev: Dev, input: DeviceInput, at: ModelEvent, what?: string): boolean {
    const to = this.devMon.step(dev.state, input);
    if (to !== undefined) {
      dev.state = to;
      this.ex(X_LIFECYCLE_ORDER);
      return true;
    }
    const rule = this.devMon.ruleFor(dev.state, input);
    this.exercise(rule);
    this.violate(rule, what ?? `${input} while ${dev.name} is ${dev.state}`, { at, dev });
    return false;
  }

  private stepIf(dev: Dev, input: IfInput, at: ModelEvent, what?: string): boolean {
    const to = this.ifMon.step(dev.ifState, input);
    if (to !== undefined) {
      dev.ifState = to;
      return true;
    }
    const rule = this.ifMon.ruleFor(dev.ifState, input);
    this.exercise(rule);
    this.violate(rule, what ?? `interface ${dev.ifname || dev.name}: ${input} while ${dev.ifState}`, { at, dev });
    return false;
  }

  // ------------------------------------------------------------------ device events

  private onDevice(e: DeviceEvent): void {
    let dev = this.devices.get(e.name);
    if (dev !== undefined && e.instance !== 0 && dev.instance !== 0 && e.instance !== dev.instance && e.kind !== "attach-begin") {
      const tomb = this.findTomb(e.name, e.instance);
      if (tomb) return this.onTombDevice(e, tomb);
    }
    if (e.kind === "attach-begin" || (dev === undefined && e.kind === "attach-end")) {
      dev = this.attachBegin(e);
      if (e.kind === "attach-begin") return;
    }
    if (dev === undefined) {
      const tomb = this.findTomb(e.name, e.instance);
      if (tomb) return this.onTombDevice(e, tomb);
      // A device the trace never saw attach (trace began mid-run): adopt it quietly.
      const state: DeviceState =
        e.kind === "free"
          ? "detached"
          : e.kind === "detach-end" || e.kind.startsWith("drain") || e.kind === "commit" || e.kind === "detach-step" || e.kind === "detach-reported"
            ? "detaching"
            : "running";
      dev = this.newDev(e.name, e, this.joinNic(e.serial, e.mac), state);
      if (state === "detaching") dev.attempt = newAttempt(e.t, e.index, e.force, e.thread);
    }
    this.ringPush(dev, e);
    if (e.driver && !dev.driver) dev.driver = e.driver;
    if (e.instance && !dev.instance) dev.instance = e.instance;
    if (e.ifname && !dev.ifname) {
      dev.ifname = e.ifname;
      this.ifnames.set(e.ifname, dev);
    }
    switch (e.kind) {
      case "attach-end":
        return this.attachEnd(dev, e);
      case "deactivate":
        if (this.stepDev(dev, "deactivate", e)) dev.deactivateContext = e.context;
        return;
      case "detach-begin":
        return this.detachBegin(dev, e);
      case "detach-end":
        return this.detachEnd(dev, e);
      case "drain-begin":
        this.ex(X_NO_SLEEP_IN_INTERRUPT);
        if (e.context === "interrupt" || e.context === "softint")
          this.violate("no-sleep-in-interrupt", `${dev.name}: ${e.objectKind} reference drain (sleeps) started in ${e.context} context`, { at: e, dev });
        (dev.drains ??= new Map()).set(e.objectKind, e.t);
        if (e.objectKind === "device") {
          this.seesDeviceDrain = true;
          if (dev.attempt) dev.attempt.devDrainBegun = true;
        } else if (e.objectKind === "usbnet" && dev.attempt) this.judgeTasks(dev, dev.attempt, e, "its unp_refcnt drain began");
        return;
      case "drain-end":
        return this.drainEnd(dev, e);
      case "free":
        return this.free(dev, e);
      case "detach-wait":
        return this.detachWait(dev, e);
      case "commit":
        if (this.stepDev(dev, "commit", e) && dev.attempt) dev.attempt.committed = true;
        return;
      case "detach-reported":
        return this.detachReported(dev, e);
      case "detach-step":
        return this.detachStep(dev, e);
    }
  }

  /** A device event naming a freed instance. */
  private onTombDevice(e: DeviceEvent, tomb: Tomb): void {
    if (e.kind === "free") return this.doubleFree(e, tomb);
    if (e.kind === "detach-end" && e.error === 0 && tomb.endPending) {
      // config_detach returning 0 after its own config_devfree (netbsd.md#devfree).
      tomb.endPending = false;
      tomb.ring.push(e);
      this.ex(X_DETACH_ONCE);
      this.ex(X_DETACH_DRAINS_REFS);
      this.ex(X_NO_EVENT_AFTER_FREE);
      return;
    }
    if (e.kind === "detach-end" && e.error === ENOENT)
      return this.uaf(e, tomb, `a caller sleeping in config_detach_enter on ${e.name}${e.thread ? ` (thread ${e.thread})` : ""} woke and returned ENOENT`);
    if (e.kind === "detach-wait")
      return this.uaf(e, tomb, `config_detach entered on ${e.name}${e.thread ? ` by ${e.thread}` : ""} (no deviter reference kept it alive)`);
    this.uaf(e, tomb, `${e.kind} of ${e.name}`);
  }

  /** DETACH_WAIT: a caller sleeps in config_detach_enter; it returns ENOENT or, after a veto, runs the detach. */
  private detachWait(dev: Dev, e: DeviceEvent): void {
    this.ex(X_SINGLE_DETACH_IN_PROGRESS);
    this.ex(X_DETACH_IN_THREAD_CONTEXT);
    if (e.context === "interrupt" || e.context === "softint")
      this.violate("detach-in-thread-context", `${dev.name}: config_detach called in ${e.context} context`, { at: e, dev });
    if (!this.stepDev(dev, "detach-wait", e)) return;
    (dev.waiters ??= []).push(e.thread);
  }

  /** Removes one sleeper (by thread when known); false when none waits. */
  private takeWaiter(dev: Dev, thread: string): boolean {
    const w = dev.waiters;
    if (w === null || w.length === 0) return false;
    let i = thread ? w.indexOf(thread) : -1;
    if (i < 0) {
      if (thread && w.every((x) => x !== "")) return false;
      i = thread ? w.indexOf("") : 0;
    }
    w.splice(i, 1);
    if (w.length === 0) dev.waiters = null;
    return true;
  }

  /** devmon's "device-detach": sent after the localcount drain (netbsd.md#devmon). */
  private detachReported(dev: Dev, e: DeviceEvent): void {
    this.ex(X_DETACH_DRAINS_REFS);
    const draining = dev.drains?.has("device") === true;
    if (draining || this.refsHeld(dev, DEVICE_KINDS) > 0) {
      const h = this.holdersOf(dev, DEVICE_KINDS);
      this.violate("detach-drains-refs", `${dev.name}: devmon reported device-detach ${draining ? "while the localcount drain runs" : "with device references outstanding"}${h.text ? `: ${h.text}` : ""}`, { at: e, dev, holders: h.ids });
    }
  }

  private detachStep(dev: Dev, e: DeviceEvent): void {
    const a = dev.attempt;
    if (a === null) return;
    switch (e.step) {
      case "dying":
        a.dying = true;
        return;
      case "stop":
        a.dying = true;
        a.stopped = true;
        return;
      case "refs-drained":
        this.judgeTasks(dev, a, e, "unp_refcnt drained");
        return;
      default:
        return;
    }
  }

  /**
   * usb-task-waited, judged once per detach at the first point after the
   * second usb_rem_task_wait: a task still queued there was rescheduled
   * between the first task wait and if_detach and nobody waited for it
   * (netbsd.md#bug-task-across-if-detach).
   */
  private judgeTasks(dev: Dev, a: Attempt, e: DeviceEvent, where: string): void {
    if (a.tasksJudged || !a.ifDetached) return;
    a.tasksJudged = true;
    this.ex(X_USB_TASK_WAITED);
    if (this.refsHeld(dev, USB_TASK) > 0) {
      const h = this.holdersOf(dev, USB_TASK);
      this.violate("usb-task-waited", `${dev.name}: usbnet_detach reached "${where}" with a usb_task still queued after if_detach (no second usb_rem_task_wait): ${h.text}`, { at: e, dev, holders: h.ids });
    }
  }

  private attachBegin(e: DeviceEvent): Dev {
    const old = this.devices.get(e.name);
    if (old !== undefined && old.state !== "freed") {
      this.ex(X_LIFECYCLE_ORDER);
      this.violate("lifecycle-order", `${e.name} attached again while the previous instance is ${old.state} (never freed)`, { at: e, dev: old });
    }
    let nic = this.joinNic(e.serial, e.mac);
    if (nic && nic.dev && nic.dev.state !== "freed" && nic.dev.name !== e.name) nic = null; // already joined elsewhere
    const dev = this.newDev(e.name, e, nic, nic ? "present" : "absent");
    this.ringPush(dev, e);
    this.ex(X_GUEST_DEVICE_ADDED_BY_HOST);
    if (this.stepDev(dev, "attach-begin", e, `guest attached ${e.name} (serial "${e.serial}", mac "${e.mac}") but the host added no such NIC`) === false)
      dev.state = "attaching";
    dev.attachBeginT = e.t;
    return dev;
  }

  private attachEnd(dev: Dev, e: DeviceEvent): void {
    const failed = e.error !== 0;
    if (!this.stepDev(dev, failed ? "attach-failed" : "attach-end", e)) return;
    const nic = dev.nic;
    this.ex(X_HOST_ADD_ATTACHES);
    if (nic) {
      this.timers.cancel(nic.attachTimer);
      nic.attachTimer = null;
    }
    this.latFor(dev.driver).attach.add(e.t - (nic && nic.dev === dev ? nic.addEvent.t : dev.attachBeginT));
    this.ex(X_ATTACH_SUCCEEDS);
    if (failed) this.violate("attach-succeeds", `attach of ${dev.name} failed with error ${e.error}`, { at: e, dev });
    // Linux: the failed probe already freed what it made; nothing will detach.
    if (dev.state === "freed") {
      this.dropDev(dev, true);
      return;
    }
    if (dev.ifState !== "none") dev.state = "running";
  }

  private detachBegin(dev: Dev, e: DeviceEvent): void {
    const force = e.force || this.alwaysForced;
    // A sleeper that runs the detach itself (the first one was vetoed) stops waiting.
    if (dev.waiters !== null && e.thread) this.takeWaiter(dev, e.thread);
    if (dev.state === "detaching" && !this.observed.has("commit-point")) {
      // An agent without DETACH_WAIT may report DETACH_BEGIN at config_detach's
      // entry, for the sleeper too: take it as one. Two detaches doing the work
      // are still caught by their evidence (a second if_detach, a second
      // success, an event after the free).
      this.ex(X_SINGLE_DETACH_IN_PROGRESS);
      (dev.waiters ??= []).push(e.thread);
      return;
    }
    this.ex(X_DETACH_IN_THREAD_CONTEXT);
    if (e.context === "interrupt" || e.context === "softint")
      this.violate("detach-in-thread-context", `${dev.name}: config_detach called in ${e.context} context`, { at: e, dev });
    if (dev.bus === "pcmcia" && force && dev.state !== "detached") {
      this.ex(X_PCMCIA_DEACTIVATE_BEFORE_DETACH);
      if (dev.state !== "deactivated")
        this.violate("pcmcia-deactivate-before-detach", `${dev.name}: forced PCMCIA detach without a prior deactivate (state ${dev.state})`, { at: e, dev });
      else if (dev.deactivateContext !== null && dev.deactivateContext !== "interrupt" && dev.deactivateContext !== "unknown" && this.observed.has("context"))
        this.violate("pcmcia-deactivate-before-detach", `${dev.name}: card-removal deactivate ran in ${dev.deactivateContext} context, not in the interrupt`, { at: e, dev });
    }
    this.ex(X_DETACH_AFTER_ATTACH_DONE);
    this.ex(X_SINGLE_DETACH_IN_PROGRESS);
    const attempt: Attempt = newAttempt(e.t, e.index, force, e.thread);
    const wasDetached = dev.state === "detached";
    if (!this.stepDev(dev, "detach-begin", e, dev.state === "detaching"
      ? `${dev.name}: a second detach (${force ? "DETACH_FORCE" : "flags 0"}${e.thread ? `, thread ${e.thread}` : ""}) began while the detach from ${dev.attempt?.thread || "another thread"} (record #${dev.attempt?.index ?? "?"}) is in progress`
      : dev.state === "attaching" ? `${dev.name}: detach began before attach returned` : undefined)) {
      if (dev.state === "attaching") {
        dev.state = "detaching";
        dev.attempt = attempt;
      } else if (dev.state === "detaching") dev.loser = attempt;
      return;
    }
    if (wasDetached) {
      dev.loser = attempt;
      return;
    }
    dev.attempt = attempt;
    dev.detachTimer = this.timers.arm(e.t + this.deadlines.detachNs, { k: "detach", dev, attempt });
    if (dev.nic?.removeEvent) this.ex(X_HOST_REMOVE_DETACHES);
  }

  private detachEnd(dev: Dev, e: DeviceEvent): void {
    this.ex(X_DETACH_ONCE);
    if (e.error === ENOENT) {
      if ((dev.state === "detaching" || dev.state === "detached") && this.takeWaiter(dev, e.thread)) return;
      if (dev.state === "detached" || dev.loser) {
        dev.loser = null;
        return;
      }
      this.ex(X_LIFECYCLE_ORDER);
      this.violate("lifecycle-order", `${dev.name}: detach returned ENOENT but ${dev.name} is ${dev.state}`, { at: e, dev });
      return;
    }
    if (dev.attempt === null && dev.state !== "detached" && dev.state !== "detaching") {
      if (this.observed.has("detach-phases")) {
        this.ex(X_LIFECYCLE_ORDER);
        this.violate("lifecycle-order", `${dev.name}: detach returned but no detach began`, { at: e, dev });
      }
      // Without DETACH_PHASES only completions are reported: the begin is implied.
      dev.attempt = newAttempt(e.t, e.index, e.force || this.alwaysForced, e.thread);
      dev.state = "detaching";
    }
    const attempt: Attempt = (dev.loser && dev.state === "detached" ? dev.loser : dev.attempt) ??
      newAttempt(e.t, e.index, e.force || this.alwaysForced, e.thread);
    if (e.error !== 0) {
      // A veto.
      this.ex(X_FORCED_DETACH_NO_VETO);
      this.vetoes++;
      if (attempt.force || e.force || this.alwaysForced) {
        this.violate("forced-detach-no-veto", `${dev.name}: forced detach failed with error ${e.error} (config_detach panics)`, { at: e, dev });
      } else {
        this.ex(X_VETO_BEFORE_TEARDOWN);
        if (attempt.sawIfDetach || attempt.committed)
          // config_detach KASSERTs that a failing ca_detach did not commit (docs/netbsd.md#config-detach).
          this.violate("veto-before-teardown", `${dev.name}: detach vetoed (error ${e.error}) after ${attempt.sawIfDetach ? "if_detach began" : "config_detach_commit"}`, { at: e, dev });
        else if (dev.state === "detaching" && this.stepDev(dev, "veto", e)) {
          // A veto leaves DVF_ACTIVE as it was: a device deactivated before or
          // during the vetoed detach stays deactivated (config_detach never
          // calls ca_activate; docs/netbsd.md#config-detach).
          dev.state = dev.deactivateContext !== null ? "deactivated" : dev.ifState === "none" ? "attached" : "running";
        }
      }
      if (dev.loser === attempt) dev.loser = null;
      else {
        dev.attempt = null;
        this.timers.cancel(dev.detachTimer);
        dev.detachTimer = null;
      }
      return;
    }
    // Success.
    if (dev.state === "detached") {
      this.violate("detach-once", `${dev.name}: detached successfully a second time${attempt.thread ? ` (thread ${attempt.thread})` : ""}; the later detach must return ENOENT`, { at: e, dev });
      dev.loser = null;
      return;
    }
    this.ex(X_DETACH_END_AFTER_IF_DETACH);
    if (dev.ifState === "attached" || dev.ifState === "deactivated" || dev.ifState === "detaching")
      this.violate("detach-end-after-if-detach", `${dev.name}: detach returned while interface ${dev.ifname || "?"} is ${dev.ifState} (if_detach ${dev.ifState === "detaching" ? "still running" : "never called"})`, { at: e, dev });
    this.ex(X_DETACH_DRAINS_REFS);
    if (this.refsHeld(dev, DRAINED) > 0) {
      const h = this.holdersOf(dev, DRAINED);
      this.violate("detach-drains-refs", `${dev.name}: detach returned with references outstanding: ${h.text}`, { at: e, dev, holders: h.ids });
    }
    if (dev.attempt) this.judgeTasks(dev, dev.attempt, e, "config_detach's return");
    if (!this.stepDev(dev, "detach-end", e)) return;
    this.detaches++;
    this.ex(X_DETACH_COMPLETES);
    this.timers.cancel(dev.detachTimer);
    dev.detachTimer = null;
    this.latFor(dev.driver).detach.add(e.t - (dev.attempt?.t ?? e.t));
    dev.attempt = null;
    if (!this.observed.has("free")) this.dropDev(dev, true);
  }

  private drainEnd(dev: Dev, e: DeviceEvent): void {
    if (e.objectKind === "device" && dev.attempt) dev.attempt.devDrained = true;
    const began = dev.drains?.get(e.objectKind);
    if (began !== undefined) {
      dev.drains!.delete(e.objectKind);
      this.latFor(dev.driver).drain.add(e.t - began);
    }
    this.ex(X_DRAIN_COMPLETES_EMPTY);
    const held = dev.refTotal === 0 ? undefined : dev.ledger.get(e.objectKind);
    if (held !== undefined && held.size > 0) {
      const h = this.holdersOf(dev, new Set<ObjectKind>([e.objectKind]));
      this.violate("drain-completes-empty", `${dev.name}: ${e.objectKind} drain ended with references still held: ${h.text}`, { at: e, dev, holders: h.ids });
    }
  }

  private free(dev: Dev, e: DeviceEvent): void {
    if (dev.state !== "detached" && !this.observed.has("device-lifecycle") && !this.observed.has("detach-phases")) {
      // Detach completion is not observed: a free says it completed.
      dev.state = "detached";
      dev.attempt = null;
    }
    this.ex(X_FREE_AFTER_DRAIN);
    this.ex(X_FREE_ONCE);
    let endPending = false;
    if (dev.state === "detaching" && dev.attempt !== null && this.devMon.step(dev.state, "free") === "freed") {
      // The profile frees inside the detach (NetBSD: config_devfree before
      // config_detach returns; Linux: free_netdev before usbnet_disconnect
      // returns): the free is the detach's completion.
      this.freeInDetach(dev, e);
      endPending = this.devMon.step("freed", "detach-end") === "freed";
    } else if (dev.state !== "detached") {
      const rule = this.devMon.ruleFor(dev.state, "free");
      const h = this.holdersOf(dev, DRAINED);
      this.exercise(rule);
      this.violate(rule, `${dev.name}: softc freed while ${dev.state}${dev.attempt ? " (detach still running)" : ""}${h.text ? `; still held: ${h.text}` : ""}`, { at: e, dev, holders: h.ids });
    } else {
      this.ex(X_FREE_WITH_ZERO_REFS);
      if (this.refsHeld(dev, DRAINED) > 0) {
        const h = this.holdersOf(dev, DRAINED);
        this.violate("free-with-zero-refs", `${dev.name}: softc freed with references outstanding: ${h.text}`, { at: e, dev, holders: h.ids });
      }
    }
    this.dropDev(dev, true);
    if (endPending) {
      const tomb = this.tombs.get(dev.name);
      if (tomb !== undefined) tomb.endPending = true;
    }
  }

  /** A free that completes a detach still running (the profile's automaton allows detaching -> freed). */
  private freeInDetach(dev: Dev, e: DeviceEvent): void {
    const a = dev.attempt!;
    this.judgeTasks(dev, a, e, "the free");
    const ifBusy = dev.ifState === "attached" || dev.ifState === "deactivated" || dev.ifState === "detaching";
    const draining = dev.drains !== null && dev.drains.size > 0 ? [...dev.drains.keys()].join(", ") : "";
    // After the commit, config_detach drains the localcount before config_devfree:
    // judged when the guest reports that drain at all (netbsd.md#devfree).
    const undrained =
      this.profile === "netbsd" &&
      !a.devDrained &&
      (a.devDrainBegun || (a.committed && (this.seesDeviceDrain || this.observed.has("detach-phases"))));
    if (ifBusy || draining || undrained) {
      const h = this.holdersOf(dev, DRAINED);
      const why = ifBusy
        ? `interface ${dev.ifname || "?"} is ${dev.ifState} (${this.profile === "netbsd" ? "if_detach" : "unregister"} ${dev.ifState === "detaching" ? "still waiting for its references" : "never called"})`
        : draining
          ? `the ${draining} drain has not ended`
          : "config_detach_commit ran but the localcount drain has not";
      this.violate("free-after-drain", `${dev.name}: freed during its detach while ${why}${h.text ? `; still held: ${h.text}` : ""}`, { at: e, dev, holders: h.ids });
    } else {
      this.ex(X_FREE_WITH_ZERO_REFS);
      if (this.refsHeld(dev, DRAINED) > 0) {
        const h = this.holdersOf(dev, DRAINED);
        this.violate("free-with-zero-refs", `${dev.name}: freed with references outstanding: ${h.text}`, { at: e, dev, holders: h.ids });
      }
    }
    this.detaches++;
    this.ex(X_DETACH_COMPLETES);
    this.timers.cancel(dev.detachTimer);
    dev.detachTimer = null;
    this.latFor(dev.driver).detach.add(e.t - (dev.attempt?.t ?? e.t));
    dev.attempt = null;
  }

  private doubleFree(e: DeviceEvent, tomb: Tomb): void {
    this.ex(X_FREE_ONCE);
    this.violate("free-once", `${tomb.name}${tomb.instance ? ` instance ${tomb.instance}` : ""} freed a second time (double free)`, {
      at: e,
      device: tomb.name,
      nicId: tomb.nicId,
      history: [...tombHistory(tomb), e],
    });
  }

  // ------------------------------------------------------------------ references

  private resolveRefDev(e: RefEvent): { dev: Dev | undefined; name: string } {
    if (e.device) return { dev: this.devices.get(e.device), name: e.device };
    if (e.objectKind === "ifnet" || e.objectKind === "netdev" || e.objectKind === "ifaddr") {
      const d = this.ifnames.get(e.object) ?? this.devices.get(e.object);
      return { dev: d, name: d?.name ?? this.ifTombs.get(e.object) ?? e.object };
    }
    return { dev: this.devices.get(e.object), name: e.object };
  }

  private onRef(e: RefEvent): void {
    const { dev, name } = this.resolveRefDev(e);
    if (dev === undefined) {
      const tomb = this.findTomb(name, 0);
      if (tomb) {
        // A lookup refusing a freed device is the right answer; anything else touches freed memory.
        if (e.kind === "acquire-failed") this.ex(X_NO_EVENT_AFTER_FREE);
        else this.uaf(e, tomb, `${e.kind} of ${e.objectKind} ${e.object} by ${e.holder}`);
        return;
      }
      this.looseRef(e);
      return;
    }
    this.ringPush(dev, e);
    if (e.kind === "acquire-failed") {
      this.ex(X_NO_REF_AFTER_DETACH_BEGIN);
      return;
    }
    if (e.kind === "acquire") {
      this.ex(X_NO_SLEEP_IN_INTERRUPT);
      this.ex(X_NO_REF_AFTER_DETACH_BEGIN);
      if (e.objectKind === "device" && (e.context === "interrupt" || e.context === "softint")) {
        this.violate("no-sleep-in-interrupt", `${dev.name}: device_lookup_acquire (may sleep) by ${e.holder} in ${e.context} context`, { at: e, dev, holders: [e.holder] });
      } else {
        const past = this.profile === "netbsd" ? netbsdCutoff(dev, e.objectKind) : linuxCutoff(dev, e.objectKind);
        if (past !== null)
          this.violate("no-ref-after-detach-begin", `${dev.name}: ${e.holder}${e.holderDesc ? ` (${e.holderDesc})` : ""} acquired a ${e.objectKind} reference on ${e.object} after ${past}`, { at: e, dev, holders: [e.holder] });
      }
      let m = dev.ledger.get(e.objectKind);
      if (m === undefined) dev.ledger.set(e.objectKind, (m = new Map()));
      m.set(e.holder, (m.get(e.holder) ?? 0) + 1);
      if (e.holderDesc) (dev.descs ??= new Map()).set(e.holder, e.holderDesc);
      dev.refTotal++;
      if (dev.refTotal > this.maxRefs.count) this.maxRefs = { count: dev.refTotal, device: dev.name, nicId: dev.nic?.id ?? "", tNs: e.t };
      return;
    }
    // release
    this.ex(X_RELEASE_ONLY_HELD);
    const m = dev.ledger.get(e.objectKind);
    const n = m?.get(e.holder) ?? 0;
    if (n <= 0) {
      this.violate("release-only-held", `${dev.name}: ${e.holder} released a ${e.objectKind} reference on ${e.object} it does not hold`, { at: e, dev, holders: [e.holder] });
      return;
    }
    if (n === 1) {
      m!.delete(e.holder);
      dev.descs?.delete(e.holder);
    } else m!.set(e.holder, n - 1);
    dev.refTotal--;
  }

  /** References on objects that belong to no known device (module refs, trace began mid-run). */
  private looseRef(e: RefEvent): void {
    if (e.kind === "acquire-failed") return;
    const key = `${e.objectKind}:${e.object}`;
    let m = this.looseLedger.get(key);
    if (e.kind === "acquire") {
      if (m === undefined) this.looseLedger.set(key, (m = new Map()));
      m.set(e.holder, (m.get(e.holder) ?? 0) + 1);
      return;
    }
    // A release without a seen acquire here may predate the trace; only judge what we saw.
    if (m === undefined) return;
    const n = m.get(e.holder) ?? 0;
    this.ex(X_RELEASE_ONLY_HELD);
    if (n <= 0) {
      this.violate("release-only-held", `${e.holder} released a ${e.objectKind} reference on ${e.object} it does not hold`, { at: e, device: e.device || e.object, holders: [e.holder] });
      return;
    }
    if (n === 1) m.delete(e.holder);
    else m.set(e.holder, n - 1);
    if (m.size === 0) this.looseLedger.delete(key);
  }

  // ------------------------------------------------------------------ interfaces

  private onIf(e: IfEvent): void {
    let dev = e.device ? this.devices.get(e.device) : undefined;
    if (dev === undefined) dev = this.ifnames.get(e.ifname);
    if (dev === undefined) {
      const name = e.device || this.ifTombs.get(e.ifname) || "";
      const tomb = name ? this.findTomb(name, 0) : undefined;
      // Routing-socket announcements are messages the agent reads later, not
      // touches of the interface: a departure read after the free is normal.
      if (tomb === undefined || e.kind === "counters") return;
      if (e.kind === "departure" || e.kind === "arrival") {
        this.ex(X_NO_EVENT_AFTER_FREE);
        return;
      }
      const what = `interface ${e.ifname} ${e.kind}${e.accessor ? ` by ${e.accessor}` : ""}`;
      if (tomb.ifDetached && (e.kind === "access" || e.kind === "up" || e.kind === "down") && this.isActive("no-ifnet-access-after-if-detach")) {
        // The interface lives in the freed softc: the if_detach race of netbsd.md#bug-task-across-if-detach, now touching freed memory.
        this.ex(X_NO_IFNET_ACCESS_AFTER_IF_DETACH);
        this.violate("no-ifnet-access-after-if-detach", `${what} after if_detach returned and ${tomb.name} was freed (use after free)`, {
          at: e,
          device: tomb.name,
          nicId: tomb.nicId,
          history: [...tombHistory(tomb), e],
        });
      } else this.uaf(e, tomb, what);
      return;
    }
    this.ringPush(dev, e);
    switch (e.kind) {
      case "attach":
        if (e.ifname && dev.ifname !== e.ifname) {
          if (dev.ifname && this.ifnames.get(dev.ifname) === dev) this.ifnames.delete(dev.ifname);
          dev.ifname = e.ifname;
          this.ifnames.set(e.ifname, dev);
        }
        if (this.stepIf(dev, "if-attach", e) && dev.state === "attached") this.stepDev(dev, "if-attach", e);
        return;
      case "deactivate":
        this.stepIf(dev, "if-deactivate", e);
        return;
      case "detach-begin":
        this.ex(X_NO_SLEEP_IN_INTERRUPT);
        if (e.context === "interrupt" || e.context === "softint")
          this.violate("no-sleep-in-interrupt", `${dev.name}: if_detach of ${e.ifname} (sleeps) called in ${e.context} context`, { at: e, dev });
        if (dev.attempt) dev.attempt.sawIfDetach = true;
        if (dev.ifState === "detaching" || dev.ifState === "detached") this.ex(X_SINGLE_DETACH_IN_PROGRESS);
        this.stepIf(dev, "if-detach-begin", e, dev.ifState === "detaching" || dev.ifState === "detached"
          ? `${dev.name}: if_detach of ${e.ifname} called a second time while the first ${dev.ifState === "detaching" ? "still runs" : "already returned"} (two detaches doing the work)`
          : undefined);
        return;
      case "detach-end": {
        this.ex(X_IF_DETACH_WAITS_FOR_PSREFS);
        if (this.refsHeld(dev, PSREF_KINDS) > 0) {
          const h = this.holdersOf(dev, PSREF_KINDS);
          this.violate("if-detach-waits-for-psrefs", `${dev.name}: if_detach of ${e.ifname} returned with psrefs held: ${h.text}`, { at: e, dev, holders: h.ids });
        }
        this.stepIf(dev, "if-detach-end", e);
        if (dev.attempt) dev.attempt.ifDetached = true;
        return;
      }
      case "departure":
      case "arrival":
        // IFAN_DEPARTURE is sent from inside if_detach, before (7.x) or after
        // (10.x) its psref drain, and may be dropped: it proves nothing about
        // the drain or the detach (netbsd.md#routing-socket).
        return;
      case "up":
      case "down":
      case "access":
        this.ex(X_NO_IFNET_ACCESS_AFTER_IF_DETACH);
        this.stepIf(dev, "access", e, `${dev.name}: interface ${e.ifname} touched (${e.kind}${e.accessor ? ` by ${e.accessor}` : ""}) after if_detach returned`);
        return;
      case "counters":
        return;
    }
  }

  // ------------------------------------------------------------------ vnodes

  /** Resolves the device a vnode event names; the node rules (rules/vnodes.ts) judge it. */
  private onVnode(e: VnodeEvent): void {
    const dev = e.device ? this.devices.get(e.device) : undefined;
    let vs: NodeState | undefined;
    if (dev === undefined) {
      const tomb = e.device ? this.findTomb(e.device, 0) : undefined;
      if (tomb && e.kind === "method-call") {
        this.uaf(e, tomb, `driver method ${e.op} on ${e.path}`);
        return;
      }
    } else {
      this.ringPush(dev, e);
      vs = nodeOf((dev.vnodes ??= new Map()), e.path);
    }
    this.nodes.on(e, vs, { at: e, dev: dev ?? null, device: e.device, holders: e.holder ? [e.holder] : [] });
  }

  // ------------------------------------------------------------------ modules

  private onModule(e: ModuleEvent): void {
    this.modules.on(e);
  }

  // ------------------------------------------------------------------ host side

  /** Actions awaiting their result; bounded, as some actions (guest commands) may never get one. */
  private trackAction(id: number, a: { action: string; nic: Nic | null; nicId: string; event: At }): void {
    this.actions.set(id, a);
    if (this.actions.size > MAX_OPEN_ACTIONS) this.actions.delete(this.actions.keys().next().value!);
  }

  private onHostAdd(e: HostAddEvent): void {
    this.nicsAdded++;
    const old = this.nics.get(e.nicId);
    if (old) {
      this.timers.cancel(old.attachTimer);
      this.timers.cancel(old.removeTimer);
      this.timers.cancel(old.finaliseTimer);
    }
    const nic: Nic = {
      id: e.nicId,
      kind: e.nicKind,
      bus: e.bus,
      mac: e.mac.toLowerCase(),
      addEvent: e,
      removeEvent: null,
      dev: null,
      everLinked: false,
      attachTimer: null,
      removeTimer: null,
      finaliseTimer: null,
      attachReported: false,
      removeReported: false,
      finaliseReported: false,
      deleted: false,
      freed: false,
    };
    nic.attachTimer = this.timers.arm(e.t + this.deadlines.attachNs, { k: "attach", nic });
    this.nics.set(e.nicId, nic);
    if (nic.mac) this.nicsByMac.set(nic.mac, nic);
    this.trackAction(e.actionId, { action: "add", nic, nicId: e.nicId, event: e });
    if (this.telemetryArmed && this.guestFrames === 0 && !this.telemetryFired) this.noTelemetry(e.t, e);
  }

  private onHostRemove(e: HostRemoveEvent): void {
    this.nicsRemoved++;
    const nic = this.nics.get(e.nicId) ?? null;
    this.trackAction(e.actionId, { action: "remove", nic, nicId: e.nicId, event: e });
    if (nic === null) return;
    nic.removeEvent = e;
    if (nic.dev) this.ringPush(nic.dev, e);
    else {
      // Pulled before the guest saw it: the guest need not ever report it.
      this.timers.cancel(nic.attachTimer);
      nic.attachTimer = null;
    }
    nic.removeTimer = this.timers.arm(e.t + this.deadlines.detachNs, { k: "remove", nic });
    nic.finaliseTimer = this.timers.arm(e.t + this.deadlines.finaliseNs, { k: "finalise", nic });
  }

  private onHostResult(e: ModelEvent & { type: "host-result" }): void {
    const a = this.actions.get(e.actionId);
    this.actions.delete(e.actionId);
    const nic = a?.nic ?? (e.nicId ? this.nics.get(e.nicId) ?? null : null);
    const what = a ? `${a.action}${a.nicId ? ` ${a.nicId}` : ""}` : `action ${e.actionId}`;
    switch (e.outcome) {
      case "refused":
        this.ex(X_QEMU_ACCEPTS_COMMAND);
        this.violate("qemu-accepts-command", `QEMU refused ${what}: ${e.message}`, { at: e, nic, nicId: e.nicId || a?.nicId || "" });
        if (nic && a?.action === "add") {
          this.timers.cancel(nic.attachTimer);
          nic.attachTimer = null;
          if (!nic.everLinked && this.nics.get(nic.id) === nic) this.nics.delete(nic.id);
        }
        if (nic && a?.action === "remove") {
          this.timers.cancel(nic.removeTimer);
          this.timers.cancel(nic.finaliseTimer);
          nic.removeEvent = null;
        }
        return;
      case "removal-pending":
      case "never-finalised":
        if (nic && (nic.finaliseReported || nic.deleted)) return;
        this.ex(X_HOST_REMOVE_FINALISED);
        this.violate("host-remove-finalised", `${what}: ${e.outcome === "never-finalised" ? "the machine stopped before the removal was finalised" : "no DEVICE_DELETED within the deadline"}${e.message ? ` (${e.message})` : ""}`, { at: e, nic, nicId: e.nicId || a?.nicId || "" });
        if (nic) {
          nic.finaliseReported = true;
          this.timers.cancel(nic.finaliseTimer);
        }
        return;
      case "failed":
        this.ex(X_HOST_ACTION_COMPLETES);
        this.violate("host-action-completes", `${what} failed: ${e.message}`, { at: e, nic, nicId: e.nicId || a?.nicId || "" });
        return;
      default:
        this.ex(X_QEMU_ACCEPTS_COMMAND);
        this.ex(X_HOST_ACTION_COMPLETES);
        return;
    }
  }

  private onDeviceDeleted(e: ModelEvent & { type: "qmp-device-deleted" }): void {
    const nic = this.nics.get(e.nicId);
    if (nic === undefined) return;
    nic.deleted = true;
    this.ex(X_HOST_REMOVE_FINALISED);
    this.timers.cancel(nic.finaliseTimer);
    nic.finaliseTimer = null;
    this.maybeDropNic(nic);
  }

  private onMachine(e: ModelEvent & { type: "machine" }): void {
    this.machineSeen = true;
    if (e.kind === "started") {
      this.guestDeadAt = -1;
      if (this.guestFrames === 0) this.armTelemetry(e);
      return;
    }
    if (e.kind === "unresponsive" || e.kind === "responsive") {
      // The host could not reach the machine: its verdict, and no deadline runs meanwhile.
      this.ex(X_MACHINE_RESPONSIVE);
      if (e.kind === "unresponsive" && this.unreachableSince < 0) {
        this.unreachableSince = e.t;
        this.violate("machine-responsive", `the machine stopped answering the host's QMP heartbeat${e.text ? `: ${e.text}` : ""}; deadlines are suspended until it answers`, { at: e });
      } else if (e.kind === "responsive" && this.unreachableSince >= 0) {
        this.timers.shift(e.t - this.unreachableSince);
        this.unreachableSince = -1;
      }
      return;
    }
    if (e.kind === "exited") {
      this.ex(X_MACHINE_DOES_NOT_CRASH);
      this.violate("machine-does-not-crash", `the machine exited on its own (${e.signal ? `signal ${e.signal}` : `code ${e.exitCode}`})${e.text ? `: ${e.text}` : ""}`, { at: e });
    }
    if (this.guestDeadAt < 0) this.guestDeadAt = e.t;
  }

  // ------------------------------------------------------------------ guest / channel

  private onGuestFrame(): void {
    if (this.guestFrames === 0) {
      this.timers.cancel(this.telemetryTimer);
      this.ex(X_GUEST_TELEMETRY_PRESENT);
    }
    this.guestFrames++;
  }

  private onHello(e: ModelEvent & { type: "hello" }): void {
    this.capabilities = e.capabilities.slice();
    this.observed = new Set(e.capabilities);
    this.active = this.computeActive();
    this.lastDropped = 0;
    this.lastEventsLost = 0;
    this.ex(X_PROFILE_MATCHES_GUEST);
    const expected = this.profile === "netbsd" ? ["netbsd", "sim-netbsd"] : ["linux"];
    if (e.os !== "unknown" && !expected.includes(e.os))
      this.violate("profile-matches-guest", `the guest says it runs ${e.os} but the run is checked with the ${this.profile} profile`, { at: e });
  }

  private onHeartbeat(e: ModelEvent & { type: "heartbeat" }): void {
    this.ex(X_NO_FRAMES_LOST);
    const dropped = e.framesDropped - this.lastDropped;
    const lost = e.eventsLost - this.lastEventsLost;
    this.lastDropped = Math.max(this.lastDropped, e.framesDropped);
    this.lastEventsLost = Math.max(this.lastEventsLost, e.eventsLost);
    if (dropped > 0 || lost > 0) {
      this.framesLost += Math.max(0, dropped);
      this.violate("no-frames-lost", `the guest agent reports ${dropped > 0 ? `${dropped} frame(s) dropped` : ""}${dropped > 0 && lost > 0 ? " and " : ""}${lost > 0 ? `${lost} kernel event(s) lost` : ""}`, { at: e });
    }
  }

  private onChannel(e: ModelEvent & { type: "channel" }): void {
    switch (e.kind) {
      case "seq-gap":
        this.ex(X_NO_FRAMES_LOST);
        this.framesLost += Math.max(0, e.lost);
        this.violate("no-frames-lost", `${e.lost} telemetry frame(s) lost (seq gap)${e.message ? `: ${e.message}` : ""}`, { at: e });
        return;
      case "corrupt":
      case "oversize":
        this.ex(X_NO_FRAMES_LOST);
        this.corrupt++;
        this.violate("no-frames-lost", `${e.kind === "corrupt" ? "corrupt" : "oversize"} telemetry frame, ${e.bytesSkipped} byte(s) skipped${e.message ? `: ${e.message}` : ""}`, { at: e });
        return;
      case "ack-timeout":
        this.ex(X_COMMANDS_ACKNOWLEDGED);
        this.violate("commands-acknowledged", `a command was not acknowledged in time${e.message ? `: ${e.message}` : ""}`, { at: e });
        return;
      case "connected":
        if (this.guestFrames === 0 && this.telemetryTimer === null) this.armTelemetry(e);
        return;
      default:
        return;
    }
  }

  // ------------------------------------------------------------------ deadlines

  private armTelemetry(from: At): void {
    this.timers.cancel(this.telemetryTimer);
    this.telemetryDue = from.t + this.deadlines.telemetryNs;
    this.telemetryTimer = this.timers.arm(this.telemetryDue, { k: "telemetry", from });
  }

  private noTelemetry(t: number, at: At): void {
    this.telemetryFired = true;
    this.violate("guest-telemetry-present", `no guest telemetry at all within ${fmtDur(this.deadlines.telemetryNs)} of the machine start while ${this.nicsAdded} NIC(s) were added: is the guest agent running and the channel connected?`, { at, tNs: t });
  }

  private fireDue(t: number): void {
    if (this.unreachableSince >= 0) return;
    for (;;) {
      const tm = this.timers.popDue(t);
      if (tm === undefined) return;
      this.fire(tm);
    }
  }

  /** Whether a guest-side deadline can be judged at all; may postpone it. */
  private guestJudgeable(tm: Timer<Payload>): boolean {
    if (this.guestDeadAt >= 0 && tm.due > this.guestDeadAt) return false;
    if (this.guestFrames > 0) return true;
    if (this.telemetryFired) return false;
    if (this.telemetryDue > tm.due) {
      // No telemetry yet: the channel verdict, not N per-device ones, must explain this.
      const again = this.timers.arm(this.telemetryDue, tm.payload);
      this.retarget(tm.payload, again);
      return false;
    }
    return false;
  }

  private retarget(p: Payload, tm: Timer<Payload>): void {
    switch (p.k) {
      case "attach":
        p.nic.attachTimer = tm;
        return;
      case "remove":
        p.nic.removeTimer = tm;
        return;
      case "detach":
        p.dev.detachTimer = tm;
        return;
      case "unload":
        p.unload.timer = tm;
        return;
      default:
        return;
    }
  }

  private fire(tm: Timer<Payload>): void {
    const p = tm.payload;
    switch (p.k) {
      case "telemetry": {
        this.telemetryTimer = null;
        if (this.guestFrames > 0 || this.telemetryFired) return;
        this.ex(X_GUEST_TELEMETRY_PRESENT);
        if (this.nicsAdded > 0) this.noTelemetry(tm.due, p.from);
        else this.telemetryArmed = true;
        return;
      }
      case "finalise": {
        const nic = p.nic;
        nic.finaliseTimer = null;
        if (nic.deleted || nic.finaliseReported || nic.removeEvent === null) return;
        nic.finaliseReported = true;
        this.ex(X_HOST_REMOVE_FINALISED);
        this.violate("host-remove-finalised", `device_del ${nic.id}: no DEVICE_DELETED within ${fmtDur(this.deadlines.finaliseNs)}`, { at: nic.removeEvent, nic, tNs: tm.due });
        this.maybeDropNic(nic);
        return;
      }
      case "attach": {
        const nic = p.nic;
        if (!this.guestJudgeable(tm)) return;
        nic.attachTimer = null;
        const dev = nic.dev;
        if (dev !== null && dev.state !== "attaching" && dev.state !== "present") return;
        // A device plugged faulty (malformed descriptors, gone mid-enumeration)
        // may be refused before any driver probes, and then the guest has
        // nothing to report: no attach is not observed, not a violation. An
        // attach that began on it and never returned is still a hang.
        if (dev === null && nic.addEvent.deviceFault !== undefined) return;
        nic.attachReported = true;
        this.ex(X_HOST_ADD_ATTACHES);
        this.violate("host-add-attaches", dev
          ? `attach of ${dev.name} (${nic.id}) began but did not return within ${fmtDur(this.deadlines.attachNs)}`
          : `host added ${nic.id} (${nic.kind}) but the guest reported no attach within ${fmtDur(this.deadlines.attachNs)}`, { at: nic.addEvent, nic, dev, tNs: tm.due });
        return;
      }
      case "remove": {
        const nic = p.nic;
        if (!this.guestJudgeable(tm)) return;
        nic.removeTimer = null;
        const rm = nic.removeEvent;
        if (rm === null || nic.removeReported) return;
        const dev = nic.dev;
        if (dev === null) {
          // Never seen by the guest (removed before it attached): nothing to detach.
          this.maybeDropNic(nic);
          return;
        }
        if (nic.freed || dev.livenessReported) return;
        // Without DETACH_PHASES a detach is only seen when it completes: judge the whole removal.
        const begun = dev.attempt !== null || dev.state === "detaching" || dev.state === "detached" || !this.observed.has("detach-phases");
        nic.removeReported = true;
        dev.livenessReported = true;
        const h = this.holdersOf(dev);
        if (!begun) {
          this.ex(X_HOST_REMOVE_DETACHES);
          this.violate("host-remove-detaches", `host removed ${nic.id} but ${dev.name} did not begin detaching within ${fmtDur(this.deadlines.detachNs)} (state ${dev.state}; lost detach)`, { at: rm, nic, dev, holders: h.ids, tNs: tm.due });
          return;
        }
        this.ex(X_HOST_REMOVE_FREES);
        this.violate("host-remove-frees", `host removed ${nic.id} but ${dev.name} was not ${this.observed.has("free") ? "freed" : "detached"} within ${fmtDur(this.deadlines.detachNs)} (state ${dev.state}${dev.ifState !== "none" ? `, interface ${dev.ifState}` : ""}); leaked${h.text ? `, still held: ${h.text}` : " with no reference known to be outstanding"}`, { at: rm, nic, dev, holders: h.ids, tNs: tm.due });
        return;
      }
      case "detach": {
        const dev = p.dev;
        if (!this.guestJudgeable(tm)) return;
        dev.detachTimer = null;
        if (dev.attempt !== p.attempt || dev.livenessReported || dev.state === "freed") return;
        dev.livenessReported = true;
        const h = this.holdersOf(dev);
        const sick = dev.unload !== null && dev.nic !== null && dev.nic.removeEvent !== null;
        const rule = sick ? "sick-case-completes" : "detach-completes";
        this.exercise(rule);
        this.violate(rule, `${dev.name}: detach (${p.attempt.force ? "DETACH_FORCE" : "flags 0"}${p.attempt.thread ? `, thread ${p.attempt.thread}` : ""}) did not return within ${fmtDur(this.deadlines.detachNs)}${sick ? ` while module ${dev.unload!.name} unload and the removal of ${dev.nic!.id} race` : ""}${h.text ? `; waiting for: ${h.text}` : ""}`, { at: { t: p.attempt.t, index: p.attempt.index }, dev, holders: h.ids, tNs: tm.due });
        return;
      }
      case "unload": {
        if (!this.guestJudgeable(tm)) return;
        p.unload.timer = null;
        this.modules.deadline(p.unload, tm.due);
        return;
      }
    }
  }

  // ------------------------------------------------------------------ summary

  private summary(): Summary {
    const rules: RuleReport[] = RULES.map((r, i) => {
      const status = !this.inProfile[i]
        ? "not-in-profile"
        : !this.active[i]
          ? "not-observed"
          : this.violations[i]! > 0
            ? "violated"
            : this.checks[i]! > 0
              ? "passed"
              : "not-exercised";
      return {
        id: r.id,
        statement: r.statement,
        principle: r.principle === null ? r.basis : String(r.principle),
        severity: r.severity,
        side: r.side,
        status,
        checks: this.checks[i]!,
        violations: this.violations[i]!,
      };
    });
    const latency: DriverLatency[] = [...this.lat.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([driver, l]) => ({ driver, attach: l.attach.stats(), detach: l.detach.stats(), removal: l.removal.stats(), drain: l.drain.stats() }));
    const pendingTimers = this.timers.pending().filter((x) => x.payload.k !== "telemetry" || this.guestFrames === 0);
    const pending = pendingTimers.slice(0, 50).map((x) => {
      const p = x.payload;
      switch (p.k) {
        case "attach":
          return { rule: "host-add-attaches", device: p.nic.dev?.name ?? "", nicId: p.nic.id, dueNs: x.due };
        case "remove":
          return { rule: "host-remove-frees", device: p.nic.dev?.name ?? "", nicId: p.nic.id, dueNs: x.due };
        case "finalise":
          return { rule: "host-remove-finalised", device: "", nicId: p.nic.id, dueNs: x.due };
        case "detach":
          return { rule: "detach-completes", device: p.dev.name, nicId: p.dev.nic?.id ?? "", dueNs: x.due };
        case "unload":
          return { rule: "unload-completes", device: p.unload.instances.join(","), nicId: "", dueNs: x.due };
        case "telemetry":
          return { rule: "guest-telemetry-present", device: "", nicId: "", dueNs: x.due };
      }
    });
    return {
      profile: this.profile,
      events: this.events,
      endTNs: this.now,
      guestFrames: this.guestFrames,
      capabilities: this.capabilities,
      devicesSeen: this.devicesSeen,
      liveDevices: this.devices.size,
      nicsAdded: this.nicsAdded,
      nicsRemoved: this.nicsRemoved,
      cycles: this.cycles,
      detaches: this.detaches,
      vetoes: this.vetoes,
      maxRefsHeld: { ...this.maxRefs },
      framesLost: this.framesLost,
      corruptFrames: this.corrupt,
      verdicts: {
        total: this.all.length + this.droppedVerdicts,
        bySide: { ...this.bySide },
        bySeverity: { ...this.bySeverity },
      },
      latency,
      rules,
      notExercised: rules.filter((r) => r.status === "not-exercised").map((r) => r.id),
      notObserved: rules.filter((r) => r.status === "not-observed").map((r) => r.id),
      pending,
      pendingCount: pendingTimers.length,
    };
  }
}

function ringList(dev: Dev): ModelEvent[] {
  if (dev.ringPos === 0) return dev.ring.slice();
  return [...dev.ring.slice(dev.ringPos), ...dev.ring.slice(0, dev.ringPos)];
}

/**
 * Events a tombstone keeps. Short on purpose: tombstones outlive many cycles,
 * and whatever they hold is promoted to the old generation.
 */
const TOMB_HISTORY = 8;

function lastOf(dev: Dev, n: number): ModelEvent[] {
  const all = ringList(dev);
  return all.length <= n ? all : all.slice(all.length - n);
}

function tombHistory(t: Tomb): ModelEvent[] {
  return t.ringPos === 0 ? t.ring : [...t.ring.slice(t.ringPos), ...t.ring.slice(0, t.ringPos)];
}

function nicHistory(nic: Nic): ModelEvent[] {
  return nic.removeEvent ? [nic.addEvent, nic.removeEvent] : [nic.addEvent];
}

function isModelEvent(x: At): x is ModelEvent {
  return typeof (x as { type?: unknown }).type === "string";
}


/** Convenience: checks a whole event sequence. */
export function checkEvents(events: Iterable<ModelEvent>, opts: CheckerOptions, endTNs?: number): CheckResult {
  const c = new Checker(opts);
  for (const e of events) c.push(e);
  return c.finish(endTNs);
}
