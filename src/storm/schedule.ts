// The seeded scheduler: turns a storm's random schedule into a step sequence
// that depends on the seed alone (never on how fast the machine answers), so a
// seed names one exact sequence on every machine, and the sequence written out
// is an explicit storm that runs the same way.

// One seeded generator for the whole project: the simulation's (the same
// xoshiro128** the scheduler always used, so seeds keep naming the same schedules).
import { Rng } from "../sim/index.js";
import { DRIVER_MODULES, busOf, isPlugTimeFault, type DeviceFault, type Distribution, type NicKind, type Step, type StormSpec } from "./spec.js";

/** Nanoseconds drawn from a distribution, whole microseconds so written storms stay readable. */
export function drawDuration(rng: Rng, d: Distribution): number {
  let ns: number;
  if (d.type === "fixed") ns = d.ns;
  else if (d.type === "uniform") ns = d.minNs + rng.float() * (d.maxNs - d.minNs);
  else ns = Math.min(d.maxNs, -Math.log(1 - rng.float()) * d.meanNs);
  return d.type === "fixed" ? ns : Math.round(ns / 1000) * 1000;
}

/** How long after the pull an "until-removal" holder lets go. */
const RELEASE_AFTER_PULL: Distribution = { type: "uniform", minNs: 1e6, maxNs: 5e6 };

interface Planned {
  tNs: number;
  /** Ties keep planning order. */
  order: number;
  step: Step;
}

/**
 * What an explicit list's source holds where a random schedule keeps its
 * generator and counts: shared, never read or written. Objects of the same
 * kinds (an Rng, arrays of the same elements kinds), not null: a field that
 * held one kind and then another would throw away the code V8 optimised for
 * the first (a process runs random storms and a shrink's explicit ones).
 */
const NO_RNG = new Rng(0);
const NO_COUNTS: number[] = [0].slice(1);
const NO_FLAGS: boolean[] = [false].slice(1);

/**
 * Yields steps one at a time. The runner may call stopNewCycles() (duration
 * reached, violation, abort): after that only the steps that finish cycles
 * already started come out, so every NIC added is removed.
 */
export class StepSource {
  /** NO_RNG for an explicit list (a shrink's every run): it draws nothing. */
  private readonly rng: Rng;
  private readonly queue: Planned[] = [];
  private order = 0;
  private nowNs = 0;
  private nextStartNs = 0;
  private started = 0;
  // Made true and then false by the constructor: V8 takes a field no object
  // of a class has rewritten for a constant and optimises code on it, and the
  // first stop in a process (a shrink's first run, after storms that ran to
  // their end) threw away next() and the step loop around it.
  private stopped = true;
  private nicCounter = 0;
  private readonly inFlight = new Map<string, NicKind>();
  private readonly explicit: Step[] | null;
  private explicitIndex = 0;
  /** Cycles the schedule will run (explicit: the number of adds). */
  readonly totalCycles: number;
  // What next() asks before every step, read once: a shrink's storms are
  // objects of another shape than a storm run before it, and the step loop
  // (next() is optimised inside it) deopted on reading them.
  private readonly cycles: number;
  private readonly maxInFlight: number;
  private readonly mix: StormSpec["nics"]["mix"];
  private readonly ports: StormSpec["nics"]["ports"];
  // A random schedule's NICs in flight counted as they come and go, per mix
  // entry and on the USB bus: asked before every step, these were walks of
  // inFlight, a string test of each kind's bus, and per cycle a filtered
  // list of the kinds with room.
  private readonly mixInFlight: number[];
  private readonly mixUsb: boolean[];
  private usbInFlight = 0;
  /** The gap between cycle starts, or null for back to back: the same distribution every cycle. */
  private readonly gap: Distribution | null;

  constructor(private readonly spec: StormSpec, seed = spec.schedule.seed) {
    const explicit = (this.explicit = spec.schedule.steps);
    this.totalCycles = explicit ? countAdds(explicit) : spec.schedule.cycles;
    this.cycles = spec.schedule.cycles;
    this.maxInFlight = spec.schedule.maxInFlight;
    this.mix = spec.nics.mix;
    this.ports = spec.nics.ports;
    // An explicit list (every run of a shrink) draws nothing and counts no
    // mix: none of the random schedule's generator, counts or gap is made.
    this.rng = explicit ? NO_RNG : new Rng(seed);
    this.mixInFlight = explicit ? NO_COUNTS : this.mix.map(() => 0);
    this.mixUsb = explicit ? NO_FLAGS : this.mix.map((m) => busOf(m.kind) === "usb");
    const rate = spec.schedule.rate;
    this.gap = !explicit && rate > 0 ? { type: "exponential", meanNs: 1e9 / rate, maxNs: 10e9 / rate } : null;
    this.stopped = false;
  }

