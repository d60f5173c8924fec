// The real machine's clock: monotonic nanoseconds since start, from
// process.hrtime so it never jumps with the wall clock.

import type { MachineClock } from "../hotplug/index.js";

export class MonotonicClock implements MachineClock {
  private origin: bigint | undefined;

  /** Sets time zero; before that now() is 0. */
  startNow(): void {
    this.origin = process.hrtime.bigint();
  }

  now(): number {
    return this.origin === undefined ? 0 : Number(process.hrtime.bigint() - this.origin);
  }

  sleep(ns: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, ns / 1e6));
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
