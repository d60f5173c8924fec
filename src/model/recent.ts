// A map that remembers the most recently set keys only, for joins and
// per-NIC state a run of millions of plugs must not grow without bound.
//
// Two generations: new keys go into the young map; when it is full it becomes
// the old one and the previous old one is dropped. Every key set among the
// last `limit` distinct ones is kept (an LRU of that size would keep no more).
// Constant time and no copying: evicting one key per insert from a single Map
// (delete its first key) walks the dead slots deletions leave at the front of
// V8's hash table, which made that eviction quadratic between rehashes.

const NO_KEY: unique symbol = Symbol("no key");

export class RecentMap<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();

  /**
   * ordered: keyOf() answers in order of last set (a key set again moves to
   * the end, which costs a lookup and a delete); without it a set is one
   * Map.set and keys stay where they were first set.
   */
  constructor(
    private readonly limit: number,
    private readonly ordered = false,
  ) {
    if (!(limit >= 1)) throw new Error(`RecentMap: limit must be at least 1, got ${limit}`);
  }

  /**
   * The last key found or set and its value: a NIC's or a device's events
   * come together, so most lookups ask for the key asked for last, and a
   * lookup in a map of thousands of keys costs cache misses. Exact: a value
   * changes only by set (which updates it), a key leaves only when the
   * generations turn (which clears it). young: the key is in the young map.
   */
  private lastKey: K | typeof NO_KEY = NO_KEY;
  private lastValue: V | undefined = undefined;
  private lastYoung = false;

  /** Counts set()s (a touch of an old key is one): a caller that saw no set since it last looked knows every key it found young is young still, with the value it had. */
  writes = 0;

  /** Values are never undefined: undefined means absent. */
  get(k: K): V | undefined {
    if (k === this.lastKey) return this.lastValue;
    let v = this.young.get(k);
    let young = true;
    if (v === undefined) {
      v = this.old.get(k);
      if (v === undefined) return undefined;
      young = false;
    }
    this.lastKey = k;
    this.lastValue = v;
    this.lastYoung = young;
    return v;
  }

  /** Sets k; it is then among the recent keys. */
  set(k: K, v: V): void {
    this.writes++;
    const young = this.young;
    // Ordered: a key set again moves to the end, as in an LRU map, even with the value it had (delete of an absent key is the lookup has() would be).
    if (this.ordered) young.delete(k);
    young.set(k, v);
    if (young.size >= this.limit) {
      this.old = young;
      this.young = new Map();
      this.lastKey = NO_KEY;
      this.lastValue = undefined;
      return;
    }
    this.lastKey = k;
    this.lastValue = v;
    this.lastYoung = true;
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
    for (const [k, v] of this.old) if (!this.young.has(k)) out.push([k, v]);
    for (const e of this.young) out.push(e);
    return out;
  }

  /** The first key (ordered: least recently set first) whose value is v, or undefined. For verdict messages, not the hot path. */
  keyOf(v: V): K | undefined {
    for (const [k, x] of this.old) if (x === v && !this.young.has(k)) return k;
    for (const [k, x] of this.young) if (x === v) return k;
    return undefined;
  }
}
