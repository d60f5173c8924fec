// A Map for the checker's per-cycle tables (live devices, NICs, interface
// names, a device's drains and reference ledger): each holds one or two
// entries nearly always and empties once a cycle. The first two entries sit
// in fields, found by ===: a lookup is a compare or two, where a Map's is a
// builtin call that hashes the key, and emptying costs nothing, where V8
// reallocates an emptied Map's table in a runtime call (so the checker had
// replaced each such Map with a new one, a few allocations a cycle). A third
// entry moves them all into a Map, so many entries stay O(1).
//
// The answers and the order of a Map (insertion order; a key set again keeps
// its place) for the operations it offers. Keys are compared by ===, which is
// a Map's SameValueZero for every key but NaN.

/**
 * What a reader of a SmallMap may call. A shared empty one that stands for
 * "none" (state.ts's NO_REFS) is typed so, and is never written.
 */
export type ReadonlySmallMap<K, V> = Pick<SmallMap<K, V>, "size" | "get" | "has" | "entries" | "keys" | "values" | "forEach">;

export class SmallMap<K, V> {
  /** Entries in the fields (0-2) while big is null. */
  private n = 0;
  private k0: K | undefined = undefined;
  private v0: V | undefined = undefined;
  private k1: K | undefined = undefined;
  private v1: V | undefined = undefined;
  private big: Map<K, V> | null = null;

  get size(): number {
    const big = this.big;
    return big !== null ? big.size : this.n;
  }

  // Each compare with a field runs only when the field holds a key (n says
  // so): a compare that also saw the fields' undefined would be V8's generic one.
  get(k: K): V | undefined {
    const big = this.big;
    if (big !== null) return big.get(k);
    const n = this.n;
    if (n > 0 && this.k0 === k) return this.v0;
    if (n > 1 && this.k1 === k) return this.v1;
    return undefined;
  }

  has(k: K): boolean {
    const big = this.big;
    if (big !== null) return big.has(k);
    const n = this.n;
    return (n > 0 && this.k0 === k) || (n > 1 && this.k1 === k);
  }

  set(k: K, v: V): this {
    const big = this.big;
    if (big !== null) {
      big.set(k, v);
      return this;
    }
    const n = this.n;
    if (n > 0 && this.k0 === k) this.v0 = v;
    else if (n > 1 && this.k1 === k) this.v1 = v;
    else if (n === 0) {
      this.k0 = k;
      this.v0 = v;
      this.n = 1;
    } else if (n === 1) {
      this.k1 = k;
      this.v1 = v;
      this.n = 2;
    } else {
      const m = new Map<K, V>();
      m.set(this.k0!, this.v0!);
      m.set(this.k1!, this.v1!);
      m.set(k, v);
      this.clearFields();
      this.big = m;
    }
    return this;
  }

  delete(k: K): boolean {
    const big = this.big;
    if (big !== null) {
      if (!big.delete(k)) return false;
      // Dropped, not kept empty (see the top); the fields take over again.
      if (big.size === 0) this.big = null;
      return true;
    }
    const n = this.n;
    if (n > 0 && this.k0 === k) {
      // The second entry moves up: it stays after whatever comes next.
      this.k0 = this.k1;
      this.v0 = this.v1;
      this.k1 = undefined;
      this.v1 = undefined;
      this.n = n - 1;
      return true;
    }
    if (n > 1 && this.k1 === k) {
      this.k1 = undefined;
      this.v1 = undefined;
      this.n = 1;
      return true;
    }
    return false;
  }

  /** The entries in order, as a new array (for verdicts and summaries, not the hot path). */
  entries(): [K, V][] {
    const big = this.big;
    if (big !== null) return [...big.entries()];
    const out: [K, V][] = [];
    if (this.n > 0) out.push([this.k0!, this.v0!]);
    if (this.n > 1) out.push([this.k1!, this.v1!]);
    return out;
  }

  /**
   * Calls fn with each entry in order, as a Map's forEach does (fn must not
   * change the map). No array of pairs made: a verdict's holders are read
   * this way, and the pairs and their destructuring were most of that
   * (code a run calls a few times, so still unoptimised in a shrink's timed rounds).
   */
  forEach(fn: (v: V, k: K) => void): void {
    const big = this.big;
    if (big !== null) {
      big.forEach(fn);
      return;
    }
    const n = this.n;
    if (n > 0) fn(this.v0!, this.k0!);
    if (n > 1) fn(this.v1!, this.k1!);
  }

  /** The keys in order, as a new array. */
  keys(): K[] {
    return this.entries().map((e) => e[0]);
  }

  /** The values in order, as a new array. */
  values(): V[] {
    return this.entries().map((e) => e[1]);
  }

  private clearFields(): void {
    this.n = 0;
    this.k0 = undefined;
    this.v0 = undefined;
    this.k1 = undefined;
    this.v1 = undefined;
  }
}
