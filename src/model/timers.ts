// Deadline queue: a binary min-heap ordered by (due, sequence), so timers due
// at the same time fire in the order they were armed and replay is exact.
// A cancelled timer leaves the heap at once (each knows its place), so the
// heap holds only outstanding expectations, never the trace. Nearly every
// timer is cancelled (its event came): left in the heap, each surfaced at the
// top later and was popped with a sift-down through the dead ones, a few per
// clean cycle, and the heap of dead timers was compacted now and then.

export interface Timer<P> {
  due: number;
  seq: number;
  cancelled: boolean;
  payload: P;
  /** Its index in the heap; -1 once it fired or was cancelled. */
  pos: number;
}

export class TimerQueue<P> {
  /** Live timers only. */
  private readonly heap: Timer<P>[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.heap.length;
  }

  arm(due: number, payload: P): Timer<P> {
    const h = this.heap;
    const t: Timer<P> = { due, seq: this.nextSeq++, cancelled: false, payload, pos: h.length };
    h.push(t);
    this.up(t.pos);
    return t;
  }

  cancel(t: Timer<P> | null | undefined): void {
    if (t && !t.cancelled) {
      t.cancelled = true;
      this.remove(t.pos);
    }
  }

  /** Removes and returns the earliest live timer due strictly before `t`. */
  popDue(t: number): Timer<P> | undefined {
    const top = this.heap[0];
    if (top === undefined || top.due >= t) return undefined;
    top.cancelled = true;
    this.remove(0);
    return top;
  }

  /** Moves every timer delta later (all of them, so the heap's order holds as it is). */
  shift(delta: number): void {
    if (!(delta > 0)) return;
    for (const t of this.heap) t.due += delta;
  }

  /** Live timers, earliest first (for the end-of-run summary). */
  pending(): Timer<P>[] {
    return this.heap.slice().sort((a, b) => a.due - b.due || a.seq - b.seq);
  }

  private less(a: Timer<P>, b: Timer<P>): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  /** Takes the timer at index i out of the heap: the last one fills its place and moves up or down from there. */
  private remove(i: number): void {
    const h = this.heap;
    const gone = h[i]!;
    gone.pos = -1;
    const last = h.pop()!;
    if (last === gone) return;
    h[i] = last;
    last.pos = i;
    if (i > 0 && this.less(last, h[(i - 1) >> 1]!)) this.up(i);
    else this.down(i);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const x = h[i]!;
      const y = h[p]!;
      if (!this.less(x, y)) break;
      h[i] = y;
      y.pos = i;
      h[p] = x;
      x.pos = p;
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      const x = h[i]!;
      const y = h[m]!;
      h[i] = y;
      y.pos = i;
      h[m] = x;
      x.pos = m;
      i = m;
    }
  }
}
