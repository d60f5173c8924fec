// Latency histogram in fixed memory: quarter-octave log buckets, so p50/p99
// are within ~19% whatever the run length, and max is exact.
//
// The first few samples are kept as their bucket numbers in a short list; the
// 256 buckets (2 KB, an ArrayBuffer with its backing store outside the heap)
// are made only when that list fills. The checker makes four histograms per
// driver per run, and a shrink's short runs add a handful of samples to each:
// most runs never make the buckets. Quantiles are the same either way.

const PER_OCTAVE = 4;
const BUCKETS = 64 * PER_OCTAVE;
/** Samples kept as a list before the buckets are made. */
const FEW = 32;

function bucketOf(ns: number): number {
  const v = ns < 1 ? 1 : ns;
  const b = Math.floor(Math.log2(v) * PER_OCTAVE);
  return b >= BUCKETS ? BUCKETS - 1 : b;
}

function upperEdge(b: number): number {
  return Math.pow(2, (b + 1) / PER_OCTAVE);
}

export interface LatencyStats {
  count: number;
  p50Ns: number;
  p99Ns: number;
  maxNs: number;
  minNs: number;
  meanNs: number;
}

export class LogHistogram {
  /** Made when the list of the first samples fills. */
  private buckets: Float64Array | null = null;
  /** The first samples' bucket numbers, until the buckets are made. */
  private few: number[] | null = null;
  count = 0;
  max = 0;
  min = Infinity;
  private sum = 0;

  add(ns: number): void {
    const b = bucketOf(ns);
    if (this.buckets !== null) this.buckets[b]! += 1;
    else if (this.few === null) this.few = [b];
    else if (this.few.length < FEW) this.few.push(b);
    else {
      const buckets = (this.buckets = new Float64Array(BUCKETS));
      for (const k of this.few) buckets[k]! += 1;
      buckets[b]! += 1;
      this.few = null;
    }
    this.count++;
    this.sum += ns;
    if (ns > this.max) this.max = ns;
    if (ns < this.min) this.min = ns;
  }

  /** Upper edge of the bucket holding quantile q, clamped to the observed range. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    const clamp = (b: number): number => Math.min(Math.max(upperEdge(b), this.min), this.max);
    if (this.buckets === null) {
      // The rank-th smallest bucket number is the bucket where the counts reach the rank.
      const sorted = (this.few ?? []).slice().sort((a, b) => a - b);
      return rank <= sorted.length ? clamp(sorted[rank - 1]!) : this.max;
    }
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.buckets[b]!;
      if (seen >= rank) return clamp(b);
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
