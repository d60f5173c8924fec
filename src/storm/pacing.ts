// Waiting on the machine's clock: for a time, or until what the guest reported
// makes a condition hold, whichever comes first. The runner's steps pace
// themselves with it; frames are delivered synchronously, so a waiter fires
// the moment the frame that satisfies it is recorded.
//
// One stop signal serves the whole run: a wait does not listen on it (a run
// makes tens of thousands of waits); stop() ends every wait under way instead.

import type { MachineClock } from "../hotplug/index.js";

const DONE = Symbol("condition met");

interface Waiter {
  cond: () => boolean;
  wake: AbortController;
}

export class Pacer {
  private readonly waiters = new Set<Waiter>();
  private readonly stopper = new AbortController();

  constructor(private readonly clock: MachineClock) {}

  /** Aborted (with the reason given to stop) once the run stops. */
  get signal(): AbortSignal {
    return this.stopper.signal;
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  /** Ends every wait and sleep under way, and every later one at once, with reason. */
  stop(reason: unknown): void {
    if (this.stopper.signal.aborted) return;
    this.stopper.abort(reason);
    for (const w of this.waiters) w.wake.abort(reason);
  }

  /** Something the conditions read has changed: wake the waits whose condition now holds. */
  notify(): void {
    if (this.waiters.size === 0) return;
    for (const w of this.waiters) {
      if (w.cond()) {
        this.waiters.delete(w);
        // Fired from inside the machine's event delivery: the machine hands
        // control back at this instant when a waited-on operation is aborted.
        w.wake.abort(DONE);
      }
    }
  }

  /** Waits on the machine clock until cond holds or deadlineNs passes; true when it holds. Throws the stop reason once stopped. */
  async waitUntil(cond: () => boolean, deadlineNs: number): Promise<boolean> {
    if (cond()) return true;
    const stop = this.stopper.signal;
    if (stop.aborted) throw stop.reason;
    const w: Waiter = { cond, wake: new AbortController() };
    this.waiters.add(w);
    try {
      await this.clock.sleep(deadlineNs, w.wake.signal);
    } catch (e) {
      if (e !== DONE && !cond()) throw e;
    } finally {
      this.waiters.delete(w);
    }
    return cond();
  }

  /** Sleeps ns of machine time; throws the stop reason once stopped. */
  async sleep(ns: number): Promise<void> {
    if (ns <= 0) return;
    await this.clock.sleep(ns, this.stopper.signal);
  }
}
