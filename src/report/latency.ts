// Latency samples per (driver, phase) with bounded memory: counts and maxima are
// exact, percentiles come from a fixed-size reservoir once a key has more
// samples than that. The reservoir's random choices are seeded, so a replayed
// trace reports the same percentiles.

import type { LatencyStats } from "./types.js";

interface Series {
  driver: string;
  phase: string;
  n: number;
  max: number;
  /**
   * The reservoir, its first `kept` filled; grown by doubling up to the
   * reservoir's size. A typed array: the series live as long as the run, and
   * a JS array of doubles was copied by scavenges and promoted again at each
   * growth, where a typed array's contents live outside the JS heap.
   */
  samples: Float64Array;
  kept: number;
}

export class LatencyBook {
  private readonly series = new Map<string, Map<string, Series>>();
  private rng = 0x9e3779b9;

  constructor(private readonly reservoir = 4096) {
    if (!Number.isInteger(reservoir) || reservoir < 1) {
      throw new RangeError(`LatencyBook: reservoir must be a positive integer, got ${reservoir}`);
    }
  }

  add(driver: string, phase: string, ns: number): void {
    if (!Number.isFinite(ns) || ns < 0) return;
    // By driver, then phase: no key string is built per sample.
    let phases = this.series.get(driver);
    if (!phases) {
      phases = new Map();
      this.series.set(driver, phases);
    }
    let s = phases.get(phase);
    if (!s) {
      s = { driver, phase, n: 0, max: 0, samples: new Float64Array(Math.min(16, this.reservoir)), kept: 0 };
      phases.set(phase, s);
    }
    s.n++;
    if (ns > s.max) s.max = ns;
    if (s.kept < this.reservoir) {
      if (s.kept === s.samples.length) {
        const grown = new Float64Array(Math.min(2 * s.kept, this.reservoir));
        grown.set(s.samples);
        s.samples = grown;
      }
      s.samples[s.kept++] = ns;
    } else {
      const j = this.next() % s.n;
      if (j < this.reservoir) s.samples[j] = ns;
    }
  }

  stats(): LatencyStats[] {
    const out: LatencyStats[] = [];
    for (const s of [...this.series.values()].flatMap((phases) => [...phases.values()])) {
      // A typed array sorts numerically without a comparator call per step (~3x faster; samples are finite, non-negative).
      const sorted = s.samples.slice(0, s.kept).sort();
      out.push({
        driver: s.driver,
        phase: s.phase,
        n: s.n,
        p50Ns: percentile(sorted, 0.5),
        p90Ns: percentile(sorted, 0.9),
        p99Ns: percentile(sorted, 0.99),
        maxNs: s.max,
      });
    }
    return out.sort((a, b) => a.driver.localeCompare(b.driver) || phaseOrder(a.phase) - phaseOrder(b.phase) || a.phase.localeCompare(b.phase));
  }

  private next(): number {
    // xorshift32: enough for reservoir sampling, and deterministic.
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }
}

/** Nearest-rank percentile of an ascending array; 0 for no samples. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

const ORDER = ["device_add", "add→attached", "attach", "device_del", "removal", "detach", "drain", "del→freed"];
function phaseOrder(phase: string): number {
  const base = phase.startsWith("drain:") ? "drain" : phase;
  const i = ORDER.indexOf(base);
  return i < 0 ? ORDER.length : i;
}
