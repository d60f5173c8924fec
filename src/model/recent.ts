// A map that remembers the most recently set keys only, for joins and
// per-NIC state a run of millions of plugs must not grow without bound.
//
// Generations: new keys go into the young map; when it is full it becomes the
// newest old one, and the oldest beyond what `limit` needs is dropped. Every
// key set among the last `limit` distinct ones is kept (an LRU of that size
// would keep no more). By default the young map holds `limit` keys and one
// old generation is kept; a smaller generation size keeps more, smaller ones
// (inserts into a map of thousands of keys cost cache misses and table
// growth; into one of a thousand much less).
// Constant time and no copying: evicting one key per insert from a single Map
// (delete its first key) walks the dead slots deletions leave at the front of
// V8's hash table, which made that eviction quadratic between rehashes.

export class RecentMap<K, V> {
  private young = new Map<K, V>();
  /** Full generations, oldest first. */
  private readonly olds: Map<K, V>[] = [];
  /** Keys a generation holds. */
  private readonly generation: number;
  /** Old generations kept: enough that they hold `limit` keys. */
  private readonly keep: number;

  /**
   * ordered: keyOf() answers in order of last set (a key set again moves to
   * the end, which costs a lookup and a delete); without it a set is one
   * Map.set and keys stay where they were first set. generationSize: keys
   * per generation (default and at most `limit`).
   */
  constructor(
    limit: number,
    private readonly ordered = false,
    generationSize = limit,
  ) {
    if (!(limit >= 1)) throw new Error(`RecentMap: limit must be at least 1, got ${limit}`);
    if (!(generationSize >= 1)) throw new Error(`RecentMap: generation size must be at least 1, got ${generationSize}`);
    this.generation = Math.min(limit, Math.floor(generationSize));
    this.keep = Math.ceil(limit / this.generation);
  }

  /**
   * The last key found or set and its value: a NIC's or a device's events
   * come together, so most lookups ask for the key asked for last, and a
   * lookup in a map of thousands of keys costs cache misses. Exact: a value
   * changes only by set (which updates it), a key leaves only when the
   * generations turn (which clears it). young: the key is in the young map.
   */
  private lastKey: K | undefined = undefined;
  private lastValue: V | undefined = undefined;
  private lastYoung = false;
  /**
   * Whether lastKey is a key: the compare with it runs only then, so it sees
   * keys alone (one that has seen keys and a sentinel of another type is a
   * generic call; perf showed it).
   */
  private hasLast = false;
  /**
   * lastKey and lastValue are what the last set() set, and nothing has been
   * set since: set() of them again changes nothing (the key is the young
   * map's newest, with that value), and costs no Map work. A device's events
   * come together, and each sets its name's NIC again (an ordered map's set
   * is a delete and an insert).
   */
  private lastSet = false;

  /** Counts set()s (a touch of an old key is one): a caller that saw no set since it last looked knows every key it found young is young still, with the value it had. */
  writes = 0;

  /** Values are never undefined: undefined means absent. */
  get(k: K): V | undefined {
    if (this.hasLast && k === this.lastKey) return this.lastValue;
    let v = this.young.get(k);
    let young = true;
    if (v === undefined) {
      const olds = this.olds;
      for (let i = olds.length - 1; i >= 0 && v === undefined; i--) v = olds[i]!.get(k);
      if (v === undefined) return undefined;
      young = false;
    }
    this.lastSet = false;
    this.lastKey = k;
    this.lastValue = v;
    this.lastYoung = young;
    this.hasLast = true;
    return v;
  }

  /** Sets k; it is then among the recent keys. */
  set(k: K, v: V): void {
    this.writes++;
    if (this.lastSet && k === this.lastKey && v === this.lastValue) return;
    const young = this.young;
    // Ordered: a key set again moves to the end, as in an LRU map, even with the value it had (delete of an absent key is the lookup has() would be).
    if (this.ordered) young.delete(k);
    young.set(k, v);
    if (young.size >= this.generation) {
      const olds = this.olds;
      olds.push(young);
      if (olds.length > this.keep) olds.shift();
      this.young = new Map();
      this.hasLast = false;
      this.lastSet = false;
      this.lastKey = undefined;
      this.lastValue = undefined;
      return;
    }
    this.lastKey = k;
    this.lastValue = v;
    this.lastYoung = true;
    this.hasLast = true;
    this.lastSet = true;
  }

  /**
   * get, and the key counts as set again (it stays among the recent keys)
   * without a set when it is young already: for mutable per-key records,
   * updated in place. Not for ordered maps (it does not move a young key).
   */
  touch(k: K): V | undefined {
    const v = this.get(k);
    if (v !== undefined && !this.lastYoung) this.set(k, v);
    return v;
  }

  /** Every key still kept with its value, least recently set first (unordered: a key set again counts from its first set in its generation). */
  entries(): [K, V][] {
    const out: [K, V][] = [];
    const gens = [...this.olds, this.young];
    gens.forEach((m, g) => {
      for (const [k, v] of m) if (!setLater(gens, g, k)) out.push([k, v]);
    });
    return out;
  }

  /** The first key (ordered: least recently set first) whose value is v, or undefined. For verdict messages, not the hot path. */
  keyOf(v: V): K | undefined {
    const gens = [...this.olds, this.young];
    for (let g = 0; g < gens.length; g++) for (const [k, x] of gens[g]!) if (x === v && !setLater(gens, g, k)) return k;
    return undefined;
  }
}

/** Whether a generation after gens[g] holds k (its entry there is the current one). */
function setLater<K, V>(gens: readonly Map<K, V>[], g: number, k: K): boolean {
  for (let h = g + 1; h < gens.length; h++) if (gens[h]!.has(k)) return true;
  return false;
}
