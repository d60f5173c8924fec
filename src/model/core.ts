// The checker's core: per-object state (NICs, live devices, tombstones, the
// automata's states, deadlines) and verdict emission (rule activity by what
// the guest observes, counts, the summary). The rule families (rules/*.ts)
// judge events with it; the dispatcher (checker.ts) routes events to them.

import { AUTOMATA, Monitor, type DeviceInput, type DeviceState, type IfInput, type IfState } from "./automata.js";
import { DEFAULT_DEADLINES, resolveDeadlines, type Deadlines } from "./deadlines.js";
import { ALL_CAPABILITIES, describeEvent, type At, type CapabilityName, type DeviceEvent, type ModelEvent } from "./events.js";
import { LogHistogram, UNRECORDED } from "./histogram.js";
import { OpenActions } from "./open-actions.js";
import { SmallMap } from "./small-map.js";
import { RULES, type ProfileName, type Rule, type RuleId, type Severity, type Side } from "./rules.js";
import {
  NO_REFS,
  TOMB_HISTORY,
  holdersOf,
  isModelEvent,
  lastOf,
  nicHistory,
  ringList,
  tombHistory,
  type Dev,
  type Lat,
  type Nic,
  type Payload,
  type Tomb,
  type ViolationCtx,
} from "./state.js";
import { TimerQueue, type Timer } from "./timers.js";
import type { CheckResult, DriverLatency, HistoryEntry, RuleReport, Summary, Verdict } from "./verdict.js";

const MAX_OPEN_ACTIONS = 4096;

/**
 * Deadlines resolved once per partial-deadlines object: a shrink's runs hand
 * every checker the same one (src/storm/checking.ts). Frozen, as checkers
 * share them. A partial changed after it was resolved is resolved again: a
 * hit is used only while each deadline the partial names still has the value
 * resolved for it and it names no other (a library caller may reuse and
 * change one options object).
 */
const RESOLVED = new WeakMap<Partial<Deadlines>, { deadlines: Readonly<Deadlines>; named: number }>();
let resolvedDefaults: Readonly<Deadlines> | null = null;
function resolvedDeadlines(partial: Partial<Deadlines> | undefined): Deadlines {
  if (partial === undefined) return (resolvedDefaults ??= Object.freeze(resolveDeadlines(undefined)));
  const hit = RESOLVED.get(partial);
  // A frozen partial cannot have changed since it was resolved: no walk of its keys (a shrink's runs share one).
  if (hit !== undefined && (Object.isFrozen(partial) || stillResolves(partial, hit.deadlines, hit.named))) return hit.deadlines;
  const deadlines = Object.freeze(resolveDeadlines(partial));
  let named = 0;
  for (const key in partial) if (Object.hasOwn(partial, key)) named++;
  RESOLVED.set(partial, { deadlines, named });
  return deadlines;
}
/** Whether partial still names `named` known keys, each with the value d has for it (undefined: d's is the default). */
function stillResolves(partial: Partial<Deadlines>, d: Readonly<Deadlines>, named: number): boolean {
  let n = 0;
  for (const key in partial) {
    if (!Object.hasOwn(partial, key)) continue;
    if (!(key in DEFAULT_DEADLINES)) return false;
    n++;
    const k = key as keyof Deadlines;
    const v = partial[k];
    if (d[k] !== (v === undefined ? DEFAULT_DEADLINES[k] : v)) return false;
  }
  return n === named;
}

/** The history of every verdict of a checker that makes none (histories: false); never written to. */
const NO_HISTORY: HistoryEntry[] = Object.freeze([]) as unknown as HistoryEntry[];

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
  /**
   * Each verdict's events that led there, as text (default true). False: every
   * verdict's history is empty (for a caller that judges and never shows a
   * verdict: the shrinker's runs).
   */
  histories?: boolean;
  /**
   * Each driver's attach, detach, removal and drain latencies, for the
   * summary (default true). False: the summary lists none (for a caller that
   * never reads the summary: the shrinker's runs, which made a driver's four
   * histograms each run, and their first samples' lists, for nothing).
   */
  latencies?: boolean;
  /**
   * Each verdict's message and holders' descriptions (default true). False:
   * every verdict's message is "" and holdersOf() gives the ids alone (for a
   * caller that judges by rule and severity and never shows a verdict: the
   * shrinker's runs, whose first violation met this text in code still cold).
   */
  texts?: boolean;
}

