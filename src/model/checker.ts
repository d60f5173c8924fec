// The streaming checker, as a dispatcher in the style of Linux's RV monitors
// (kernel/trace/rv/): each event goes to the rule families that watch it
// (rules/*.ts: a family's rules and their check together), over the state of
// the objects it names (core.ts: per-object state and verdict emission).
// Memory is O(live devices + outstanding references + outstanding
// deadlines): freed devices are dropped (a bounded tombstone set remembers
// them to catch use after free) and latencies go to fixed-size histograms.

import type { DeviceState } from "./automata.js";
import { Core, type CheckerOptions } from "./core.js";
import type { Deadlines } from "./deadlines.js";
import { isGuestType, type At, type DeviceEvent, type DeviceSideEvent, type HostAddEvent, type HostRemoveEvent, type IfEvent, type ModelEvent, type RefEvent, type VnodeEvent } from "./events.js";
import type { ProfileName } from "./rules.js";
import { ChannelMonitor } from "./rules/channel.js";
import { CorrespondenceMonitor } from "./rules/correspondence.js";
import { DetachMonitor } from "./rules/detach.js";
import { DeviceSideMonitor } from "./rules/device-side.js";
import { HostMonitor } from "./rules/host.js";
import { InterfaceMonitor } from "./rules/interface.js";
import { LifetimeMonitor } from "./rules/lifetime.js";
import { ModuleMonitor, type ModuleHost, type PendingUnload } from "./rules/modules.js";
import { ReferenceMonitor } from "./rules/references.js";
import { NodeMonitor, nodeOf, type NodeState } from "./rules/vnodes.js";
import { holdersOf, newAttempt, type Dev, type Payload, type ViolationCtx } from "./state.js";
import type { Timer } from "./timers.js";
import type { CheckResult, Verdict } from "./verdict.js";

export type { CheckerOptions };

/** The event of one type (pushTyped's cases: the type comes apart from the event, so it does not narrow e). */
type Ev<T extends ModelEvent["type"]> = Extract<ModelEvent, { type: T }>;

const EMPTY: readonly Verdict[] = Object.freeze([]) as readonly Verdict[];

/** A device-side verdict's context: the event, its NIC, and the guest device when one is known. */
function deviceSideCtx(e: DeviceSideEvent, device: string | undefined): ViolationCtx {
  return { at: e, nicId: e.nicId, ...(device ? { device } : {}) };
}

/**
 * What the node, device-side and module families ask of the core: the same
 * for every checker, so methods on a class, the core in one field.
 */
class CheckerHost implements ModuleHost<Dev, ViolationCtx, Timer<Payload>> {
  readonly unloadNs: number;
  constructor(private readonly c: Core) {
    this.unloadNs = c.deadlines.unloadNs;
  }
  ex(id: Parameters<Core["exercise"]>[0]): void {
    this.c.exercise(id);
  }
  violate(id: Parameters<Core["exercise"]>[0], message: string, ctx: ViolationCtx): void {
    this.c.violate(id, message, ctx);
  }
  observes(cap: Parameters<Core["observed"]["has"]>[0]): boolean {
    return this.c.observed.has(cap);
  }
  device(name: string): Dev | undefined {
    return this.c.devices.get(name);
  }
  removedNic(d: Dev): string {
    return d.nic !== null && d.nic.removeEvent !== null ? d.nic.id : "";
  }
  removedAfterFree(name: string): boolean {
    return this.c.tombs.get(name)?.removed === true;
  }
  record(d: Dev, e: Parameters<ModuleHost<Dev, ViolationCtx, Timer<Payload>>["record"]>[1]): void {
    this.c.ringPush(d, e);
  }
  holders(d: Dev): ReturnType<typeof holdersOf> {
    return holdersOf(d, undefined, this.c.texts);
  }
  ctx(at: At, dev: Dev | null, holders: string[], tNs?: number): ViolationCtx {
    return tNs === undefined ? { at, dev, holders } : { at, dev, holders, tNs };
  }
  arm(due: number, u: PendingUnload<Timer<Payload>>): Timer<Payload> {
    return this.c.timers.arm(due, { k: "unload", unload: u });
  }
  cancel(t: Timer<Payload> | null): void {
    this.c.timers.cancel(t);
  }
}

