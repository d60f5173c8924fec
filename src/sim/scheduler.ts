// Discrete-event core: a binary heap of timed events in virtual nanoseconds,
// and kernel threads written as generators that yield what they wait for.
// Ties in time are broken by insertion order, so a run never depends on heap
// layout or on anything outside the simulation.

export type EventFn = (arg: unknown, n: number) => void;

/** A queued event; cancel() makes it a no-op (it stays in the heap until its time). */
export class Ev {
  cancelled = false;
  constructor(
    readonly t: number,
    readonly s: number,
    readonly fn: EventFn,
    readonly arg: unknown,
    /** A small number passed to fn with arg (a thread's wait generation), to spare an object. */
    readonly n: number,
  ) {}

  cancel(): void {
    this.cancelled = true;
  }
}

export type EventHandle = Ev;

/** A condition variable: threads wait on it, broadcast wakes them all. */
export class WaitChan {
  readonly waiters: Array<{ th: Kthread; gen: number }> = [];
  constructor(readonly name: string) {}
}

/** What a thread body yields: ns to sleep, or a channel to wait on (optionally with a timeout). */
export type Yield = number | WaitChan | TimedWait;

export class TimedWait {
  constructor(readonly chan: WaitChan, readonly ns: number) {}
}

export type ThreadBody = Generator<Yield, void, void>;

export class Kthread {
  /** Bumped at every wait, so stale wake-ups (timer after broadcast, or the reverse) are ignored. */
  gen = 0;
  done = false;
  body: ThreadBody | null = null;
  constructor(
    readonly name: string,
    readonly id: number,
    readonly sched: Scheduler,
  ) {}
}

export class Scheduler {
  now = 0;
  private heap: Ev[] = [];
  private seq = 0;
  private threadIds = 0;
  /** Set by an event that settles something a caller awaits: the current pump step ends after it. */
  yieldRequested = false;
  /** Current kernel thread (null in interrupt or host context). */
  current: Kthread | null = null;
  /** Set when the kernel can no longer run (panic, stop): threads are not resumed. */
  halted = false;

  at(t: number, fn: EventFn, arg?: unknown, n = 0): Ev {
    const ev = new Ev(t < this.now ? this.now : t, this.seq++, fn, arg, n);
    this.push(ev);
    return ev;
  }

  after(ns: number, fn: EventFn, arg?: unknown, n = 0): Ev {
    return this.at(this.now + ns, fn, arg, n);
  }

  /**
   * Runs events in (time, insertion) order until one of them requests a yield
   * or budgetMs of wall time has passed (returns true), or the queue is empty
   * (returns false).
   */
  runUntilYield(budgetMs = Infinity): boolean {
    const h = this.heap;
    // The wall clock is read every 256 events only: reading it costs more than most events.
    const until = budgetMs === Infinity ? Infinity : performance.now() + budgetMs;
    let n = 0;
    for (;;) {
      const e = h[0];
      if (e === undefined) return false;
      this.pop();
      if (e.cancelled) continue;
      this.now = e.t;
      e.fn(e.arg, e.n);
      if (this.yieldRequested) {
        this.yieldRequested = false;
        return true;
      }
      // Out of wall time: stop between events (the order of events is unchanged,
      // so a run stays a function of its seed) and let the host's timers and
      // signals in, e.g. a time limit or Ctrl-C during a long dwell.
      if ((++n & 255) === 0 && performance.now() >= until) return true;
    }
  }

  // ------------------------------------------------------------ threads

  spawn(name: string, body: ThreadBody): Kthread {
    const th = new Kthread(name, ++this.threadIds, this);
    th.body = body;
    this.at(this.now, resumeEv, th, th.gen);
    return th;
  }

  /** Wakes every waiter of chan (at the current time, in the order they waited). */
  broadcast(chan: WaitChan): void {
    const ws = chan.waiters;
    if (ws.length === 0) return;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      this.at(this.now, resumeEv, w.th, w.gen);
    }
    ws.length = 0;
  }

  resume(th: Kthread, gen: number): void {
    if (th.done || gen !== th.gen || this.halted || th.body === null) return;
    th.gen++;
    const prev = this.current;
    this.current = th;
    let r: IteratorResult<Yield, void>;
    try {
      r = th.body.next();
    } finally {
      this.current = prev;
    }
    if (r.done === true) {
      th.done = true;
      th.body = null;
      return;
    }
    const y = r.value;
    const g = th.gen;
    if (typeof y === "number") {
      this.at(this.now + y, resumeEv, th, g);
    } else if (y instanceof WaitChan) {
      y.waiters.push({ th, gen: g });
    } else {
      y.chan.waiters.push({ th, gen: g });
      // Whichever comes first, the broadcast or this timer, resumes the thread; the other is stale.
      this.at(this.now + y.ns, resumeEv, th, g);
    }
  }

  // ------------------------------------------------------------ heap

  private push(ev: Ev): void {
    const h = this.heap;
    let i = h.length;
    h.push(ev);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = h[p]!;
      if (pe.t < ev.t || (pe.t === ev.t && pe.s < ev.s)) break;
      h[i] = pe;
      i = p;
    }
    h[i] = ev;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    const n = h.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      let ce = h[l]!;
      if (r < n) {
        const re = h[r]!;
        if (re.t < ce.t || (re.t === ce.t && re.s < ce.s)) {
          c = r;
          ce = re;
        }
      }
      if (last.t < ce.t || (last.t === ce.t && last.s < ce.s)) break;
      h[i] = ce;
      i = c;
    }
    h[i] = last;
  }
}

function resumeEv(a: unknown, gen: number): void {
  const th = a as Kthread;
  th.sched.resume(th, gen);
}
