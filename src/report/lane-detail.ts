// The detail of the report timeline's lanes: their bars, points and
// reference steps, and which bars are open. Kept lanes outlive many
// young-generation GCs, and as objects (a bar with its two boxed times was
// ~110 B, a lane ~1.9 kB) every one of them was copied by a scavenge or two
// and then promoted. Here each kind of item is a column per field in typed
// arrays shared by every lane, each lane's items a chain through them:
// typed arrays' contents live outside the JS heap, so no scavenge copies
// them, and adding an item allocates nothing. The report's Span and
// PointEvent objects are made from this only when a snapshot is taken.

import type { PointEvent, Span, SpanPhase } from "./types.js";

/** A bar's phase, as stored. */
export const enum Phase {
  DEVICE_ADD = 0,
  DEVICE_DEL = 1,
  REMOVAL = 2,
  ATTACH = 3,
  DETACH = 4,
  DRAIN = 5,
}

const PHASE_NAMES: readonly SpanPhase[] = ["device_add", "device_del", "removal", "attach", "detach", "drain"];

/** A point's kind, as stored. */
export const enum Point {
  DEVICE_DELETED = 0,
  DEACTIVATE = 1,
  FREE = 2,
}

const POINT_NAMES: readonly PointEvent["kind"][] = ["device_deleted", "deactivate", "free"];

export const enum Side {
  HOST = 0,
  GUEST = 1,
}

/**
 * Open-bar slots held in a lane's row: its host and guest phases, then the
 * drains of the first 16 object kinds (the schema's, with room); see the
 * timeline's drainSlot. Other slots (kinds a corrupt trace made up) go in a map.
 */
export const ROW_SLOTS = 21;

/** No item: the end of a chain, an empty slot. */
const NONE = -1;

// A lane row's chains, each [head, tail, length] in `chains`.
const HOST = 0;
const GUEST = 3;
const POINTS = 6;
const REFS = 9;
const CHAIN_INTS = 12;

// A bar's optional keys, in the order first set (so a snapshot writes them in
// the order a bar object would have had them: JSON keeps insertion order):
// two bits each in `keys`, the first set in the lowest bits.
const KEY_END = 1;
const KEY_NOTE = 2;
const KEY_FAILED = 3;

// A bar's `state`: open in its lane's slot; dropped from its chain (the lane
// had too many) while open, so it is given back when its slot lets go of it.
const OPEN = 1;
const ORPHAN = 2;

/** A growable pool of chain links: items freed go to a free list and are reused first. */
class Links {
  next = new Int32Array(0);
  private free = NONE;
  private top = 0;

  /** A free item's index; next grows first when none is free, and the caller grows its columns to next's length when the index is beyond theirs. */
  take(): number {
    const i = this.free;
    if (i !== NONE) {
      this.free = this.next[i]!;
      return i;
    }
    if (this.top === this.next.length) this.next = grown(this.next, Math.max(64, 2 * this.top));
    return this.top++;
  }

  give(i: number): void {
    this.next[i] = this.free;
    this.free = i;
  }
}

/** Where a row's chain of bars on a side starts in `chains`. */
function barChain(row: number, side: Side): number {
  return row * CHAIN_INTS + (side === Side.HOST ? HOST : GUEST);
}

/** Pads a list of notes with undefined up to n: filled, not left with holes (a holey array's reads are slower). */
function padNotes(notes: (string | undefined)[], n: number): void {
  for (let i = notes.length; i < n; i++) notes.push(undefined);
}

function grown<A extends Int32Array | Float64Array | Uint8Array>(a: A, length: number, fill = 0): A {
  const b = new (a.constructor as new (n: number) => A)(length);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}

export class LaneDetail {
  // Rows: one per kept lane, reused after the lane is folded away.
  private chains = new Int32Array(0);
  private open = new Int32Array(0);
  private openGuest = new Float64Array(0);
  /** Slots beyond ROW_SLOTS, by row (rare: a corrupt trace's drain kinds). */
  private moreOpen = new Map<number, Map<number, number>>();
  private moreGuest = new Map<number, Map<number, number>>();
  private readonly freeRows: number[] = [];
  private rows = 0;

  // Bars.
  private readonly bars = new Links();
  private barStart = new Float64Array(0);
  private barEnd = new Float64Array(0);
  private barPhase = new Uint8Array(0);
  private barKeys = new Uint8Array(0);
  private barState = new Uint8Array(0);
  private readonly barNote: (string | undefined)[] = [];

  // Points.
  private readonly pts = new Links();
  private ptT = new Float64Array(0);
  private ptKind = new Uint8Array(0);
  private readonly ptNote: (string | undefined)[] = [];

