// The timeline's next lane to fold away when it is over its lane budget and
// some lane is finished and clean: the one with the oldest last event, the
// first created among equals. A storm of thousands of devices evicts a lane
// for nearly every one it adds, and scanning every kept lane for it each time
// was the timeline's largest cost.
//
// A binary min-heap of (lastNs, seq) with lazy updates: a lane's lastNs only
// grows and a lane never becomes finished-and-clean twice, so an entry whose
// lastNs is behind its lane's is pushed again with the new value when it
// reaches the top, and an entry whose lane is gone or no longer clean is
// dropped there. The caller says which lanes still count (`current`).

export interface CleanLane {
  readonly lastNs: number;
  /** Creation order: the lane map's iteration order. */
  readonly seq: number;
}

interface Entry<L> {
  lastNs: number;
  seq: number;
  lane: L;
}

export class CleanLaneQueue<L extends CleanLane> {
  private heap: Entry<L>[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** A lane just became finished and clean. */
  add(lane: L): void {
    this.push({ lastNs: lane.lastNs, seq: lane.seq, lane });
  }

  /**
   * The finished, clean lane with the smallest (lastNs, seq), taken off the
   * queue; undefined when none. current(lane) says whether a lane is still kept
   * and still finished and clean.
   */
  take(current: (lane: L) => boolean): L | undefined {
    const h = this.heap;
    while (h.length > 0) {
      const top = h[0]!;
      this.pop();
      if (!current(top.lane)) continue;
      if (top.lane.lastNs !== top.lastNs) {
        top.lastNs = top.lane.lastNs;
        this.push(top);
        continue;
      }
      return top.lane;
    }
    return undefined;
  }

  /** Rebuilds the queue from the lanes that count (to shed entries of lanes that left it). */
  reset(lanes: Iterable<L>): void {
    this.heap = [];
    for (const l of lanes) this.add(l);
  }

  private push(e: Entry<L>): void {
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(e, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    const n = h.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && less(h[r]!, h[l]!) ? r : l;
      if (!less(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}

function less<L>(a: Entry<L>, b: Entry<L>): boolean {
  return a.lastNs < b.lastNs || (a.lastNs === b.lastNs && a.seq < b.seq);
}
