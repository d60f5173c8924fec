// Latency histogram in fixed memory: quarter-octave log buckets, so p50/p99
// are within ~19% whatever the run length, and max is exact.

const PER_OCTAVE = 4;
const BUCKETS = 64 * PER_OCTAVE;

export interface LatencyStats {
  count: number;
  p50Ns: number;
  p99Ns: number;
  maxNs: number;
  minNs: number;
  meanNs: number;
}

export class LogHistogram {
  private readonly buckets = new Float64Array(BUCKETS);
  count = 0;
  max = 0;
  min = Infinity;
  private sum = 0;

  add(ns: number): void {
    const v = ns < 1 ? 1 : ns;
    let b = Math.floor(Math.log2(v) * PER_OCTAVE);
    if (b >= BUCKETS) b = BUCKETS - 1;
    this.buckets[b]! += 1;
    this.count++;
    this.sum += ns;
    if (ns > this.max) this.max = ns;
    if (ns < this.min) this.min = ns;
  }

  /** Upper edge of the bucket holding quantile q, clamped to the observed range. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.buckets[b]!;
      if (seen >= rank) {
        const upper = Math.pow(2, (b + 1) / PER_OCTAVE);
        return Math.min(Math.max(upper, this.min), this.max);
      }
    }
    return this.max;
  }

  stats(): LatencyStats {
    return {
      count: this.count,
      p50Ns: Math.round(this.quantile(0.5)),
      p99Ns: Math.round(this.quantile(0.99)),
      maxNs: this.max,
      minNs: this.count ? this.min : 0,
      meanNs: this.count ? Math.round(this.sum / this.count) : 0,
    };
  }
}
