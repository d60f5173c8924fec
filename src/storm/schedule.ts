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

interface Planned {
  tNs: number;
  /** Ties keep planning order. */
  order: number;
  step: Step;
}

/**
 * Yields steps one at a time. The runner may call stopNewCycles() (duration
 * reached, violation, abort): after that only the steps that finish cycles
 * already started come out, so every NIC added is removed.
 */
export class StepSource {
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

  constructor(private readonly spec: StormSpec, seed = spec.schedule.seed) {
    this.rng = new Rng(seed);
    this.explicit = spec.schedule.steps;
    this.totalCycles = this.explicit ? this.explicit.filter((s) => s.op === "add").length : spec.schedule.cycles;
    this.cycles = spec.schedule.cycles;
    this.maxInFlight = spec.schedule.maxInFlight;
    this.mix = spec.nics.mix;
    this.ports = spec.nics.ports;
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
      if (head.step.op === "remove" || head.step.op === "sick") this.inFlight.delete(head.step.nic);
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

  /**
   * Whether pickKind would find a kind; asked before every step, so it builds
   * no list, and counts the buses' NICs in two numbers (no object a step).
   */
  private canStart(): boolean {
    if (this.inFlight.size >= this.maxInFlight) return false;
    const usb = this.usbInFlight();
    const pcmcia = this.inFlight.size - usb;
    for (const m of this.mix) if (this.hasRoom(m, usb, pcmcia)) return true;
    return false;
  }

  /** NICs in flight on the USB bus (the rest are on PC Card's). */
  private usbInFlight(): number {
    let usb = 0;
    for (const k of this.inFlight.values()) if (busOf(k) === "usb") usb++;
    return usb;
  }

  private hasRoom(m: StormSpec["nics"]["mix"][number], usb: number, pcmcia: number): boolean {
    if (m.weight <= 0) return false;
    let mine = 0;
    for (const k of this.inFlight.values()) if (k === m.kind) mine++;
    const bus = busOf(m.kind);
    return mine < m.count && (bus === "usb" ? usb : pcmcia) < this.ports[bus];
  }

  /** A kind with room left (its own count and its bus's ports), by weight. */
  private pickKind(draw: boolean): NicKind | null {
    const usb = this.usbInFlight();
    const pcmcia = this.inFlight.size - usb;
    const candidates = this.mix.filter((m) => this.hasRoom(m, usb, pcmcia));
    if (candidates.length === 0) return null;
    if (!draw) return candidates[0]!.kind;
    const total = candidates.reduce((s, m) => s + m.weight, 0);
    let x = this.rng.float() * total;
    for (const m of candidates) {
      x -= m.weight;
      if (x < 0) return m.kind;
    }
    return candidates[candidates.length - 1]!.kind;
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
    const kind = this.pickKind(true)!;
    const nic = `nic${this.nicCounter++}`;
    this.started++;
    this.nextStartNs = t0 + (spec.schedule.rate > 0 ? Math.round(drawDuration(rng, { type: "exponential", meanNs: 1e9 / spec.schedule.rate, maxNs: 10e9 / spec.schedule.rate })) : 0);
    const dwell = drawDuration(rng, spec.schedule.dwell);
    const end = t0 + dwell;
    // Everything of one cycle happens in [t0, end]; the add goes out now.
    this.inFlight.set(nic, kind);
    const add: Step & { op: "add" } = { op: "add", nic, kind };
    this.plan(t0, add);
    for (const h of spec.holders) {
      if (!rng.chance(h.probability)) continue;
      // "until-removal": the agent lets go 1-5 ms after the card is pulled, so
      // the detach has to wait for it (held forever, it would be our leak).
      const forNs = h.hold === null ? dwell + drawDuration(rng, { type: "uniform", minNs: 1e6, maxNs: 5e6 }) : Math.max(1000, drawDuration(rng, h.hold));
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
    const module = DRIVER_MODULES[spec.model][kind];
    // Unloading a module detaches every instance of its driver: only do it when
    // this NIC is its driver's only instance, so other cycles are not disturbed.
    let alone = true;
    for (const [n, k] of this.inFlight) if (n !== nic && DRIVER_MODULES[spec.model][k] === module) alone = false;
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
