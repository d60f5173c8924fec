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

/** A sample's bucket: what logBucket says, for integers below FAST_BELOW from the edges in LOW (Math.log2 is a call into C++). */
export function bucketOf(ns: number): number {
  const v = ns < 1 ? 1 : ns;
  if (!(v < FAST_BELOW) || !Number.isInteger(v)) return logBucket(v);
  // floor(log2 v), then the edges of that octave's buckets.
  const hi = Math.floor(v / 4294967296);
  let b = PER_OCTAVE * (hi > 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(v));
  while (b > 0 && v < LOW[b]!) b--;
  while (b < LAST_FAST && v >= LOW[b + 1]!) b++;
  return b;
}

/** The definition: bucket floor(log2(ns) * PER_OCTAVE), the last one for anything beyond. */
export function logBucket(v: number): number {
  const b = Math.floor(Math.log2(v) * PER_OCTAVE);
  return b >= BUCKETS ? BUCKETS - 1 : b;
}

/**
 * Integers below this take the edges: up to 2^40, Math.log2's error (an ulp)
 * moves the bucket of no integer but one beside an edge, and the edges are
 * found with logBucket itself, so both give the same bucket.
 */
const FAST_BELOW = 2 ** 40;
const LAST_FAST = logBucket(FAST_BELOW - 1);

/** LOW[b]: the least integer logBucket puts in bucket b or above (b up to LAST_FAST). */
const LOW: readonly number[] = (() => {
  const low = [1];
  for (let b = 1; b <= LAST_FAST; b++) {
    let lo = low[b - 1]!;
    let hi = FAST_BELOW - 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (logBucket(mid) >= b) hi = mid;
      else lo = mid + 1;
    }
    low.push(lo);
  }
  return low;
})();

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

  /**
   * records false: add() keeps nothing (UNRECORDED). A flag, not a subclass:
   * the families' add() call sites, optimised for one kind of histogram in a
   * process's first storms, would deopt on a second in its first shrink.
   */
  constructor(private readonly records = true) {}

  add(ns: number): void {
    if (!this.records) return;
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

/**
 * A histogram that records nothing: what a checker that keeps no latencies
 * (CheckerOptions.latencies false) hands its families. It stays empty, so
 * checkers can share one.
 */
export const UNRECORDED: LogHistogram = new LogHistogram(false);