/** The latencies of every driver of a checker that keeps none (latencies: false). */
const UNRECORDED_LAT: Lat = { attach: UNRECORDED, detach: UNRECORDED, removal: UNRECORDED, drain: UNRECORDED };


/** A verdict's message, or how to make it from the device and the event (made only for a verdict). */
export type Message<E> = string | ((dev: Dev, at: E) => string);

/** A host action awaiting its result. */
export interface HostActionRef {
  action: string;
  nic: Nic | null;
  nicId: string;
  event: At;
}

const RULE_INDEX = new Map<RuleId, number>(RULES.map((r, i) => [r.id, i]));

function ruleIndex(id: RuleId): number {
  const i = RULE_INDEX.get(id);
  if (i === undefined) throw new Error(`internal: unknown rule ${id}`);
  return i;
}

/** A profile's compiled automata and rule membership: read-only, so built once per process (a shrink starts thousands of checkers). */
interface ProfileTables {
  devMon: Monitor<DeviceState, DeviceInput>;
  ifMon: Monitor<IfState, IfInput>;
  inProfile: readonly boolean[];
  /** observed and active when every capability is observed (a checker's start, before the guest's Hello). */
  all: CapabilitySet | null;
  /** observed and active by the capabilities a guest reported, in the order reported. */
  byCaps: CapabilitySet[];
}
interface CapabilitySet {
  caps: readonly CapabilityName[];
  observed: Set<CapabilityName>;
  active: boolean[];
}
/** Whether two capability lists are the same names in the same order (the key a set is found by). */
function sameCaps(a: readonly CapabilityName[], b: readonly CapabilityName[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
/** Distinct capability sets remembered per profile: a few agents' Hellos, bounded against a hostile trace. */
const MAX_KNOWN_CAPABILITY_SETS = 64;
const TABLES = new Map<ProfileName, ProfileTables>();
function profileTables(profile: ProfileName): ProfileTables {
  let t = TABLES.get(profile);
  if (t === undefined) {
    t = {
      devMon: new Monitor(AUTOMATA[profile].device),
      ifMon: new Monitor(AUTOMATA[profile].ifnet),
      inProfile: RULES.map((r) => r.profiles.includes(profile)),
      all: null,
      byCaps: [],
    };
    TABLES.set(profile, t);
  }
  return t;
}

// Looked up once per process, not per checker (a shrink starts one a run).
const X_NO_EVENT_AFTER_FREE = ruleIndex("no-event-after-free");
const X_HOST_REMOVE_FREES = ruleIndex("host-remove-frees");
const X_LIFECYCLE_ORDER = ruleIndex("lifecycle-order");
const X_USB_TASK_WAITED = ruleIndex("usb-task-waited");
/** A count per rule, all zero: copied (a packed array of small integers), not made and filled per checker. */
const RULE_ZEROS: readonly number[] = RULES.map(() => 0);

export class Core {
  private readonly X_NO_EVENT_AFTER_FREE = X_NO_EVENT_AFTER_FREE;
  private readonly X_HOST_REMOVE_FREES = X_HOST_REMOVE_FREES;
  private readonly X_LIFECYCLE_ORDER = X_LIFECYCLE_ORDER;
  /** judgeTasks (rules/interface.ts) counts it once a detach, a function with no family to keep it. */
  readonly X_USB_TASK_WAITED = X_USB_TASK_WAITED;
  readonly profile: ProfileName;
  readonly deadlines: Deadlines;
  private readonly onVerdict: ((v: Verdict) => void) | undefined;
  private readonly historySize: number;
  private readonly maxTombs: number;
  private readonly maxVerdicts: number;
  private readonly histories: boolean;
  private readonly latencies: boolean;
  /** See CheckerOptions.texts: read by the rule families for holdersOf(). */
  readonly texts: boolean;
  readonly devMon: Monitor<DeviceState, DeviceInput>;
  readonly ifMon: Monitor<IfState, IfInput>;
  readonly alwaysForced: boolean;

  // Plain arrays, not Float64Arrays: 45 rules make 360 bytes, past what V8
  // keeps on its heap, so each would be an ArrayBuffer with a backing store
  // allocated outside it, once per checker (a shrink makes one per run).
  private readonly checks: number[] = RULE_ZEROS.slice();
  private readonly violations: number[] = RULE_ZEROS.slice();
  private readonly inProfile: readonly boolean[];
  active!: boolean[];
  observed!: Set<CapabilityName>;
  capabilities: CapabilityName[] | null = null;

  // A NIC or a device or two at a time, emptied once a cycle: see small-map.ts.
  readonly nics = new SmallMap<string, Nic>();
  readonly nicsByMac = new SmallMap<string, Nic>();
  readonly devices = new SmallMap<string, Dev>();
  readonly ifnames = new SmallMap<string, Dev>();
  readonly tombs = new Map<string, Tomb>();
  readonly ifTombs = new Map<string, string>();
  /** Host actions awaiting their result, by action id. */
  readonly actions = new OpenActions<HostActionRef>(MAX_OPEN_ACTIONS);
  readonly timers = new TimerQueue<Payload>();
  /** Trace time the machine stopped answering the host's heartbeat; -1 while it answers. */
  unreachableSince = -1;
  readonly lat = new Map<string, Lat>();

  private all: Verdict[] = [];
  private droppedVerdicts = 0;
  batch: Verdict[] | null = null;
  now = 0;
  events = 0;
  guestFrames = 0;
  telemetryTimer: Timer<Payload> | null = null;
  telemetryDue = -1;
  telemetryFired = false;
  telemetryArmed = false;
  guestDeadAt = -1;
  framesLost = 0;
  corrupt = 0;
  devicesSeen = 0;
  nicsAdded = 0;
  nicsRemoved = 0;
  cycles = 0;
  detaches = 0;
  vetoes = 0;
  maxRefs = { count: 0, device: "", nicId: "", tNs: 0 };
  private bySide: Record<Side, number> = { host: 0, guest: 0, channel: 0 };
  private bySeverity: Record<Severity, number> = { warning: 0, error: 0, fatal: 0 };
  machineSeen = false;
  /** The guest reports localcount drains (DRAIN device): a free in a detach must follow one. */
  seesDeviceDrain = false;

  constructor(opts: CheckerOptions, private readonly deviceFreed: (dev: Dev) => void) {
    if (opts.profile !== "netbsd" && opts.profile !== "linux")
      throw new Error(`unknown model profile "${String(opts.profile)}"; known: netbsd, linux`);
    this.profile = opts.profile;
    this.deadlines = resolvedDeadlines(opts.deadlines);
    this.onVerdict = opts.onVerdict;
    this.historySize = Math.max(1, opts.historySize ?? 16);
    this.maxTombs = Math.max(1, opts.tombstones ?? 256);
    this.maxVerdicts = Math.max(0, opts.maxVerdicts ?? 10000);
    this.histories = opts.histories ?? true;
    this.latencies = opts.latencies ?? true;
    this.texts = opts.texts ?? true;
    const tables = profileTables(this.profile);
    this.devMon = tables.devMon;
    this.ifMon = tables.ifMon;
    this.alwaysForced = this.profile === "linux";
    this.inProfile = tables.inProfile;
    this.observeOnly(ALL_CAPABILITIES);
  }

  /** The guest's Hello: which rules can be judged follows from what it observes. */
  setCapabilities(caps: readonly CapabilityName[]): void {
    this.capabilities = caps.slice();
    this.observeOnly(caps);
  }

  /**
   * observed and active for caps: shared by the checkers of a profile that see
   * the same capabilities (neither is changed in place, only replaced). Found
   * by comparing the lists, not by joining them into a key: a shrink starts a
   * checker a run, and joining every capability name twice a run (the start,
   * the Hello) was ~5% of an empty judged run.
   */
  private observeOnly(caps: readonly CapabilityName[]): void {
    const tables = profileTables(this.profile);
    const all = caps === ALL_CAPABILITIES;
    let hit: CapabilitySet | null = all ? tables.all : null;
    if (!all) {
      for (const k of tables.byCaps) {
        if (sameCaps(k.caps, caps)) {
          hit = k;
          break;
        }
      }
    }
    if (hit !== null) {
      this.observed = hit.observed;
      this.active = hit.active;
      return;
    }
    this.observed = new Set(caps);
    this.active = this.computeActive();
    const made = { caps: caps.slice(), observed: this.observed, active: this.active };
    if (all) tables.all = made;
    else if (tables.byCaps.length < MAX_KNOWN_CAPABILITY_SETS) tables.byCaps.push(made);
  }

  /** Every verdict kept so far and the summary. */
  result(): CheckResult {
    return { verdicts: this.all.slice(), summary: this.summary() };
  }

  computeActive(): boolean[] {
    return RULES.map((r, i) => this.inProfile[i]! && r.needs.every((n) => this.isObserved(n)));
  }

  isObserved(n: string): boolean {
    if (n === "refs") return this.observed.has("kernel-refs") || this.observed.has("agent-refs");
    return this.observed.has(n as CapabilityName);
  }

  /** A rule's position: the families keep these so counting a judged case is an array increment. */
  ix(id: RuleId): number {
    return ruleIndex(id);
  }

  ex(i: number): void {
    if (this.active[i]) this.checks[i]! += 1;
  }

  exercise(id: RuleId): void {
    this.ex(ruleIndex(id));
  }

  isActive(id: RuleId): boolean {
    return this.active[RULE_INDEX.get(id)!]!;
  }

  /** Emits a verdict if the rule is judged in this run; returns whether it was emitted. */
  violate(id: RuleId, message: string, c: ViolationCtx): boolean {
    const i = RULE_INDEX.get(id);
    if (i === undefined) throw new Error(`internal: unknown rule ${id}`);
    if (!this.active[i]) return false;
    const rule: Rule = RULES[i]!;
    this.checks[i]! += 1;
    this.violations[i]! += 1;
    const dev = c.dev ?? null;
    const nic = c.nic ?? dev?.nic ?? null;
    let history: HistoryEntry[] = NO_HISTORY;
    if (this.histories) {
      const hist = c.history ?? (dev ? ringList(dev) : nic ? nicHistory(nic) : [c.at as ModelEvent].filter(isModelEvent));
      history = hist.map((x) => ({ index: x.index, tNs: x.t, text: describeEvent(x) }));
    }
    const lossNote = this.texts && this.framesLost > 0 && rule.side === "guest" ? ` (note: ${this.framesLost} telemetry frame(s) were lost before this)` : "";
    const v: Verdict = {
      rule: rule.id,
      statement: rule.statement,
      principle: rule.principle,
      side: rule.side,
      severity: rule.severity,
      device: c.device || dev?.name || "",
      nicId: c.nicId || nic?.id || "",
      holders: c.holders ?? [],
      message: this.texts ? message + lossNote : "",
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

  ringPush(dev: Dev, e: ModelEvent): void {
    if (dev.ring.length < this.historySize) dev.ring.push(e);
    else {
      dev.ring[dev.ringPos] = e;
      dev.ringPos = (dev.ringPos + 1) % this.historySize;
    }
  }

  latFor(driver: string): Lat {
    // A run has a few drivers and asks for one several times per cycle: the last one answers without a lookup.
    if (driver === this.latDriver && this.latLast !== null) return this.latLast;
    if (!this.latencies) return UNRECORDED_LAT;
    const key = driver || "(unknown)";
    let l = this.lat.get(key);
    if (l === undefined) {
      l = { attach: new LogHistogram(), detach: new LogHistogram(), removal: new LogHistogram(), drain: new LogHistogram() };
      this.lat.set(key, l);
    }
    this.latDriver = driver;
    this.latLast = l;
    return l;
  }
  private latDriver = "";
  private latLast: Lat | null = null;

  newDev(name: string, e: DeviceEvent | null, nic: Nic | null, state: DeviceState): Dev {
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
      ledger: NO_REFS,
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
    this.lastName = name;
    this.lastDev = dev;
    if (dev.ifname) this.ifnames.set(dev.ifname, dev);
    this.devicesSeen++;
    return dev;
  }

  joinNic(serial: string, mac: string): Nic | null {
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

  /**
   * devices.get, with the last answer kept: a device reports its events in
   * bursts, and each lookup by a name read from a record hashes that string.
   * Only newDev and dropDev change `devices`, and they keep this true.
   */
  device(name: string): Dev | undefined {
    if (name === this.lastName) return this.lastDev;
    const d = this.devices.get(name);
    this.lastName = name;
    this.lastDev = d;
    return d;
  }
  /**
   * "" before any lookup: right, as no device is named "" then. Not null: a
   * compare that has seen null and strings is a generic call (perf showed it).
   */
  private lastName = "";
  private lastDev: Dev | undefined = undefined;

  findTomb(name: string, instance: number): Tomb | undefined {
    const tomb = this.tombs.get(name);
    if (tomb === undefined) return undefined;
    if (instance !== 0 && tomb.instance !== 0 && tomb.instance !== instance) return undefined;
    return tomb;
  }

  uaf(at: ModelEvent, tomb: Tomb, what: string): void {
    this.ex(this.X_NO_EVENT_AFTER_FREE);
    this.violate("no-event-after-free", `${what} after ${tomb.name}${tomb.instance ? ` instance ${tomb.instance}` : ""} was freed (use after free)`, {
      at,
      device: tomb.name,
      nicId: tomb.nicId,
      history: [...tombHistory(tomb), at],
    });
  }

  /** Forgets a device: freed (tombstone kept) or replaced. */
  dropDev(dev: Dev, freed: boolean): void {
    this.timers.cancel(dev.detachTimer);
    dev.detachTimer = null;
    if (this.devices.get(dev.name) === dev) {
      this.devices.delete(dev.name);
      if (this.lastName === dev.name) this.lastDev = undefined;
    }
    if (dev.ifname && this.ifnames.get(dev.ifname) === dev) this.ifnames.delete(dev.ifname);
    dev.state = "freed";
    if (!freed) return;
    this.deviceFreed(dev);
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
        this.ex(this.X_HOST_REMOVE_FREES);
        this.cycles++;
        this.latFor(dev.driver).removal.add(this.now - nic.removeEvent.t);
      }
      this.maybeDropNic(nic);
    }
  }

  maybeDropNic(nic: Nic): void {
    if (nic.removeEvent === null || !nic.deleted) return;
    if (nic.dev !== null ? !nic.freed : nic.removeTimer !== null && !nic.removeTimer.cancelled) return;
    this.timers.cancel(nic.attachTimer);
    this.timers.cancel(nic.removeTimer);
    this.timers.cancel(nic.finaliseTimer);
    if (this.nics.get(nic.id) === nic) this.nics.delete(nic.id);
    if (nic.mac && this.nicsByMac.get(nic.mac) === nic) this.nicsByMac.delete(nic.mac);
  }

  /**
   * Steps the device automaton; on an illegal event reports the rule the
   * table names, with `what` (a function is called only then: no message is
   * built for the legal steps of the hot path).
   */
  stepDev<E extends ModelEvent>(dev: Dev, input: DeviceInput, at: E, what?: Message<E>): boolean {
    const to = this.devMon.step(dev.state, input);
    if (to !== undefined) {
      dev.state = to;
      this.ex(this.X_LIFECYCLE_ORDER);
      return true;
    }
    const rule = this.devMon.ruleFor(dev.state, input);
    this.exercise(rule);
    this.violate(rule, what === undefined ? `${input} while ${dev.name} is ${dev.state}` : typeof what === "string" ? what : what(dev, at), { at, dev });
    return false;
  }

  stepIf<E extends ModelEvent>(dev: Dev, input: IfInput, at: E, what?: Message<E>): boolean {
    const to = this.ifMon.step(dev.ifState, input);
    if (to !== undefined) {
      dev.ifState = to;
      return true;
    }
    const rule = this.ifMon.ruleFor(dev.ifState, input);
    this.exercise(rule);
    this.violate(rule, what === undefined ? `interface ${dev.ifname || dev.name}: ${input} while ${dev.ifState}` : typeof what === "string" ? what : what(dev, at), { at, dev });
    return false;
  }

  /** Actions awaiting their result; bounded, as some actions (guest commands) may never get one. */
  trackAction(id: number, a: HostActionRef): void {
    this.actions.set(id, a);
  }

  /** Whether a guest-side deadline can be judged at all; may postpone it. */
  guestJudgeable(tm: Timer<Payload>): boolean {
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

  retarget(p: Payload, tm: Timer<Payload>): void {
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

  summary(): Summary {
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
