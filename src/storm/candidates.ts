// The shrinker's candidates: smaller or simpler step lists than a list,
// biggest cuts first (whole NIC cycles out, then runs of steps, then single
// steps made simpler). Made and compared as small integers, not as JSON: a
// shrink makes dozens of candidates and keys each one, in a process's first
// shrinks with this code still cold, and looking up each step's JSON (a
// WeakMap lookup a step, a string a list) and making Sets for each cut were
// most of what the search cost beside its runs.

import type { Step } from "./spec.js";

/** What normalizing reads of a step (StepTable.role). */
const ADD = 0;
/** A remove or sick of a named NIC: it is unplugged after. */
const UNPLUG = 1;
/** Any other step about a named NIC. */
const ON_NIC = 2;
/** About no NIC (sleep, unload) or the empty name. */
const FREE = 3;

/** Ids from 0x8000 take two code units in a key (see keyOf). */
const WIDE = 0x8000;
/** String.fromCharCode.apply is given this many code units at a time (its arguments go on the stack). */
const CHUNK = 4096;

/**
 * The steps of one search, each with an id: steps alike as JSON share one
 * (steps are never changed once made, so a step's JSON is made once, when it
 * enters the search: the start's steps and each simpler step made). What
 * normalizing and the NIC cuts read of a step is kept per id.
 */
export class StepTable {
  private readonly byJson = new Map<string, number>();
  private readonly nicIds = new Map<string, number>();
  /** Per id: ADD, UNPLUG, ON_NIC or FREE. */
  readonly role: number[] = [];
  /** Per id: its NIC's number (nicIds), -1 for a step about none. */
  readonly nic: number[] = [];
  /**
   * Per NIC number: the mark of the last cut that had it plugged (see
   * nextMark). A mark a cut rather than a Set made for each.
   */
  readonly plugged: number[] = [];
  private mark = 0;

  id(s: Step): number {
    const json = JSON.stringify(s);
    let id = this.byJson.get(json);
    if (id !== undefined) return id;
    id = this.role.length;
    this.byJson.set(json, id);
    if (!("nic" in s)) {
      this.role.push(FREE);
      this.nic.push(-1);
      return id;
    }
    let n = this.nicIds.get(s.nic);
    if (n === undefined) {
      n = this.nicIds.size;
      this.nicIds.set(s.nic, n);
      this.plugged.push(0);
    }
    this.nic.push(n);
    this.role.push(s.op === "add" ? ADD : s.nic === "" ? FREE : s.op === "remove" || s.op === "sick" ? UNPLUG : ON_NIC);
    return id;
  }

  /** A list entering the search (the start): its steps' ids looked up once. */
  list(steps: Step[]): Listed {
    const ids: number[] = [];
    for (let i = 0; i < steps.length; i++) ids.push(this.id(steps[i]!));
    return new Listed(steps, ids, this.keyOf(ids));
  }

  /** A fresh mark for a cut's plugged NICs: none is plugged under it yet. */
  nextMark(): number {
    return ++this.mark;
  }

  /**
   * The ids as text, one UTF-16 code unit an id below WIDE and two from it
   * (the first with its top bit set): no key is a prefix of another's code
   * units, so two lists' keys are equal exactly when their ids are, that is
   * when their steps are alike as JSON.
   */
  keyOf(ids: readonly number[]): string {
    let units: number[] = ids as number[];
    if (this.role.length > WIDE) {
      units = [];
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (id < WIDE) units.push(id);
        else units.push(WIDE | (id >>> 15), id & (WIDE - 1));
      }
    }
    if (units.length <= CHUNK) return String.fromCharCode.apply(null, units);
    let k = "";
    for (let i = 0; i < units.length; i += CHUNK) k += String.fromCharCode.apply(null, units.slice(i, i + CHUNK));
    return k;
  }
}

/** A step list as the search holds it: the steps, their ids (StepTable) and its key. */
export class Listed {
  constructor(
    readonly steps: Step[],
    readonly ids: number[],
    readonly key: string,
  ) {}
}

/** Candidates given, of the first SEEN_KEPT: a candidate like one of them is not given again. */
const SEEN_KEPT = 64;

/** Which of the three kinds of cut Candidates is making. */
const NIC_CYCLES = 0;
const RUNS = 1;
const SIMPLER = 2;
const DONE = 3;

/**
 * A list's candidates, one each next(), made as they are asked for (the
 * search takes the first that still fails): an iterator of our own rather
 * than a generator, whose frame V8 saves and restores at each yield, and
 * whose optimised code (with the walk's around it) was 50-70 ms of TurboFan
 * on a worker thread, landing in the bench's timed rounds.
 */
export class Candidates {
  private phase = NIC_CYCLES;
  private size: number;
  private at = 0;
  /** The NICs the list adds, by number, each once, in the order first added. */
  private readonly nics: number[] = [];
  /** The keys of the first SEEN_KEPT candidates given. */
  private readonly seen = new Set<string>();
  /** The simpler forms of step at - 1 not given yet (SIMPLER), from variantAt. */
  private variants: Step[] = [];
  private variantAt = 0;