export class Checker {
  readonly profile: ProfileName;
  readonly deadlines: Deadlines;
  private readonly c: Core;
  private readonly detach: DetachMonitor;
  private readonly refs: ReferenceMonitor;
  private readonly lifetime: LifetimeMonitor;
  private readonly iface: InterfaceMonitor;
  private readonly correspondence: CorrespondenceMonitor;
  private readonly host: HostMonitor;
  private readonly channel: ChannelMonitor;
  private readonly nodes: NodeMonitor<ViolationCtx>;
  private readonly deviceSide: DeviceSideMonitor<ViolationCtx>;
  private readonly modules: ModuleMonitor<Dev, ViolationCtx, Timer<Payload>>;
  private finished = false;

  constructor(opts: CheckerOptions) {
    const c = new Core(opts, (dev) => {
      if (dev.vnodes !== null) this.nodes.deviceFreed(dev.vnodes);
    });
    this.c = c;
    this.profile = c.profile;
    this.deadlines = c.deadlines;
    this.detach = new DetachMonitor(c);
    this.refs = new ReferenceMonitor(c);
    this.lifetime = new LifetimeMonitor(c);
    this.iface = new InterfaceMonitor(c);
    this.correspondence = new CorrespondenceMonitor(c);
    this.host = new HostMonitor(c);
    this.channel = new ChannelMonitor(c);
    // One object with its methods on a class, not a dozen closures a
    // checker: a shrink starts a checker a run, and each closure was an
    // allocation of its own in that run's garbage.
    const host = new CheckerHost(c);
    this.nodes = new NodeMonitor<ViolationCtx>(host);
    this.deviceSide = new DeviceSideMonitor<ViolationCtx>(host, deviceSideCtx);
    this.modules = new ModuleMonitor<Dev, ViolationCtx, Timer<Payload>>(host);
  }

  // ------------------------------------------------------------------ public

  /** Feeds one event; returns the verdicts it (and deadlines passed before it) produced. */
  push(e: ModelEvent): readonly Verdict[] {
    // Events of every type pass here: each field read is a slow megamorphic one, so each is read once.
    return this.pushTyped(e, e.type, e.t);
  }

  /**
   * push(e) with e's type and time given: a caller that made the event knows
   * them (src/check's adapter), and reading them from events of a dozen
   * shapes costs a megamorphic load each. type and et must be e's own.
   */
  pushTyped(e: ModelEvent, type: ModelEvent["type"], et: number): readonly Verdict[] {
    if (this.finished) throw new Error("Checker.push after finish()");
    const c = this.c;
    c.batch = null;
    const t = et > c.now ? et : c.now;
    c.now = t;
    this.fireDue(t);
    c.events++;
    if (isGuestType(type)) this.channel.onGuestFrame();
    // Cases in the order of how often a storm reports them (a string switch compares in turn).
    switch (type) {
      case "device":
        this.onDevice(e as DeviceEvent);
        this.deviceSide.onGuestDevice(e as DeviceEvent);
        break;
      case "ifnet":
        this.iface.onIf(e as IfEvent);
        break;
      case "ref":
        this.refs.onRef(e as RefEvent);
        break;
      case "host-result":
        this.host.onHostResult(e as Ev<"host-result">);
        break;
      case "host-add":
        this.correspondence.onHostAdd(e as HostAddEvent);
        this.channel.onHostAdd(e as HostAddEvent);
        break;
      case "host-remove":
        this.correspondence.onHostRemove(e as HostRemoveEvent);
        break;
      case "qmp-device-deleted":
        this.host.onDeviceDeleted(e as Ev<"qmp-device-deleted">);
        break;
      case "heartbeat":
        this.channel.onHeartbeat(e as Ev<"heartbeat">);
        break;
      case "device-side":
        this.deviceSide.onTransfers(e as DeviceSideEvent);
        break;
      case "vnode":
        this.onVnode(e as VnodeEvent);
        break;
      case "module":
        this.modules.on(e as Ev<"module">);
        break;
      case "host-action": {
        const a = e as Ev<"host-action">;
        c.trackAction(a.actionId, { action: a.action, nic: c.nics.get(a.nicId) ?? null, nicId: a.nicId, event: a });
        break;
      }
      case "hello":
        c.setCapabilities((e as Ev<"hello">).capabilities);
        this.channel.onHello();
        this.host.onHello(e as Ev<"hello">);
        break;
      case "panic":
        this.detach.panic(e as Ev<"panic">);
        break;
      case "guest-other":
        break;
      case "channel":
        this.channel.onChannel(e as Ev<"channel">);
        break;
      case "machine":
        this.host.onMachine(e as Ev<"machine">);
        this.channel.onMachine(e as Ev<"machine">);
        break;
    }
    const out = c.batch;
    c.batch = null;
    return out ?? EMPTY;
  }

