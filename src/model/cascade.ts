// Cascades: consequence verdicts grouped under their first cause. A pass that
// runs beside the checker over its verdicts (the checker is unchanged), fed a
// few facts about devices and event threads.
//
// The rule (also in docs/cascades.md):
// - A device D *blocks* thread T from D's detach-begin in T until T shows
//   progress: D's detach-end or free, or any event of another device in T.
//   (NetBSD runs a USB bus's attaches and detaches in that bus's event
//   thread, a PCMCIA socket's in the socket's thread, one at a time: while a
//   detach waits for a leaked reference, nothing else on that bus attaches or
//   detaches; netbsd.md §4, §8.6.)
// - The *cause* of a blocking episode is the first failing verdict that names D
//   while D blocks T. It is never grouped under anything.
// - A later failing verdict of a liveness rule about a device or NIC
//   (host-add-attaches, host-remove-detaches, host-remove-frees,
//   detach-completes, ...; not channel rules) is a *consequence* of that cause
//   when the episode is still open at the verdict and either
//     (a) it names D itself, or
//     (b) the record that started its deadline came after the episode began,
//         and the work it waited for runs in T: the device it names last ran
//         in T, or (a NIC the guest never showed a device for) every thread
//         that has served that NIC's unit is blocked; with several blocked,
//         the earliest cause is its cause. The unit is what one event thread
//         serves: a USB NIC's bus; a PC Card's socket when its add names one
//         (each socket has its own thread; netbsd.md#pcmcia-threads), else
//         the pcmcia bus.
// - Only an earlier verdict can be a cause, so the first verdict of a run is
//   always a cause, and a safety verdict (a rule broken by an event) is never
//   a consequence.

import { RecentMap } from "./recent.js";
import { RULE_BY_ID } from "./rules.js";
import type { Verdict } from "./verdict.js";

/** What a cascade's consequence points at: its cause. */
export interface CauseRef {
  /** Position of the cause in the run's verdict list (0-based). */
  ordinal: number;
  rule: string;
  device: string;
  nicId: string;
  recordIndex: number;
  /** The thread the cause's device blocked. */
  thread: string;
}

/** A guest device event as the cascade tracker needs it. */
export interface ThreadActivity {
  thread: string;
  device: string;
  /** The NIC (QEMU id) the device event names by its serial, "" when none. */
  nicId: string;
  kind: "detach-begin" | "detach-end" | "free" | "other";
  index: number;
}

interface Episode {
  device: string;
  thread: string;
  sinceIndex: number;
  cause: CauseRef | null;
}

/** Whether a rule's verdicts can be consequences of a blocked thread. */
export function canBeConsequence(rule: string): boolean {
  const r = RULE_BY_ID.get(rule);
  return r !== undefined && r.liveness && r.side !== "channel";
}

/**
 * Joins kept for the most recent names only: a storm of a million cycles
 * must not grow the tracker (a stale join only makes a verdict its own finding).
 */
const MAX_JOINS = 8192;
/**
 * Keys per generation of the NIC joins (RecentMap): a NIC's join is an insert
 * per NIC, cheaper into a map of a thousand keys than of thousands.
 */
const JOIN_GENERATION = 1024;

/**
 * The unit a NIC's attach waits on: what one event thread serves. A PC Card
 * socket has a thread of its own, so a card is keyed by its socket when the
 * add names it; a USB port is explored by its bus's one thread.
 */
function unitOf(bus: string, port: string | undefined): string {
  return bus === "pcmcia" && port ? `pcmcia ${port}` : bus;
}

/** What is joined to a guest device name ("" for not known). */
interface DeviceJoin {
  nic: string;
  thread: string;
}

/** What is joined to a NIC id since its last add ("" for not known); never changed, replaced (see joinOf). */
interface NicJoin {
  /** The unit (unitOf) it was added on. */
  readonly unit: string;
  /** The device that named it last. */
  readonly device: string;
}

/** Distinct (unit, device) joins shared at most; past that each is made anew (correct, only slower). */
const MAX_SHARED_JOINS = 1024;