  // Reference steps.
  private readonly refs = new Links();
  private refT = new Float64Array(0);
  private refCount = new Float64Array(0);

  /** A fresh row for a new lane: no items, no open bars. */
  newRow(): number {
    const reused = this.freeRows.pop();
    if (reused !== undefined) return reused;
    const row = this.rows++;
    if (row * CHAIN_INTS >= this.chains.length) {
      const n = Math.max(16, 2 * row);
      this.chains = grown(this.chains, n * CHAIN_INTS);
      this.open = grown(this.open, n * ROW_SLOTS, NONE);
      this.openGuest = grown(this.openGuest, n * ROW_SLOTS);
    }
    this.emptyChains(row);
    return row;
  }

  private emptyChains(row: number): void {
    const c = row * CHAIN_INTS;
    for (let k = c; k < c + CHAIN_INTS; k += 3) {
      this.chains[k] = NONE;
      this.chains[k + 1] = NONE;
      this.chains[k + 2] = 0;
    }
  }

  /** Gives back a folded lane's row and every item of it. */
  releaseRow(row: number): void {
    const c = row * CHAIN_INTS;
    for (let i = this.chains[c + HOST]!; i !== NONE; ) i = this.freeBar(i);
    for (let i = this.chains[c + GUEST]!; i !== NONE; ) i = this.freeBar(i);
    for (let i = this.chains[c + POINTS]!; i !== NONE; ) i = this.freePoint(i);
    for (let i = this.chains[c + REFS]!; i !== NONE; ) i = this.freeRef(i);
    this.emptyChains(row);
    const o = row * ROW_SLOTS;
    for (let s = o; s < o + ROW_SLOTS; s++) {
      const b = this.open[s]!;
      if (b !== NONE && this.barState[b] === (OPEN | ORPHAN)) this.freeBar(b);
    }
    this.open.fill(NONE, o, o + ROW_SLOTS);
    this.openGuest.fill(0, o, o + ROW_SLOTS);
    const more = this.moreOpen.get(row);
    if (more) for (const b of more.values()) if (this.barState[b] === (OPEN | ORPHAN)) this.freeBar(b);
    this.moreOpen.delete(row);
    this.moreGuest.delete(row);
    this.freeRows.push(row);
  }

  // ------------------------------------------------------------ open bars

  /** The bar open in a slot of the row, or -1. */
  openBar(row: number, slot: number): number {
    if (slot >= 0 && slot < ROW_SLOTS) return this.open[row * ROW_SLOTS + slot]!;
    return this.moreOpen.get(row)?.get(slot) ?? NONE;
  }

  /** Opens bar in the slot; the bar it held (if any) is no longer open. */
  setOpen(row: number, slot: number, bar: number): void {
    this.closeSlot(row, slot);
    // A bar is opened once, when it is made.
    this.barState[bar] = OPEN;
    if (slot >= 0 && slot < ROW_SLOTS) this.open[row * ROW_SLOTS + slot] = bar;
    else {
      let m = this.moreOpen.get(row);
      if (!m) this.moreOpen.set(row, (m = new Map()));
      m.set(slot, bar);
    }
  }

  /**
   * Empties the slot (its bar stays on its lane, ended or not). A bar its
   * lane had dropped is given back here, and the caller may still write to
   * it (a note on a bar it just ended): those writes are lost, as the bar was
   * not on the lane any more, and addBar sets every field of a bar it reuses.
   */
  closeSlot(row: number, slot: number): void {
    let b: number;
    if (slot >= 0 && slot < ROW_SLOTS) {
      const k = row * ROW_SLOTS + slot;
      b = this.open[k]!;
      if (b === NONE) return;
      this.open[k] = NONE;
    } else {
      const m = this.moreOpen.get(row);
      const v = m?.get(slot);
      if (v === undefined) return;
      b = v;
      m!.delete(slot);
      if (m!.size === 0) this.moreOpen.delete(row);
    }
    if (this.barState[b] === (OPEN | ORPHAN)) this.freeBar(b);
    else this.barState[b] = 0;
  }

  /** Whether any slot of the row holds a bar. */
  anyOpen(row: number): boolean {
    const o = row * ROW_SLOTS;
    for (let s = o; s < o + ROW_SLOTS; s++) if (this.open[s] !== NONE) return true;
    return this.moreOpen.has(row);
  }

  /** The guest time a slot's bar opened at; 0 when none was noted. */
  openGuestNs(row: number, slot: number): number {
    if (slot >= 0 && slot < ROW_SLOTS) return this.openGuest[row * ROW_SLOTS + slot]!;
    return this.moreGuest.get(row)?.get(slot) ?? 0;
  }

