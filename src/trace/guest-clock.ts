// Guest timestamps on the host's trace clock, from the clock samples a run
// recorded: the trace viewers show a guest event when the guest says it
// happened, not when its frame reached the host (queueing in the agent, the
// serial line and the host's event loop all delay the latter).
//
// Each sample pairs a guest time with the midpoint of its round trip on the
// host clock (src/telemetry/clock.ts). Between samples the mapping is linear
// (the guest clock drifts slowly against the host's); outside them it follows
// the line through the session's first and last samples. Each guest session
// (from one Hello to the next) has its own clock: a reboot restarts it.

import type { plugstorm } from "../gen/plugstorm.js";

type TraceRecord = plugstorm.trace.v1.IRecord;

interface Point {
  guest: number;
  host: number;
}

/** One session's guest -> host mapping. */
class SessionClock {
  private readonly points: Point[] = [];
  /** Host ns per guest ns outside the samples. */
  private slope = 1;

  add(p: Point): void {
    const last = this.points.at(-1);
    // Both clocks are monotonic: a sample that does not advance both is
    // queueing noise (or a clock step) and would fold the mapping back.
    if (last && (p.guest <= last.guest || p.host <= last.host)) return;
    this.points.push(p);
  }

  seal(): void {
    const a = this.points[0];
    const b = this.points.at(-1);
    if (a && b && b.guest > a.guest) this.slope = (b.host - a.host) / (b.guest - a.guest);
  }

  get empty(): boolean {
    return this.points.length === 0;
  }

  toHost(guest: number): number {
    const ps = this.points;
    const first = ps[0]!;
    const last = ps[ps.length - 1]!;
    if (guest <= first.guest) return first.host - (first.guest - guest) * this.slope;
    if (guest >= last.guest) return last.host + (guest - last.guest) * this.slope;
    // The last sample at or before guest (binary search: points ascend in guest).
    let lo = 0;
    let hi = ps.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (ps[mid]!.guest <= guest) lo = mid;
      else hi = mid;
    }
    const p = ps[lo]!;
    const q = ps[hi]!;
    return p.host + ((guest - p.guest) * (q.host - p.host)) / (q.guest - p.guest);
  }
}

export class GuestClockMap {
  /** Per record index: its session's clock, for guest frames only. */
  private readonly sessionOf = new Map<number, SessionClock>();

  /** Reads every clock sample and Hello of the records (in trace order). */
  constructor(records: readonly TraceRecord[]) {
    let session = new SessionClock();
    const all = [session];
    records.forEach((r, i) => {
      if (r.guest?.hello) {
        session = new SessionClock();
        all.push(session);
      }
      if (r.guest) this.sessionOf.set(i, session);
      const c = r.clock;
      if (c && c.hostSendNs != null && c.hostRecvNs != null && c.guestTimeNs != null) {
        const send = Number(c.hostSendNs);
        const recv = Number(c.hostRecvNs);
        session.add({ guest: Number(c.guestTimeNs), host: send + Math.floor((recv - send) / 2) });
      }
    });
    for (const s of all) s.seal();
  }

  /**
   * The host trace time of record i's guest frame by its guest timestamp, or
   * undefined when its session recorded no clock sample (the viewer then
   * shows it at receive time).
   */
  hostTimeOf(i: number, guestTimeNs: number): number | undefined {
    const s = this.sessionOf.get(i);
    if (!s || s.empty) return undefined;
    // Never before the trace began: a viewer's timestamps are unsigned.
    return Math.max(0, Math.round(s.toHost(guestTimeNs)));
  }
}
