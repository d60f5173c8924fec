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

import { setMaxListeners } from "node:events";
import type { MachineClock } from "../hotplug/index.js";

const DONE = Symbol("condition met");
const HOLDS = Promise.resolve(true);
const SLEPT = Promise.resolve();
function nothing(): void {}

/**
 * The run's stop as the sim machine's operations take it: the part of an
 * AbortSignal they and the telemetry channel use (aborted, reason,
 * throwIfAborted, abort listeners), without Node's EventTarget. Every run
 * makes one (its first plug passes it) and aborts it at its end, and an
 * AbortController's construction, listeners and abort event cost ~5% of a
 * shrink's short run. Given only to the sim machine (see Pacer): a real
 * machine may hand the signal to Node, which wants a real AbortSignal.
 * Listeners are called as EventTarget calls them: once each, in the order
 * added, none removed before its turn, after aborted and reason are set.
 */
/**
 * Abort listeners the run's signal may hold at once before Node warns of a
 * leak. Every NIC in flight waits on it in a few places at a time (its QMP
 * command, a QMP event, the guest's answer), on up to 64 lanes
 * (machine.usbPorts): Node's default of 10 printed a MaxListenersExceeded
 * warning as soon as 11 lanes plugged at once, on clean runs. A real leak (a
 * listener a cycle never taken away) still passes this within a few hundred
 * cycles and is still reported.
 */
export const RUN_SIGNAL_LISTENERS = 64 * 4 + 16;

type AbortListener = ((e: Event) => void) | { handleEvent(e: Event): void };
class StopSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Set<AbortListener> | null = null;

  addEventListener(type: string, listener: AbortListener): void {
    if (type !== "abort" || this.aborted) return;
    (this.listeners ??= new Set()).add(listener);
  }

  removeEventListener(type: string, listener: AbortListener): void {
    if (type === "abort") this.listeners?.delete(listener);
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    if (listeners === null) return;
    for (const l of [...listeners]) {
      if (!listeners.delete(l)) continue;
      if (typeof l === "function") l.call(this, ABORT_EVENT);
      else l.handleEvent(ABORT_EVENT);
    }
  }
}
const ABORT_EVENT = { type: "abort" } as Event;

interface Waiter {
  /** Null for a plain sleep. */
  cond: (() => boolean) | null;
  /** Ends the wait: for a condition met, or for the stop (with its reason). */
  end: (reason: unknown) => void;
}

export class Pacer {
  private readonly waiters = new Set<Waiter>();
  /**
   * How many of the waiters have a condition: notify() comes with every guest
   * frame, and most of a run's frames come while the run only sleeps, with
   * nothing to test.
   */
  private conditions = 0;
  /**
   * Made when a machine operation first asks for the signal: a shrink's short
   * runs often make none, and an AbortController and its abort event cost
   * about as much as such a run's own waits.
   */
  private stopper: AbortController | StopSignal | null = null;
  private isStopped = false;
  private reason: unknown;

  /** lightSignal: the signal is a StopSignal (for the sim machine only, see there). */
  constructor(
    private readonly clock: MachineClock,
    private readonly lightSignal = false,
  ) {}

  /** Aborted (with the reason given to stop) once the run stops: for machine operations that take a signal. */
  get signal(): AbortSignal {
    if (this.stopper === null) {
      if (this.lightSignal) this.stopper = new StopSignal();
      else {
        const c = (this.stopper = new AbortController());
        setMaxListeners(RUN_SIGNAL_LISTENERS, c.signal);
      }
      if (this.isStopped) this.stopper.abort(this.reason);
    }
    return this.stopper instanceof StopSignal ? (this.stopper as unknown as AbortSignal) : this.stopper.signal;
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
    this.conditions = 0;
  }

  /** Something the conditions read has changed: end the waits whose condition now holds. */
  notify(): void {
    if (this.conditions === 0) return;
    for (const w of this.waiters) {
      if (w.cond?.()) {
        this.forget(w);
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
    this.add(w);
    return t.done.then(
      () => {
        this.forget(w);
        if (this.isStopped && !cond?.()) throw this.reason;
        return then();
      },
      (e: unknown) => {
        this.forget(w);
        throw e;
      },
    );
  }

  private add(w: Waiter): void {
    this.waiters.add(w);
    if (w.cond !== null) this.conditions++;
  }

  /** Takes a waiter out (once: a wait ended by notify() or stop() is taken out again when its promise settles). */
  private forget(w: Waiter): void {
    if (this.waiters.delete(w) && w.cond !== null) this.conditions--;
  }

  /** A wait on a clock without timers: a sleep that notify() or stop() aborts. */
  private async wait(cond: (() => boolean) | null, ns: number): Promise<void> {
    if (this.isStopped) throw this.reason;
    const clock = this.clock;
    const wake = new AbortController();
    const w: Waiter = { cond, end: (reason) => wake.abort(reason) };
    this.add(w);
    try {
      await clock.sleep(ns, wake.signal);
    } catch (e) {
      if (e !== DONE && !cond?.()) throw e;
    } finally {
      this.forget(w);
    }
  }
}