  /** Notes (ns > 0) or forgets (0) the guest time a slot's bar opened at. */
  setOpenGuestNs(row: number, slot: number, ns: number): void {
    if (slot >= 0 && slot < ROW_SLOTS) {
      this.openGuest[row * ROW_SLOTS + slot] = ns;
      return;
    }
    let m = this.moreGuest.get(row);
    if (ns > 0) {
      if (!m) this.moreGuest.set(row, (m = new Map()));
      m.set(slot, ns);
    } else if (m) {
      m.delete(slot);
      if (m.size === 0) this.moreGuest.delete(row);
    }
  }

  // ------------------------------------------------------------ bars

  /** Appends a bar (no optional keys yet) to a side of the row's lane. */
  addBar(row: number, side: Side, phase: Phase, startNs: number): number {
    const b = this.bars.take();
    if (b >= this.barStart.length) this.growBars(this.bars.next.length);
    this.barStart[b] = startNs;
    this.barPhase[b] = phase;
    // Every field set anew: a bar given back may have been written after (see closeSlot).
    this.barKeys[b] = 0;
    this.barState[b] = 0;
    this.barNote[b] = undefined;
    this.append(this.bars.next, barChain(row, side), b);
    return b;
  }

  barCount(row: number, side: Side): number {
    return this.chains[barChain(row, side) + 2]!;
  }

  /**
   * Drops the side's oldest bars down to `keep`; the end (or start, when
   * open) of the last one dropped, or -Infinity when none was. A dropped bar
   * still open stays readable through its slot until the slot lets it go.
   */
  dropBars(row: number, side: Side, keep: number): number {
    const c = barChain(row, side);
    let last = Number.NEGATIVE_INFINITY;
    while (this.chains[c + 2]! > keep) {
      const b = this.chains[c]!;
      last = this.hasKey(b, KEY_END) ? this.barEnd[b]! : this.barStart[b]!;
      this.unlinkHead(this.bars.next, c);
      if (this.barState[b] === OPEN) this.barState[b] = OPEN | ORPHAN;
      else this.freeBar(b);
    }
    return last;
  }

  /** The side's last bar of a phase starting at or after notBefore, or -1. */
  lastBar(row: number, side: Side, phase: Phase, notBefore: number): number {
    let found = NONE;
    const next = this.bars.next;
    for (let b = this.chains[barChain(row, side)]!; b !== NONE; b = next[b]!) {
      if (this.barPhase[b] === phase && this.barStart[b]! >= notBefore) found = b;
    }
    return found;
  }

  startNs(bar: number): number {
    return this.barStart[bar]!;
  }

  phaseName(bar: number): SpanPhase {
    return PHASE_NAMES[this.barPhase[bar]!]!;
  }

  hasEnd(bar: number): boolean {
    return this.hasKey(bar, KEY_END);
  }

  note(bar: number): string | undefined {
    return this.barNote[bar];
  }

  setEnd(bar: number, ns: number): void {
    this.barEnd[bar] = ns;
    this.noteKey(bar, KEY_END);
  }

  setNote(bar: number, note: string): void {
    this.barNote[bar] = note;
    this.noteKey(bar, KEY_NOTE);
  }

  setFailed(bar: number): void {
    this.noteKey(bar, KEY_FAILED);
  }

  /** The side's bars as the report's Span objects, oldest first. */
  spans(row: number, side: Side): Span[] {
    const out: Span[] = [];
    const next = this.bars.next;
    for (let b = this.chains[barChain(row, side)]!; b !== NONE; b = next[b]!) {
      const s: Span = { phase: PHASE_NAMES[this.barPhase[b]!]!, startNs: this.barStart[b]! };
      // The keys in the order they were first set, as a bar object would list them.
      const keys = this.barKeys[b]!;
      for (let shift = 0; shift < 6; shift += 2) {
        const k = (keys >> shift) & 3;
        if (k === KEY_END) s.endNs = this.barEnd[b]!;
        else if (k === KEY_NOTE) s.note = this.barNote[b]!;
        else if (k === KEY_FAILED) s.failed = true;
      }
      out.push(s);
    }
    return out;
  }

  private hasKey(bar: number, key: number): boolean {
    const keys = this.barKeys[bar]!;
    return (keys & 3) === key || ((keys >> 2) & 3) === key || ((keys >> 4) & 3) === key;
  }

