// The timeline's pending host actions and QMP commands, by id, waiting for
// their result or reply. A run has one such at a time nearly always, and a
// Map emptied at each answer reallocated its table (~150 B and a runtime call
// per answer, ~600 kB a 1000-cycle storm). The lone entry sits in fields; a
// Map holds them only while two or more are pending, and is kept once made.
//
// Answers and order (the oldest, for the bound on pending entries) are a
// Map's. Keys are compared by ===: ids are finite numbers or strings.

export class PendingTable<K, V> {
  /** The one entry while `more` is empty. */
  private hasSolo = false;
  private soloKey: K | undefined = undefined;
  private soloValue: V | undefined = undefined;
  /** Every entry, oldest first, once two were pending at once and until it empties. */
  private more: Map<K, V> | null = null;

  get size(): number {
    return (this.hasSolo ? 1 : 0) + (this.more === null ? 0 : this.more.size);
  }

  get(k: K): V | undefined {
    if (this.hasSolo && this.soloKey === k) return this.soloValue;
    return this.more === null || this.more.size === 0 ? undefined : this.more.get(k);
  }

  set(k: K, v: V): void {
    if (this.hasSolo) {
      if (this.soloKey === k) {
        this.soloValue = v;
        return;
      }
      // A second entry: both go to the Map, the older first.
      const more = (this.more ??= new Map());
      more.set(this.soloKey!, this.soloValue!);
      this.clearSolo();
      more.set(k, v);
      return;
    }
    if (this.more === null || this.more.size === 0) {
      this.hasSolo = true;
      this.soloKey = k;
      this.soloValue = v;
      return;
    }
    this.more.set(k, v);
  }

  delete(k: K): boolean {
    if (this.hasSolo && this.soloKey === k) {
      this.clearSolo();
      return true;
    }
    return this.more !== null && this.more.size > 0 && this.more.delete(k);
  }

  /** The key set first of those pending (a key set again keeps its place); undefined when none is. */
  oldestKey(): K | undefined {
    if (this.hasSolo) return this.soloKey;
    return this.more === null ? undefined : this.more.keys().next().value;
  }

  private clearSolo(): void {
    this.hasSolo = false;
    this.soloKey = undefined;
    this.soloValue = undefined;
  }
}