  /**
   * Moves trace time to tNs without an event and judges the deadlines due
   * before it. A live run calls this on a timer so a hang is reported while it
   * lasts; the verdicts are the ones a replay gives at its next event.
   */
  advance(tNs: number): readonly Verdict[] {
    if (this.finished) throw new Error("Checker.advance after finish()");
    const c = this.c;
    if (!(tNs > c.now)) return EMPTY;
    c.batch = null;
    c.now = tNs;
    this.fireDue(tNs);
    const out = c.batch;
    c.batch = null;
    return out ?? EMPTY;
  }

  /** Judges deadlines due before endTNs (default: the last event's time) and summarises. */
  finish(endTNs?: number): CheckResult {
    this.close(endTNs);
    return this.c.result();
  }

  /**
   * finish() without the summary: judges the deadlines due before endTNs and
   * ends the check. finish() later gives the result (and judges nothing more).
   * For runs that may never read the summary (a shrink makes thousands).
   */
  close(endTNs?: number): void {
    const c = this.c;
    if (!this.finished) {
      c.batch = null;
      const end = endTNs !== undefined && endTNs > c.now ? endTNs : c.now;
      c.now = end;
      if (c.telemetryTimer === null && c.guestFrames === 0 && c.events > 0) this.channel.armTelemetry({ t: 0, index: 0 });
      this.fireDue(end);
      this.finished = true;
      // Rules judged on every frame are counted once here, not per frame on the hot path.
      if (c.guestFrames > 0) {
        c.exercise("guest-no-panic");
        c.exercise("commands-acknowledged");
      }
      if (c.machineSeen) c.exercise("machine-does-not-crash");
      c.batch = null;
    }
  }

  /** What the checker holds on to now: live devices, NICs and tombstones (memory is bounded by these). */
  retained(): { devices: number; nics: number; tombstones: number } {
    return { devices: this.c.devices.size, nics: this.c.nics.size, tombstones: this.c.tombs.size };
  }

  // ------------------------------------------------------------------ routing

