// Guest/host clock alignment from command round trips. The guest stamps the
// ack frame between the host's send and receive, so each round trip bounds the
// offset; the tightest bound (minimum round trip) in a recent window wins,
// since queueing only ever widens a round trip.

/** One round trip: guest time = host time + offsetNs, within ± errorNs. Shaped like trace ClockSample. */
export interface ClockSample {
  hostSendNs: number;
  hostRecvNs: number;
  guestTimeNs: number;
  offsetNs: number;
  errorNs: number;
}

export class ClockAligner {
  private readonly window: ClockSample[] = [];

  /** window: how many recent samples the estimate chooses from (drift makes old ones stale). */
  constructor(private readonly windowSize = 32) {
    if (!Number.isInteger(windowSize) || windowSize < 1) throw new RangeError(`ClockAligner window must be a positive integer, got ${windowSize}`);
  }

  /**
   * Adds a round trip; returns its sample. Throws RangeError if recv precedes
   * send (a clock bug in the caller, not the guest's fault).
   */
  add(hostSendNs: number, hostRecvNs: number, guestTimeNs: number): ClockSample {
    if (hostRecvNs < hostSendNs) throw new RangeError(`clock sample: host receive ${hostRecvNs} ns precedes send ${hostSendNs} ns`);
    const rtt = hostRecvNs - hostSendNs;
    const half = Math.floor(rtt / 2);
    const sample: ClockSample = {
      hostSendNs,
      hostRecvNs,
      guestTimeNs,
      offsetNs: guestTimeNs - (hostSendNs + half),
      errorNs: rtt - half,
    };
    this.window.push(sample);
    if (this.window.length > this.windowSize) this.window.shift();
    return sample;
  }

  /** The sample with the smallest error in the window (latest on ties), or undefined before any. */
  estimate(): ClockSample | undefined {
    let best: ClockSample | undefined;
    for (const s of this.window) if (best === undefined || s.errorNs <= best.errorNs) best = s;
    return best;
  }

  /** Host time of a guest timestamp by the current estimate, or undefined before any sample. */
  toHost(guestNs: number): number | undefined {
    const e = this.estimate();
    return e === undefined ? undefined : guestNs - e.offsetNs;
  }

  toGuest(hostNs: number): number | undefined {
    const e = this.estimate();
    return e === undefined ? undefined : hostNs + e.offsetNs;
  }

  /** Forgets all samples: a new guest session may have a new clock (reboot). */
  reset(): void {
    this.window.length = 0;
  }

  get samples(): readonly ClockSample[] {
    return this.window;
  }
}
