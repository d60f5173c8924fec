// Host actions awaiting their result, by action id: a Map's semantics (a key
// set again keeps its place; beyond the limit the oldest goes first), since
// some actions (guest commands) may never get one.
//
// Usually one or two are open, each answered a few records later. A Map that
// fills and empties once per action reallocates its table in a runtime call
// each time it empties (V8 shrinks emptied Maps), so the first few open
// actions sit in fixed arrays, searched in order, and only a backlog moves
// to a Map (until it drains).

const SMALL = 16;

export class OpenActions<V> {
  // Plain arrays, not a Float64Array: 16 ids make 128 bytes, past what V8 keeps
  // on its heap, so each checker would allocate a backing store outside it (core.ts).
  // They grow as actions open (most runs have one or two at a time), where
  // filling 16 slots up front was two builtin calls a checker.
  private readonly ids: number[] = [];
  private readonly vals: (V | undefined)[] = [];
  private n = 0;
  private big: Map<number, V> | null = null;

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new Error(`OpenActions: limit must be at least 1, got ${limit}`);
  }

  get size(): number {
    return this.big !== null ? this.big.size : this.n;
  }

  /** Tracks id (replacing what it had, in its place); drops the oldest beyond the limit. */
  set(id: number, v: V): void {
    const big = this.big;
    if (big !== null) {
      big.set(id, v);
      if (big.size > this.limit) big.delete(big.keys().next().value!);
      return;
    }
    const i = this.indexOf(id);
    if (i >= 0) {
      this.vals[i] = v;
      return;
    }
    if (this.n < SMALL) {
      this.ids[this.n] = id;
      this.vals[this.n++] = v;
      if (this.n > this.limit) this.removeAt(0);
      return;
    }
    const m = new Map<number, V>();
    for (let k = 0; k < this.n; k++) m.set(this.ids[k]!, this.vals[k]!);
    this.vals.fill(undefined);
    this.n = 0;
    this.big = m;
    this.set(id, v);
  }

  /** The action tracked under id, which is then no longer open; undefined when none is. */
  take(id: number): V | undefined {
    const big = this.big;
    if (big !== null) {
      const v = big.get(id);
      if (v === undefined) return undefined;
      big.delete(id);
      if (big.size === 0) this.big = null;
      return v;
    }
    const i = this.indexOf(id);
    if (i < 0) return undefined;
    const v = this.vals[i];
    this.removeAt(i);
    return v;
  }

  private indexOf(id: number): number {
    const ids = this.ids;
    for (let k = 0; k < this.n; k++) if (ids[k] === id) return k;
    return -1;
  }

  private removeAt(i: number): void {
    const n = --this.n;
    const ids = this.ids;
    const vals = this.vals;
    for (let k = i; k < n; k++) {
      ids[k] = ids[k + 1]!;
      vals[k] = vals[k + 1];
    }
    vals[n] = undefined;
  }
}