  constructor(
    private readonly list: Listed,
    private readonly table: StepTable,
  ) {
    const mark = table.nextMark();
    const { ids } = list;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (table.role[id] !== ADD) continue;
      const n = table.nic[id]!;
      if (table.plugged[n] === mark) continue;
      table.plugged[n] = mark;
      this.nics.push(n);
    }
    this.size = Math.max(1, Math.floor(this.nics.length / 2));
  }

  /** The next candidate not given yet (unlike the list and the candidates kept), or undefined once there are none. */
  next(): Listed | undefined {
    for (;;) {
      const c = this.make();
      if (c === undefined) return undefined;
      if (c.key === this.list.key || this.seen.has(c.key)) continue;
      if (this.seen.size < SEEN_KEPT) this.seen.add(c.key);
      return c;
    }
  }

  /** The next candidate in order, given before or not; undefined at the end. */
  private make(): Listed | undefined {
    const steps = this.list.steps;
    // Whole NIC cycles, in order: halving sizes, down to one NIC.
    if (this.phase === NIC_CYCLES) {
      if (this.at < this.nics.length) {
        const from = this.at;
        this.at += this.size;
        return this.cut(from, this.size, -1, 0);
      }
      if (this.size > 1) {
        this.size = Math.floor(this.size / 2);
        this.at = 0;
        return this.make();
      }
      this.phase = RUNS;
      this.size = Math.max(1, Math.floor(steps.length / 2));
      this.at = 0;
    }
    // Runs of steps (ddmin-style halving).
    if (this.phase === RUNS) {
      if (this.at < steps.length) {
        const from = this.at;
        this.at += this.size;
        return this.cut(-1, 0, from, from + this.size);
      }
      if (this.size > 1) {
        this.size = Math.floor(this.size / 2);
        this.at = 0;
        return this.make();
      }
      this.phase = SIMPLER;
      this.at = 0;
    }
    // Simpler single steps.
    while (this.phase === SIMPLER) {
      if (this.variantAt < this.variants.length) return this.simpler(this.at - 1, this.variants[this.variantAt++]!);
      if (this.at >= steps.length) {
        this.phase = DONE;
        break;
      }
      this.variants = simplerForms(steps[this.at]!);
      this.variantAt = 0;
      this.at++;
    }
    return undefined;
  }

  /**
   * The list without the NICs nics[nicFrom, nicFrom + nicCount) and without
   * the steps at [from, to), then normalized (normalizeSteps, in the same pass).
   */
  private cut(nicFrom: number, nicCount: number, from: number, to: number): Listed {
    const table = this.table;
    const { role, nic, plugged } = table;
    const { steps: all, ids: allIds } = this.list;
    // NICs cut out are marked with dropMark, NICs plugged so far with mark.
    const dropMark = table.nextMark();
    for (let i = nicFrom; i >= 0 && i < nicFrom + nicCount && i < this.nics.length; i++) plugged[this.nics[i]!] = dropMark;
    const mark = table.nextMark();
    const steps: Step[] = [];
    const ids: number[] = [];
    for (let i = 0; i < all.length; i++) {
      if (i >= from && i < to) continue;
      const id = allIds[i]!;
      const n = nic[id]!;
      if (n >= 0) {
        const p = plugged[n];
        if (p === dropMark) continue;
        const r = role[id];
        if (r === ADD) {
          if (p === mark) continue;
          plugged[n] = mark;
        } else if (r !== FREE) {
          if (p !== mark) continue;
          if (r === UNPLUG) plugged[n] = 0;
        }
      }
      steps.push(all[i]!);
      ids.push(id);
    }
    // Trailing sleeps change nothing but the end time; kept so liveness deadlines can expire.
    return new Listed(steps, ids, table.keyOf(ids));
  }

  /** The list with step i replaced by v (not normalized: v is about the same NIC). */
  private simpler(i: number, v: Step): Listed {
    const steps = this.list.steps.slice();
    const ids = this.list.ids.slice();
    steps[i] = v;
    ids[i] = this.table.id(v);
    return new Listed(steps, ids, this.table.keyOf(ids));
  }
}

/** A step's simpler forms, in the order they are tried. */
function simplerForms(s: Step): Step[] {
  const variants: Step[] = [];
  // Written out as the schedule and validateStorm write these steps (same
  // fields, same order), not spread: a spread's copy has a map of its own,
  // and the step code optimised for the storm's steps deopted on it (see
  // stormWith in shrink.ts).
  if (s.op === "sleep" && s.ns > 1000) variants.push({ op: "sleep", ns: Math.max(1000, Math.round(s.ns / 2000) * 1000) });
  if (s.op === "hold" && s.count > 1) variants.push({ op: "hold", nic: s.nic, kind: s.kind, count: 1, forNs: s.forNs, holder: s.holder });
  if (s.op === "hold" && s.forNs > 1000) variants.push({ op: "hold", nic: s.nic, kind: s.kind, count: s.count, forNs: Math.max(1000, Math.round(s.forNs / 2000) * 1000), holder: s.holder });
  if (s.op === "sick" && s.delayNs > 0) variants.push({ op: "sick", nic: s.nic, module: s.module, delayNs: 0 });
  if (s.op === "sick") variants.push({ op: "remove", nic: s.nic });
  if (s.op === "detach" && s.force) variants.push({ op: "detach", nic: s.nic, force: false });
  // A plug with several device-side faults: each one left out in turn.
  if (s.op === "add" && s.faults !== undefined) {
    for (let j = 0; j < s.faults.length; j++) {
      const rest = s.faults.filter((_, k) => k !== j);
      const { faults: _all, ...plain } = s;
      variants.push(rest.length > 0 ? { ...plain, faults: rest } : plain);
    }
  }
  if (s.op === "device-fault" && s.fault.kind !== "malformed" && s.fault.kind !== "disconnect-after-control" && (s.fault.count ?? Infinity) > 1) {
    variants.push({ ...s, fault: { ...s.fault, count: 1 } });
  }
  return variants;
}