  private noteKey(bar: number, key: number): void {
    const keys = this.barKeys[bar]!;
    if (this.hasKey(bar, key)) return;
    this.barKeys[bar] = keys | (key << ((keys & 3 ? ((keys >> 2) & 3 ? 2 : 1) : 0) * 2));
  }

  private freeBar(b: number): number {
    const next = this.bars.next[b]!;
    this.barNote[b] = undefined;
    this.barState[b] = 0;
    this.bars.give(b);
    return next;
  }

  private growBars(n: number): void {
    this.barStart = grown(this.barStart, n);
    this.barEnd = grown(this.barEnd, n);
    this.barPhase = grown(this.barPhase, n);
    this.barKeys = grown(this.barKeys, n);
    this.barState = grown(this.barState, n);
    padNotes(this.barNote, n);
  }

  // ------------------------------------------------------------ points

  addPoint(row: number, kind: Point, tNs: number, note?: string): void {
    const p = this.pts.take();
    if (p >= this.ptT.length) {
      const n = this.pts.next.length;
      this.ptT = grown(this.ptT, n);
      this.ptKind = grown(this.ptKind, n);
      padNotes(this.ptNote, n);
    }
    this.ptT[p] = tNs;
    this.ptKind[p] = kind;
    this.ptNote[p] = note;
    this.append(this.pts.next, row * CHAIN_INTS + POINTS, p);
  }

  pointCount(row: number): number {
    return this.chains[row * CHAIN_INTS + POINTS + 2]!;
  }

  /** Drops the oldest points down to `keep`; the time of the last one dropped, or -Infinity. */
  dropPoints(row: number, keep: number): number {
    const c = row * CHAIN_INTS + POINTS;
    let last = Number.NEGATIVE_INFINITY;
    while (this.chains[c + 2]! > keep) {
      const p = this.chains[c]!;
      last = this.ptT[p]!;
      this.unlinkHead(this.pts.next, c);
      this.freePoint(p);
    }
    return last;
  }

  points(row: number): PointEvent[] {
    const out: PointEvent[] = [];
    const next = this.pts.next;
    for (let p = this.chains[row * CHAIN_INTS + POINTS]!; p !== NONE; p = next[p]!) {
      const note = this.ptNote[p];
      const kind = POINT_NAMES[this.ptKind[p]!]!;
      out.push(note === undefined ? { kind, tNs: this.ptT[p]! } : { kind, tNs: this.ptT[p]!, note });
    }
    return out;
  }

  private freePoint(p: number): number {
    const next = this.pts.next[p]!;
    this.ptNote[p] = undefined;
    this.pts.give(p);
    return next;
  }

  // ------------------------------------------------------------ reference steps

  addRef(row: number, tNs: number, count: number): void {
    const r = this.refs.take();
    if (r >= this.refT.length) {
      const n = this.refs.next.length;
      this.refT = grown(this.refT, n);
      this.refCount = grown(this.refCount, n);
    }
    this.refT[r] = tNs;
    this.refCount[r] = count;
    this.append(this.refs.next, row * CHAIN_INTS + REFS, r);
  }

  refSteps(row: number): number {
    return this.chains[row * CHAIN_INTS + REFS + 2]!;
  }

  /** Drops the oldest steps down to `keep`; the time of the first one kept. */
  dropRefs(row: number, keep: number): number {
    const c = row * CHAIN_INTS + REFS;
    while (this.chains[c + 2]! > keep) {
      const r = this.chains[c]!;
      this.unlinkHead(this.refs.next, c);
      this.freeRef(r);
    }
    return this.refT[this.chains[c]!]!;
  }

  /** DeviceLane.refs: [tNs, count] steps, oldest first. */
  refPairs(row: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    const next = this.refs.next;
    for (let r = this.chains[row * CHAIN_INTS + REFS]!; r !== NONE; r = next[r]!) out.push([this.refT[r]!, this.refCount[r]!]);
    return out;
  }

  private freeRef(r: number): number {
    const next = this.refs.next[r]!;
    this.refs.give(r);
    return next;
  }

  // ------------------------------------------------------------ chains

  private append(next: Int32Array, c: number, item: number): void {
    next[item] = NONE;
    const chains = this.chains;
    if (chains[c + 2] === 0) chains[c] = item;
    else next[chains[c + 1]!] = item;
    chains[c + 1] = item;
    chains[c + 2] = chains[c + 2]! + 1;
  }

  private unlinkHead(next: Int32Array, c: number): void {
    const chains = this.chains;
    const head = chains[c]!;
    chains[c] = next[head]!;
    const length = chains[c + 2]! - 1;
    chains[c + 2] = length;
    if (length === 0) chains[c + 1] = NONE;
  }
}
