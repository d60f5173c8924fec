// A timeline lane's references held, per (object kind, object): what the
// reference step plot is drawn from.
//
// A lane holds references to a few objects (its device, interface, a node or
// two), and lives through many young-generation collections, so what it
// keeps is promoted: the two Maps per lane it used to be (kind, then object)
// were ~0.4 MB allocated a storm, and their deletes another ~0.2 MB as the
// tables shrank. Here a lane keeps one flat list (object, kind, count, ...)
// searched in place; a lane with many objects (a long-lived device, a
// damaged trace) moves them to a Map once, so a lookup never walks more
// than SPILL entries.

/** Entries kept in the flat list; past this the tally moves to a Map. */
const SPILL = 16;

export class RefTally {
  /** object, kind, count, one entry after another; empty once spilled. */
  private flat: Array<string | number> = [];
  private spilled: Map<string, number> | undefined = undefined;

  /** The count held of object (of the kind), 0 when none. */
  get(kind: number, object: string): number {
    const s = this.spilled;
    if (s !== undefined) return s.get(spillKey(kind, object)) ?? 0;
    const f = this.flat;
    for (let i = 0; i < f.length; i += 3) if (f[i] === object && f[i + 1] === kind) return f[i + 2] as number;
    return 0;
  }

  /** Sets object's count (of the kind); 0 forgets the object. */
  set(kind: number, object: string, count: number): void {
    const s = this.spilled;
    if (s !== undefined) {
      if (count === 0) s.delete(spillKey(kind, object));
      else s.set(spillKey(kind, object), count);
      return;
    }
    const f = this.flat;
    for (let i = 0; i < f.length; i += 3) {
      if (f[i] !== object || f[i + 1] !== kind) continue;
      if (count !== 0) {
        f[i + 2] = count;
        return;
      }
      // The last entry takes the freed place: order means nothing here.
      const last = f.length - 3;
      f[i] = f[last]!;
      f[i + 1] = f[last + 1]!;
      f[i + 2] = f[last + 2]!;
      f.length = last;
      return;
    }
    if (count === 0) return;
    if (f.length < SPILL * 3) {
      f.push(object, kind, count);
      return;
    }
    const m = new Map<string, number>();
    for (let i = 0; i < f.length; i += 3) m.set(spillKey(f[i + 1] as number, f[i] as string), f[i + 2] as number);
    m.set(spillKey(kind, object), count);
    this.spilled = m;
    this.flat = [];
  }
}

function spillKey(kind: number, object: string): string {
  return `${kind}\u0000${object}`;
}