  stopNewCycles(): void {
    this.stopped = true;
  }

  /** NICs added and not yet removed, per the plan. */
  get planned(): ReadonlyMap<string, NicKind> {
    return this.inFlight;
  }

  next(): Step | null {
    if (this.explicit) return this.nextExplicit();
    for (;;) {
      if (!this.stopped && this.started < this.cycles && this.canStart()) {
        const at = Math.max(this.nextStartNs, this.nowNs);
        const head = this.queue[0];
        if (!head || at <= head.tNs) {
          this.startCycle(at);
          continue;
        }
      }
      const head = this.queue[0];
      if (!head) return null;
      if (head.tNs > this.nowNs) {
        // Emit the wait first; the event itself comes on the next call.
        const ns = head.tNs - this.nowNs;
        this.nowNs = head.tNs;
        return { op: "sleep", ns };
      }
      this.queue.shift();
      if (head.step.op === "remove" || head.step.op === "sick") this.landed(head.step.nic);
      return head.step;
    }
  }

  private nextExplicit(): Step | null {
    const steps = this.explicit!;
    while (this.explicitIndex < steps.length) {
      const s = steps[this.explicitIndex++]!;
      if (this.stopped && s.op === "add") {
        // Skip the whole cycle of a NIC never added.
        continue;
      }
      if (s.op === "add") this.inFlight.set(s.nic, s.kind);
      else if ("nic" in s && s.nic !== "" && !this.inFlight.has(s.nic)) continue;
      if (s.op === "remove" || s.op === "sick") this.inFlight.delete(s.nic);
      if (this.stopped && s.op === "sleep") continue;
      return s;
    }
    return null;
  }

  /** Whether pickKind would find a kind: asked before every step. */
  private canStart(): boolean {
    if (this.inFlight.size >= this.maxInFlight) return false;
    for (let i = 0; i < this.mix.length; i++) if (this.hasRoom(i)) return true;
    return false;
  }

  /** Whether the mix's entry i may start a NIC: a weight, room under its own count and on its bus's ports. */
  private hasRoom(i: number): boolean {
    const m = this.mix[i]!;
    if (m.weight <= 0 || this.mixInFlight[i]! >= m.count) return false;
    return this.mixUsb[i] ? this.usbInFlight < this.ports.usb : this.inFlight.size - this.usbInFlight < this.ports.pcmcia;
  }

  /** A kind with room left (its own count and its bus's ports), by weight; the weights summed and taken off in the mix's order, as ever. */
  private pickKind(): NicKind | null {
    const mix = this.mix;
    let total = 0;
    let last = -1;
    for (let i = 0; i < mix.length; i++) {
      if (!this.hasRoom(i)) continue;
      total += mix[i]!.weight;
      last = i;
    }
    if (last < 0) return null;
    let x = this.rng.float() * total;
    for (let i = 0; i < mix.length; i++) {
      if (!this.hasRoom(i)) continue;
      x -= mix[i]!.weight;
      if (x < 0) return mix[i]!.kind;
    }
    return mix[last]!.kind;
  }

  /** A random schedule's NIC goes in flight. */
  private launched(nic: string, kind: NicKind): void {
    this.inFlight.set(nic, kind);
    this.count(kind, 1);
  }

  /** A random schedule's NIC's cycle ends (its remove, or the sick case's unload). */
  private landed(nic: string): void {
    const kind = this.inFlight.get(nic);
    if (kind === undefined) return;
    this.inFlight.delete(nic);
    this.count(kind, -1);
  }

  private count(kind: NicKind, by: 1 | -1): void {
    // Every entry of the kind (validation lists a kind once; a spec built in code may not).
    for (let i = 0; i < this.mix.length; i++) if (this.mix[i]!.kind === kind) this.mixInFlight[i]! += by;
    if (busOf(kind) === "usb") this.usbInFlight += by;
  }

  private plan(tNs: number, step: Step): void {
    const p: Planned = { tNs, order: this.order++, step };
    let i = this.queue.length;
    while (i > 0 && (this.queue[i - 1]!.tNs > tNs || (this.queue[i - 1]!.tNs === tNs && this.queue[i - 1]!.order > p.order))) i--;
    this.queue.splice(i, 0, p);
  }

