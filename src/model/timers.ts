// Deadline queue: a binary min-heap ordered by (due, sequence), so timers due
// at the same time fire in the order they were armed and replay is exact.
// Cancelled timers stay in the heap until they surface (lazy deletion); the
// heap holds only outstanding expectations, never the trace.

export interface Timer<P> {
  due: number;
  seq: number;
  cancelled: boolean;
  payload: P;
}

export class TimerQueue<P> {
  private heap: Timer<P>[] = [];
  private nextSeq = 0;
  private live = 0;

  get size(): number {
    return this.live;
  }

  arm(due: number, payload: P): Timer<P> {
    const t: Timer<P> = { due, seq: this.nextSeq++, cancelled: false, payload };
    this.heap.push(t);
    this.up(this.heap.length - 1);
    this.live++;
    return t;
  }

  cancel(t: Timer<P> | null | undefined): void {
    if (t && !t.cancelled) {
      t.cancelled = true;
      this.live--;
      // Keep memory proportional to outstanding timers, not to how many were armed.
      if (this.heap.length > 64 && this.heap.length > 2 * this.live + 32) this.compact();
    }
  }

  private compact(): void {
    this.heap = this.heap.filter((x) => !x.cancelled);
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  /** Removes and returns the earliest live timer due strictly before `t`. */
  popDue(t: number): Timer<P> | undefined {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined) return undefined;
      if (top.cancelled) {
        this.pop();
        continue;
      }
      if (top.due >= t) return undefined;
      this.pop();
      top.cancelled = true;
      this.live--;
      return top;
    }
  }

  /** Moves every timer delta later (all of them, cancelled too, so the heap's order holds as it is). */
  shift(delta: number): void {
    if (!(delta > 0)) return;
    for (const t of this.heap) t.due += delta;
  }

  /** Live timers, earliest first (for the end-of-run summary). */
  pending(): Timer<P>[] {
    return this.heap.filter((x) => !x.cancelled).sort((a, b) => a.due - b.due || a.seq - b.seq);
  }

  private less(a: Timer<P>, b: Timer<P>): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  private pop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const x = h[i]!;
      const y = h[p]!;
      if (!this.less(x, y)) break;
      h[i] = y;
      h[p] = x;
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
      h[i] = h[m]!;
      h[m] = x;
      i = m;
    }
  }
}
