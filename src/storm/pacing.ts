// Waiting on the machine's clock: for a time, or until what the guest reported
// makes a condition hold, whichever comes first. The runner's steps pace
// themselves with it; frames are delivered synchronously, so a waiter fires
// the moment the frame that satisfies it is recorded.
//
// A run makes tens of thousands of waits on a fast machine, and an
// AbortController (plus a listener on the run's stop signal) for each cost
// more than the wait itself: on a clock with timers (the sim machine's) a wait
// is a timer that notify() or stop() ends; on other clocks it is a sleep with
// an AbortController of its own. Either way no wait listens on the stop
// signal: stop() ends every wait under way.

import type { MachineClock } from "../hotplug/index.js";

const DONE = Symbol("condition met");
const HOLDS = Promise.resolve(true);
const SLEPT = Promise.resolve();
function nothing(): void {}

interface Waiter {
  /** Null for a plain sleep. */
  cond: (() => boolean) | null;
  /** Ends the wait: for a condition met, or for the stop (with its reason). */
  end: (reason: unknown) => void;
}

export class Pacer {
  private readonly waiters = new Set<Waiter>();
  /**
   * Made when a machine operation first asks for the signal: a shrink's short
   * runs often make none, and an AbortController and its abort event cost
   * about as much as such a run's own waits.
   */
  private stopper: AbortController | null = null;
  private isStopped = false;
  private reason: unknown;

  constructor(private readonly clock: MachineClock) {}

  /** Aborted (with the reason given to stop) once the run stops: for machine operations that take a signal. */
  get signal(): AbortSignal {
    if (this.stopper === null) {
      this.stopper = new AbortController();
      if (this.isStopped) this.stopper.abort(this.reason);
    }
    return this.stopper.signal;
  }

  get stopped(): boolean {
    return this.isStopped;
  }

  /** Ends every wait and sleep under way, and every later one at once, with reason. */
  stop(reason: unknown): void {
    if (this.isStopped) return;
    this.isStopped = true;
    this.reason = reason;
    this.stopper?.abort(reason);
    for (const w of this.waiters) w.end(reason);
    this.waiters.clear();
  }

  /** Something the conditions read has changed: end the waits whose condition now holds. */
  notify(): void {
    if (this.waiters.size === 0) return;
    for (const w of this.waiters) {
      if (w.cond?.()) {
        this.waiters.delete(w);
        // Called from inside the machine's event delivery: the machine hands
        // control back at this instant when a waited-on operation ends.
        w.end(DONE);
      }
    }
  }

  // waitUntil and sleep hand on wait's promise rather than awaiting it in an
  // async function of their own: one promise less per wait, and a run makes
  // tens of thousands.

  /** Waits on the machine clock until cond holds or deadlineNs passes; true when it holds. Throws the stop reason once stopped. */
  waitUntil(cond: () => boolean, deadlineNs: number): Promise<boolean> {
    if (cond()) return HOLDS;
    if (this.clock.timer) return this.timed(cond, deadlineNs, cond);
    return this.wait(cond, deadlineNs).then(cond);
  }

  /** Sleeps ns of machine time; throws the stop reason once stopped. */
  sleep(ns: number): Promise<void> {
    if (ns <= 0) return SLEPT;
    if (this.clock.timer) return this.timed(null, ns, nothing);
    return this.wait(null, ns);
  }

  /**
   * A wait on a clock with timers (the sim machine's): the timer's promise
   * and one continuation, which gives what `then` gives. No async function:
   * its promise and suspended frame were most of what a wait allocated, and
   * a shrink's short runs make a few dozen waits each.
   */
  private timed<T>(cond: (() => boolean) | null, ns: number, then: () => T): Promise<T> {
    if (this.isStopped) return Promise.reject(this.reason);
    const t = this.clock.timer!(ns);
    const w: Waiter = { cond, end: t.end };
    this.waiters.add(w);
    return t.done.then(
      () => {
        this.waiters.delete(w);
        if (this.isStopped && !cond?.()) throw this.reason;
        return then();
      },
      (e: unknown) => {
        this.waiters.delete(w);
        throw e;
      },
    );
  }

  /** A wait on a clock without timers: a sleep that notify() or stop() aborts. */
  private async wait(cond: (() => boolean) | null, ns: number): Promise<void> {
    if (this.isStopped) throw this.reason;
    const clock = this.clock;
    const wake = new AbortController();
    const w: Waiter = { cond, end: (reason) => wake.abort(reason) };
    this.waiters.add(w);
    try {
      await clock.sleep(ns, wake.signal);
    } catch (e) {
      if (e !== DONE && !cond?.()) throw e;
    } finally {
      this.waiters.delete(w);
    }
  }
}