  private startCycle(t0: number): void {
    const spec = this.spec;
    const rng = this.rng;
    const kind = this.pickKind()!;
    const nic = `nic${this.nicCounter++}`;
    this.started++;
    this.nextStartNs = t0 + (this.gap !== null ? Math.round(drawDuration(rng, this.gap)) : 0);
    const dwell = drawDuration(rng, spec.schedule.dwell);
    const end = t0 + dwell;
    // Everything of one cycle happens in [t0, end]; the add goes out now.
    this.launched(nic, kind);
    const add: Step & { op: "add" } = { op: "add", nic, kind };
    this.plan(t0, add);
    for (const h of spec.holders) {
      if (!rng.chance(h.probability)) continue;
      // "until-removal": the agent lets go 1-5 ms after the card is pulled, so
      // the detach has to wait for it (held forever, it would be our leak).
      const forNs = h.hold === null ? dwell + drawDuration(rng, RELEASE_AFTER_PULL) : Math.max(1000, drawDuration(rng, h.hold));
      this.plan(t0, { op: "hold", nic, kind: h.kind, count: h.count, forNs, holder: `h-${nic}-${h.kind}` });
    }
    if (rng.chance(spec.traffic.probability)) {
      this.plan(t0, { op: "traffic", nic, pps: spec.traffic.packetsPerSecond });
      const stopAt = t0 + drawDuration(rng, spec.traffic.duration);
      if (stopAt < end) this.plan(stopAt, { op: "traffic-stop", nic });
    }
    // Drawn only for emulated NICs of storms that have faults, so every other
    // storm expands from its seed exactly as before.
    if (spec.faults !== undefined && kind.startsWith("redir-")) drawFaultsFor(spec, rng, add, t0, dwell, (t, step) => this.plan(t, step));
    const modules = DRIVER_MODULES[spec.model];
    const module = modules[kind];
    // Unloading a module detaches every instance of its driver: only do it when
    // this NIC (in flight already) is its driver's only instance, so other
    // cycles are not disturbed.
    let instances = 0;
    for (const k of this.inFlight.values()) if (modules[k] === module) instances++;
    const alone = instances === 1;
    const r = rng.float();
    const pSick = alone ? spec.sick.probability : 0;
    const pUnload = alone ? spec.unload.probability : 0;
    if (r < pSick) {
      this.plan(end, { op: "sick", nic, module, delayNs: drawDuration(rng, spec.sick.delay) });
      return;
    }
    if (r < pSick + pUnload) this.plan(end, { op: "unload", module });
    else if (rng.chance(spec.detach.probability)) this.plan(end, { op: "detach", nic, force: false });
    // Only emulated NICs can leave from the device side; drawn only for them,
    // so other storms expand from their seeds exactly as before.
    const surprise = spec.surprise;
    if (surprise !== undefined && surprise.probability > 0 && kind.startsWith("redir-") && rng.chance(surprise.probability)) {
      this.plan(end, { op: "remove", nic, via: surprise.via });
    } else this.plan(end, { op: "remove", nic });
  }
}

/** Each fault of the storm's faults section, drawn for one cycle: plug-time ones join the add, the others are armed at a drawn point before the removal. */
function drawFaultsFor(spec: StormSpec, rng: Rng, add: Step & { op: "add" }, t0: number, dwell: number, plan: (tNs: number, step: Step) => void): void {
  for (const c of spec.faults ?? []) {
    if (!rng.chance(c.probability)) continue;
    const t = c.fault;
    const fault: DeviceFault = t.kind === "late" ? { kind: "late", endpoint: t.endpoint, delayMs: Math.round(drawDuration(rng, t.delay) / 1e3) / 1e3, ...(t.count !== undefined ? { count: t.count } : {}) } : t;
    if (isPlugTimeFault(fault)) {
      (add.faults ??= []).push(fault);
      continue;
    }
    // Within the dwell; planned before the removal at its end, so it comes out first on a tie.
    const after = c.after === null ? drawDuration(rng, { type: "uniform", minNs: 0, maxNs: dwell }) : drawDuration(rng, c.after);
    plan(t0 + Math.min(after, dwell), { op: "device-fault", nic: add.nic, fault });
  }
}

/** The NIC cycles an explicit step list holds: its adds. */
export function countAdds(steps: readonly Step[]): number {
  let n = 0;
  for (const s of steps) if (s.op === "add") n++;
  return n;
}

/** The whole step list of a storm (random schedules expanded from the seed). */
export function expandSteps(spec: StormSpec, seed = spec.schedule.seed): Step[] {
  if (spec.schedule.durationNs > 0 && spec.schedule.steps === null && spec.schedule.cycles >= 1e6) {
    throw new RangeError("a storm limited by duration alone has no fixed step list; give it a cycle count");
  }
  const src = new StepSource(spec, seed);
  const out: Step[] = [];
  for (let s = src.next(); s; s = src.next()) out.push(s);
  return out;
}