export class CascadeTracker {
  /**
   * A NIC's joins in one record: one insert into a map of thousands of keys
   * per NIC, not one per join (each costs cache misses); the device's join
   * replaces it with the shared join of its unit and that device.
   */
  private readonly nics = new RecentMap<string, NicJoin>(MAX_JOINS, false, JOIN_GENERATION);
  /**
   * A device's joins in one record, updated in place: one lookup per device
   * event that joins, not one per join.
   */
  private readonly devices = new RecentMap<string, DeviceJoin>(MAX_JOINS);
  /** Threads that have served each unit. */
  private readonly threadsOfUnit = new Map<string, Set<string>>();
  /**
   * Open blocking episodes, one per thread, in the order their threads were
   * first blocked (a Map's order). An array: there are a few at most, and a
   * Map emptied after every detach reallocates its table each time.
   */
  private readonly blocked: Episode[] = [];
  private ordinal = 0;

  /** A host add: which bus the NIC is on, and the port or socket when the trace names it. */
  hostAdd(nicId: string, bus: string, port?: string): void {
    // A new plug: a device that named this id before belongs to an earlier one.
    this.nics.set(nicId, this.joinOf(unitOf(bus, port), ""));
    this.lastDevice = "";
  }

  /**
   * The join of a unit and a device, one object for each pair: NICs are
   * remembered by the thousand, and a join made per NIC lived long enough to
   * be copied and promoted by the young-generation GC; a run has a few units
   * and device names, so the shared joins are few.
   */
  private joinOf(unit: string, device: string): NicJoin {
    // A NIC's add and its device's first event ask for two joins, the add's
    // the same each cycle (its unit, no device yet): the two shared joins
    // asked for last answer without the two Map lookups. Shared joins are
    // never replaced, so this is the join the maps would give.
    const a = this.recentA;
    if (a !== null && a.unit === unit && a.device === device) return a;
    const b = this.recentB;
    if (b !== null && b.unit === unit && b.device === device) {
      // Kept first: the add's join (no device yet) is asked for every cycle, the device's changes.
      this.recentB = a;
      this.recentA = b;
      return b;
    }
    const j = this.sharedJoin(unit, device);
    if (j !== null) {
      this.recentB = a;
      this.recentA = j;
      return j;
    }
    return { unit, device };
  }
  /** The shared joins joinOf gave last (A the latest), or null. */
  private recentA: NicJoin | null = null;
  private recentB: NicJoin | null = null;

  /** The shared join of a unit and a device, made now if there is room; null when there is none. */
  private sharedJoin(unit: string, device: string): NicJoin | null {
    let byDevice = this.joins.get(unit);
    if (byDevice === undefined) {
      if (this.sharedJoins >= MAX_SHARED_JOINS) return null;
      this.joins.set(unit, (byDevice = new Map()));
    }
    let j = byDevice.get(device);
    if (j === undefined) {
      if (this.sharedJoins >= MAX_SHARED_JOINS) return null;
      j = { unit, device };
      byDevice.set(device, j);
      this.sharedJoins++;
    }
    return j;
  }
  private readonly joins = new Map<string, Map<string, NicJoin>>();
  private sharedJoins = 0;

  /** The device that names a NIC now (its unit kept; a NIC not known yet has none). */
  private nicNamedBy(nicId: string, device: string): void {
    const j = this.nics.touch(nicId);
    if (j === undefined || j.device !== device) this.nics.set(nicId, this.joinOf(j?.unit ?? "", device));
  }

  private deviceJoin(device: string): DeviceJoin {
    let j = this.devices.touch(device);
    if (j === undefined) this.devices.set(device, (j = { nic: "", thread: "" }));
    return j;
  }

  /**
   * The last device event's joins (device, thread, NIC): a device reports its
   * events in bursts from one thread, and a burst repeats joins already made.
   */
  private lastDevice = "";
  private lastThread = "";
  private lastNic = "";

  /** A guest device event with its thread ("" when the guest did not say). */
  activity(a: ThreadActivity): void {
    this.deviceEvent(a.thread, a.device, a.nicId, a.kind, a.index);
  }

