// Several NICs in flight on a real guest: each NIC's steps run in order on its
// own lane, so one NIC's add can go out while another is still being
// enumerated by the guest (USB enumeration takes ~0.5 s under TCG). Every wait
// and deadline of a step is unchanged; only steps on different NICs overlap,
// never more than maxInFlight NICs plugged, and the dwell becomes a minimum (a
// remove still waits for its NIC's attach). The sim machine keeps one step at
// a time, so its traces stay a function of the seed alone; so does a storm
// with one NIC in flight.

import type { Step } from "./spec.js";

/** What the lanes need from the run. */
export interface LaneHost {
  /** Runs one step to its end (its waits included). */
  execute(step: Step): Promise<void> | undefined;
  /** The machine id of the NIC a step names ("" for none). */
  nicOf(step: Step): string;
  /** Whether a NIC is plugged in now. */
  plugged(nic: string): boolean;
  /** The run's stop signal: aborted once the run stops (a method: see the runner's host). */
  signal(): AbortSignal;
}

const LANE_OPS: ReadonlySet<Step["op"]> = new Set(["add", "remove", "hold", "release", "traffic", "traffic-stop", "detach", "device-fault"]);

export class Lanes {
  private readonly lanes = new Map<string, Promise<void>>();
  /** NICs whose add has been issued and whose cycle's remove has not finished. */
  private readonly laneNics = new Set<string>();
  private laneError: unknown;
  private laneWake: (() => void) | null = null;
  /**
   * NICs whose add is waiting for the guest's attach, and NICs whose removal
   * (or guest-side detach) is under way. A lane's add waits while any removal
   * is under way, and a remove or detach while any attach is pending: Linux
   * hands a NIC's interface name (usb0) to the next device the moment it
   * unregisters the old one, and the guest agent joins kernel events by
   * interface name, so an attach overlapping another NIC's detach makes the
   * trace ambiguous (measured: a FREE lost, a false lifecycle-order verdict).
   */
  private readonly attaching = new Set<string>();
  private readonly removingPhase = new Set<string>();
  private phaseWaiters: Array<() => void> = [];

  constructor(
    private readonly host: LaneHost,
    private readonly maxInFlight: number,
  ) {}

  /** Wakes whatever waits for a lane, so it sees the stop. */
  stopped(): void {
    this.wakeLaneWaiter();
    this.wakePhaseWaiters();
  }

  /**
   * Starts a step on its lane (or runs it, when it has none); throws the first
   * lane's error. A promise only when there is something to wait for: a step
   * run in turn that waits for nothing (a guest command) is done on return.
   */
  dispatch(step: Step): Promise<void> | undefined {
    if (this.laneError !== undefined) throw this.laneError;
    if (step.op === "sleep") return this.host.execute(step);
    return this.dispatchToLane(step);
  }

  private async dispatchToLane(step: Step): Promise<void> {
    const host = this.host;
    const nic = host.nicOf(step);
    if (!nic || !LANE_OPS.has(step.op)) {
      // Module unloads and faults touch every NIC: run them with no lane under way.
      await this.drain();
      if (this.laneError !== undefined) throw this.laneError;
      await host.execute(step);
      if (step.op === "sick") this.laneDone(nic);
      return;
    }
    if (step.op === "add") {
      // The schedule counts a NIC out when its remove is issued; a lane's remove may
      // still be under way, so keep the machine at maxInFlight NICs at most.
      while (this.laneNics.size >= this.maxInFlight && this.laneError === undefined && !host.signal().aborted) {
        await new Promise<void>((r) => (this.laneWake = r));
      }
      if (this.laneError !== undefined) throw this.laneError;
      if (host.signal().aborted) throw host.signal().reason;
      this.laneNics.add(nic);
    }
    const prev = this.lanes.get(nic) ?? Promise.resolve();
    const lane = prev.then(async () => {
      if (this.laneError !== undefined || host.signal().aborted) return;
      // Attaches and removals are kept apart (see `attaching`).
      const phase = step.op === "add" ? this.attaching : step.op === "remove" || step.op === "detach" ? this.removingPhase : null;
      const other = step.op === "add" ? this.removingPhase : this.attaching;
      try {
        if (phase) {
          while (other.size > 0 && !host.signal().aborted) await new Promise<void>((r) => this.phaseWaiters.push(r));
          if (host.signal().aborted) return;
          phase.add(nic);
        }
        await host.execute(step);
      } catch (e) {
        if (this.laneError === undefined) this.laneError = e;
        this.wakeLaneWaiter();
      } finally {
        if (phase?.delete(nic)) this.wakePhaseWaiters();
        if (step.op === "remove" || (step.op === "add" && !host.plugged(nic))) this.laneDone(nic);
      }
    });
    this.lanes.set(nic, lane);
    // A failed add ends its lane; let a later add of the same id start fresh.
    void lane.then(() => {
      if (this.lanes.get(nic) === lane && !this.laneNics.has(nic)) this.lanes.delete(nic);
    });
  }

  /** Waits for every lane to end; then throws the first lane's error, if any. */
  async finish(): Promise<void> {
    await this.drain();
    if (this.laneError !== undefined) throw this.laneError;
  }

  /** Waits for every lane to end, errors or not. */
  async drain(): Promise<void> {
    while (this.lanes.size > 0) {
      const all = [...this.lanes.values()];
      await Promise.allSettled(all);
      for (const [k, v] of this.lanes) if (all.includes(v)) this.lanes.delete(k);
    }
  }

  private wakePhaseWaiters(): void {
    const ws = this.phaseWaiters;
    this.phaseWaiters = [];
    for (const w of ws) w();
  }

  private laneDone(nic: string): void {
    this.laneNics.delete(nic);
    this.wakeLaneWaiter();
  }

  private wakeLaneWaiter(): void {
    const w = this.laneWake;
    this.laneWake = null;
    w?.();
  }
}