  /** Finds (or adopts) the device an event names, then hands the event to the family that judges its kind. */
  private onDevice(e: DeviceEvent): void {
    const c = this.c;
    let dev = c.device(e.name);
    if (dev !== undefined && e.instance !== 0 && dev.instance !== 0 && e.instance !== dev.instance && e.kind !== "attach-begin") {
      const tomb = c.findTomb(e.name, e.instance);
      if (tomb) return this.lifetime.onTombDevice(e, tomb);
    }
    if (e.kind === "attach-begin" || (dev === undefined && e.kind === "attach-end")) {
      dev = this.detach.attachBegin(e);
      if (e.kind === "attach-begin") return;
    }
    if (dev === undefined) {
      const tomb = c.findTomb(e.name, e.instance);
      if (tomb) return this.lifetime.onTombDevice(e, tomb);
      // A device the trace never saw attach (trace began mid-run): adopt it quietly.
      const state: DeviceState =
        e.kind === "free"
          ? "detached"
          : e.kind === "detach-end" || e.kind.startsWith("drain") || e.kind === "commit" || e.kind === "detach-step" || e.kind === "detach-reported"
            ? "detaching"
            : "running";
      dev = c.newDev(e.name, e, c.joinNic(e.serial, e.mac), state);
      if (state === "detaching") dev.attempt = newAttempt(e.t, e.index, e.force, e.thread);
    }
    c.ringPush(dev, e);
    if (e.driver && !dev.driver) dev.driver = e.driver;
    if (e.instance && !dev.instance) dev.instance = e.instance;
    if (e.ifname && !dev.ifname) {
      dev.ifname = e.ifname;
      c.ifnames.set(e.ifname, dev);
    }
    switch (e.kind) {
      case "attach-end":
        return this.detach.attachEnd(dev, e);
      case "deactivate":
        return this.detach.deactivate(dev, e);
      case "detach-begin":
        return this.detach.detachBegin(dev, e);
      case "detach-end":
        return this.detach.detachEnd(dev, e);
      case "drain-begin":
        return this.refs.drainBegin(dev, e);
      case "drain-end":
        return this.refs.drainEnd(dev, e);
      case "free":
        return this.lifetime.free(dev, e);
      case "detach-wait":
        return this.detach.detachWait(dev, e);
      case "commit":
        return this.detach.commit(dev, e);
      case "detach-reported":
        return this.refs.detachReported(dev, e);
      case "detach-step":
        return this.iface.detachStep(dev, e);
    }
  }

  /** Resolves the device a vnode event names; the node rules (rules/vnodes.ts) judge it. */
  private onVnode(e: VnodeEvent): void {
    const c = this.c;
    const dev = e.device ? c.device(e.device) : undefined;
    let vs: NodeState | undefined;
    if (dev === undefined) {
      const tomb = e.device ? c.findTomb(e.device, 0) : undefined;
      if (tomb && e.kind === "method-call") {
        c.uaf(e, tomb, `driver method ${e.op} on ${e.path}`);
        return;
      }
    } else {
      c.ringPush(dev, e);
      vs = nodeOf((dev.vnodes ??= new Map()), e.path);
    }
    this.nodes.on(e, vs, { at: e, dev: dev ?? null, device: e.device, holders: e.holder ? [e.holder] : [] });
  }

  // ------------------------------------------------------------------ deadlines

  private fireDue(t: number): void {
    const c = this.c;
    if (c.unreachableSince >= 0) return;
    for (;;) {
      const tm = c.timers.popDue(t);
      if (tm === undefined) return;
      this.fire(tm);
    }
  }

  /** A deadline passed: the family that armed it judges it. */
  private fire(tm: Timer<Payload>): void {
    const p = tm.payload;
    switch (p.k) {
      case "telemetry":
        return this.channel.deadline(tm, p);
      case "finalise":
        return this.host.finaliseDeadline(tm, p);
      case "attach":
        return this.correspondence.attachDeadline(tm, p);
      case "remove":
        return this.correspondence.removeDeadline(tm, p);
      case "detach":
        return this.detach.deadline(tm, p);
      case "unload": {
        if (!this.c.guestJudgeable(tm)) return;
        p.unload.timer = null;
        this.modules.deadline(p.unload, tm.due);
        return;
      }
    }
  }
}

/** Convenience: checks a whole event sequence. */
export function checkEvents(events: Iterable<ModelEvent>, opts: CheckerOptions, endTNs?: number): CheckResult {
  const c = new Checker(opts);
  for (const e of events) c.push(e);
  return c.finish(endTNs);
}