  /** activity() with the fields as arguments: the checker calls it on every device event, so no object is made for it. */
  deviceEvent(thread: string, device: string, nicId: string, kind: ThreadActivity["kind"], index: number): void {
    const joined = device === this.lastDevice && thread === this.lastThread && (nicId === "" || nicId === this.lastNic);
    let dj: DeviceJoin | undefined;
    if (!joined && nicId) {
      dj = this.deviceJoin(device);
      dj.nic = nicId;
      // Usually the NIC set or found last (its add came just before): no lookup.
      this.nicNamedBy(nicId, device);
    }
    const ends = kind === "detach-end" || kind === "free";
    const blocked = this.blocked;
    if (blocked.length > 0) {
      const i = thread ? this.episodeAt(thread) : -1;
      if (i >= 0 && (device !== blocked[i]!.device || ends)) blocked.splice(i, 1);
      // A device that ends or is freed no longer blocks whichever thread it blocked.
      if (ends) {
        for (let j = blocked.length - 1; j >= 0; j--) if (blocked[j]!.device === device) blocked.splice(j, 1);
      }
    }
    if (!thread) return;
    if (!joined) {
      dj ??= this.deviceJoin(device);
      dj.thread = thread;
      const nic = nicId || dj.nic;
      const unit = nic ? this.nics.get(nic)?.unit : undefined;
      if (unit) {
        let s = this.threadsOfUnit.get(unit);
        if (!s) this.threadsOfUnit.set(unit, (s = new Set()));
        s.add(thread);
      }
      this.lastDevice = device;
      this.lastThread = thread;
      this.lastNic = nic;
    }
    if (kind === "detach-begin") {
      // As Map.set: a thread already blocked keeps its place.
      const ep: Episode = { device, thread, sinceIndex: index, cause: null };
      const i = this.episodeAt(thread);
      if (i >= 0) blocked[i] = ep;
      else blocked.push(ep);
    }
  }

  /** The open episode of a thread, by position, or -1. */
  private episodeAt(thread: string): number {
    const blocked = this.blocked;
    for (let i = 0; i < blocked.length; i++) if (blocked[i]!.thread === thread) return i;
    return -1;
  }

  private episode(thread: string): Episode | undefined {
    const i = this.episodeAt(thread);
    return i >= 0 ? this.blocked[i] : undefined;
  }

  /**
   * Classifies the next verdict of the run (call for every verdict, in
   * order): its cause when it is a consequence, else null.
   */
  verdict(v: Pick<Verdict, "rule" | "severity" | "device" | "nicId" | "recordIndex">): CauseRef | null {
    const ordinal = this.ordinal++;
    if (v.severity === "warning") return null;
    const device = v.device || (v.nicId ? this.nics.get(v.nicId)?.device ?? "" : "");
    // Is this about a device that blocks a thread? Then it is that episode's cause, or a consequence of it.
    if (device) {
      for (const ep of this.blocked) {
        if (ep.device !== device) continue;
        if (ep.cause === null) {
          ep.cause = { ordinal, rule: v.rule, device, nicId: v.nicId || this.devices.get(device)?.nic || "", recordIndex: v.recordIndex, thread: ep.thread };
          return null;
        }
        return canBeConsequence(v.rule) ? ep.cause : null;
      }
    }
    if (!canBeConsequence(v.rule)) return null;
    const candidates: Episode[] = [];
    const thread = device ? this.devices.get(device)?.thread || undefined : undefined;
    if (thread !== undefined) {
      const ep = this.episode(thread);
      if (ep) candidates.push(ep);
    } else {
      const unit = v.nicId ? this.nics.get(v.nicId)?.unit : undefined;
      const threads = unit ? this.threadsOfUnit.get(unit) : undefined;
      if (!threads || threads.size === 0) return null;
      for (const t of threads) {
        const ep = this.episode(t);
        if (!ep) return null;
        candidates.push(ep);
      }
    }
    let best: CauseRef | null = null;
    for (const ep of candidates) {
      if (ep.cause === null || v.recordIndex <= ep.sinceIndex) return null;
      if (best === null || ep.cause.ordinal < best.ordinal) best = ep.cause;
    }
    return best;
  }
}

/** One finding: a cause and the verdicts grouped under it, by ordinal. */
export interface Cascade {
  cause: number;
  consequences: number[];
}

/**
 * Groups a verdict list by the causes its verdicts name: every verdict that
 * is not a consequence heads a finding (in list order), each consequence is
 * listed under its cause. A consequence whose cause is missing from the list
 * heads its own finding, so nothing is ever hidden.
 */
export function groupCascades(verdicts: readonly { cause?: { ordinal: number } | null }[]): Cascade[] {
  const groups: Cascade[] = [];
  const byCause = new Map<number, Cascade>();
  verdicts.forEach((v, i) => {
    const c = v.cause ? byCause.get(v.cause.ordinal) : undefined;
    if (c && v.cause!.ordinal < i) {
      c.consequences.push(i);
      return;
    }
    const g = { cause: i, consequences: [] };
    groups.push(g);
    byCause.set(i, g);
  });
  return groups;
}
