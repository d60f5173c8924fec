// The server's side of page/batch.js (PROTOCOL.md, batched JSON): a batch's
// records carry their growing numbers as differences and their enum fields as
// numbers, and most guest events go as short arrays (short-event.ts). The
// record objects are the live model's too (hub.ts), so they are rewritten
// only for the length of one JSON.stringify and put back before anything else
// can read them.

/** Where the differences of a batch stand; a batch starts from zero (each stands alone for a reader joining at it). */
export interface DeltaState {
  /** The last record's tNs. */
  t: number;
  /** The last guest record's seq. */
  seq: number;
  /** The last QMP event's qemuTimeUs. */
  qemuUs: number;
  /** The batch's last guest device event of each device name. */
  devices: Map<string, Obj>;
  /** The batch's last guest ref event of each holder. */
  refs: Map<string, Obj>;
  /** The batch's last guest ifnet event of each interface name. */
  ifnets: Map<string, Obj>;
  /** The batch's last record of each host member that may go short (host-short.ts). */
  host: HostLast;
  /** The batch's last guest device, ref and ifnet event of any key, by member code (1, 2, 3: guest-long.ts). */
  anyLast: (Obj | undefined)[];
}

export function newDeltaState(): DeltaState {
  return { t: 0, seq: 0, qemuUs: 0, devices: new Map(), refs: new Map(), ifnets: new Map(), host: newHostLast(), anyLast: [undefined, undefined, undefined, undefined] };
}

// A guest device event marked "$same" leaves out these fields where they equal
// the batch's previous event of the same device name: two thirds of a device
// event's text, and the page's list (page/batch.js) is the one rule. Ref
// events (by holder) and ifnet events (by interface name) likewise
// (protocol 5).

import { GUEST_ENUMS, RECORD_ENUMS, SAME_DEVICE_FIELDS, SAME_IFNET_FIELDS, SAME_REF_FIELDS } from "./page/batch.js";
import { shortEvent } from "./short-event.js";
import { hostShort, newHostLast, type HostLast } from "./host-short.js";
import { longEvent, noteAnyLast } from "./guest-long.js";
import { numbersByName } from "./slots.js";

type Obj = Record<string, unknown>;

/**
 * The numbers rewritten, as (object, key, original) in turn, so that they
 * are put back without walking the chunk again (one array for every call:
 * stringify is synchronous). Its first nSaved entries are this call's: it
 * is not emptied, which would free its store and grow it again in the next.
 */
const saved: unknown[] = [];
let nSaved = 0;

/**
 * JSON text of a chunk of batch elements (records, and headers or verdicts
 * that have a string `type` and are left as they are), the records' numbers
 * as differences continuing from st, which it advances, their enum fields
 * as numbers, and a guest event that may go short as its short array. The
 * records are in the trace schema's JSON form (protocol.ts), as the hub has
 * them: one member a record, one a guest frame. The elements are as they were
 * when it returns, even when stringify throws.
 */
export function stringifyWithDeltas(chunk: unknown[], st: DeltaState): string {
  let t = st.t;
  let seq = st.seq;
  // The chunk as it is sent: records that need a field they lack, or a device event without what it repeats, replaced by copies.
  let out: unknown[] | null = null;
  try {
    for (let i = 0; i < chunk.length; i++) {
      const x = chunk[i] as Obj;
      if (typeof x["type"] === "string") continue;
      const at = whole(x, "tNs");
      const g0 = x["guest"] as Obj | undefined;
      if (g0 !== undefined) {
        // Protocol 6: a guest frame that steps on from the record before as most do (seq by one, its time the record's) may go as a short array.
        const s = whole(g0, "seq");
        if (s === seq + 1 && whole(g0, "guestTimeNs") === at) {
          let a = shortEvent(g0, at - t, st);
          // Protocol 7: one that cannot go short goes long, every field in a slot, most of them 0.
          if (a !== null) noteAnyLast(g0, st);
          else a = longEvent(g0, at - t, st);
          if (a !== null) {
            (out ??= chunk.slice())[i] = a;
            t = at;
            seq = s;
            continue;
          }
        }
      } else {
        // Protocol 7: a host record of a member that repeats (actions, results, QMP, clock samples) as an array of its fields.
        const a = hostShort(x, at - t, at, st);
        if (a !== null) {
          (out ??= chunk.slice())[i] = a;
          t = at;
          continue;
        }
      }
      // tNs and guest.seq step from the record before (seq by one), guest.guestTimeNs from tNs: a difference of 0 is left out.
      const dt = step(x, "tNs", at - t);
      t = at;
      const g = x["guest"] as Obj | undefined;
      let dseq: number | undefined;
      let dguest: number | undefined;
      // Each member as the page reads it: every one of a frame's members moves its own last event (page/batch.js).
      let sameDevice: Obj | null = null;
      let sameRef: Obj | null = null;
      let sameIfnet: Obj | null = null;
      if (g) {
        const s = whole(g, "seq");
        dseq = step(g, "seq", s - seq - 1);
        seq = s;
        dguest = step(g, "guestTimeNs", whole(g, "guestTimeNs") - at);
        sameDevice = sameAs(g["device"] as Obj | undefined, "name", st.devices, SAME_DEVICE_FIELDS, SAME_DEVICE);
        sameRef = sameAs(g["ref"] as Obj | undefined, "holder", st.refs, SAME_REF_FIELDS, SAME_REF);
        sameIfnet = sameAs(g["ifnet"] as Obj | undefined, "ifname", st.ifnets, SAME_IFNET_FIELDS, SAME_IFNET);
        noteAnyLast(g, st);
      }
      // Only numbers: an absent field is zero (defaults left out) and moves nothing, as page/batch.js reads it.
      const r = x["result"] as Obj | undefined;
      if (r) {
        minus(r, "sentNs", at);
        minus(r, "replyNs", at);
        minus(r, "eventNs", at);
      }
      const q = x["qmpEvent"] as Obj | undefined;
      if (q) {
        const u = minus(q, "qemuTimeUs", st.qemuUs);
        if (u !== undefined) st.qemuUs = u;
      }
      if (dt !== undefined || dseq !== undefined || dguest !== undefined || sameDevice || sameRef || sameIfnet) {
        const y: Obj = dt === undefined ? { ...x } : { ...x, tNs: dt };
        if (g) {
          const h: Obj = { ...g };
          if (dseq !== undefined) h["seq"] = dseq;
          if (dguest !== undefined) h["guestTimeNs"] = dguest;
          if (sameDevice) h["device"] = sameDevice;
          if (sameRef) h["ref"] = sameRef;
          if (sameIfnet) h["ifnet"] = sameIfnet;
          y["guest"] = h;
        }
        (out ??= chunk.slice())[i] = y;
      }
    }
    // After the pass above, whose $same compares a device event's names with those of an event before it.
    const sent = out ?? chunk;
    for (let i = 0; i < sent.length; i++) {
      const x = sent[i] as Obj;
      if (typeof x["type"] === "string" || Array.isArray(x)) continue;
      // A record has one member (its oneof body): a guest frame's enums are in the frame's member.
      const g = x["guest"] as Obj | undefined;
      if (g) numberedGuest(g);
      else numbered(x, RECORD_NUMBERS);
    }
    return JSON.stringify(sent);
  } finally {
    for (let i = 0; i < nSaved; i += 3) {
      (saved[i] as Obj)[saved[i + 1] as string] = saved[i + 2];
      // Not kept alive by this array after the model lets it go.
      saved[i] = undefined;
    }
    nSaved = 0;
    st.t = t;
    st.seq = seq;
  }
}

function save(o: Obj, key: string, v: unknown): void {
  saved[nSaved] = o;
  saved[nSaved + 1] = key;
  saved[nSaved + 2] = v;
  nSaved += 3;
}

/** o[key] as a whole number: 0 when absent (or, never in the JSON form, not a number). */
function whole(o: Obj, key: string): number {
  const v = o[key];
  return typeof v === "number" ? v : 0;
}

/**
 * Writes o[key] as difference d: left out when 0 (undefined for the length of
 * the stringify, noted in saved), rewritten in place when o has the field;
 * returned when o lacks it and d is not 0 (the record goes out as a copy with it).
 */
function step(o: Obj, key: string, d: number): number | undefined {
  const v = o[key];
  if (typeof v === "number") {
    save(o, key, v);
    o[key] = d === 0 ? undefined : d;
    return undefined;
  }
  return d === 0 ? undefined : d;
}

/** Rewrites o[key], when a number, as its difference from base (noted in saved); returns what it was. */
function minus(o: Obj, key: string, base: number): number | undefined {
  const v = o[key];
  if (typeof v !== "number") return undefined;
  save(o, key, v);
  o[key] = v - base;
  return v;
}

/**
 * A guest member event e (when there, and its key field a string) without
 * what it repeats of the batch's last event of its key (leftOut), which e
 * then becomes: the server's side of page/batch.js's same().
 */
function sameAs(e: Obj | undefined, keyField: string, last: Map<string, Obj>, fields: readonly string[], set: ReadonlySet<string>): Obj | null {
  if (!e) return null;
  const key = e[keyField];
  if (typeof key !== "string") return null;
  const out = leftOut(e, last.get(key), fields, set);
  last.set(key, e);
  return out;
}

/**
 * d without the fields it shares with prev, marked "$same"; null when it has
 * none to leave out, or lacks one prev has (left out, it would be read as prev's).
 */
function leftOut(d: Obj, prev: Obj | undefined, fields: readonly string[], set: ReadonlySet<string>): Obj | null {
  if (!prev) return null;
  let shared = 0;
  for (const k of fields) {
    const v = d[k];
    if (v === undefined) {
      if (prev[k] !== undefined) return null;
    } else if (v === prev[k]) shared++;
  }
  if (shared === 0) return null;
  const out: Obj = {};
  for (const k in d) if (!(set.has(k) && d[k] === prev[k])) out[k] = d[k];
  out["$same"] = 1;
  return out;
}

const SAME_DEVICE: ReadonlySet<string> = new Set(SAME_DEVICE_FIELDS);
const SAME_REF: ReadonlySet<string> = new Set(SAME_REF_FIELDS);
const SAME_IFNET: ReadonlySet<string> = new Set(SAME_IFNET_FIELDS);

/** Per member, its enum fields (names) and each one's numbers by name (byName), in step: page/batch.js's tables turned around. */
type Numbers = Map<string, { names: string[]; byName: Map<string, number>[] }>;

function byName(tables: ReadonlyMap<string, Readonly<Record<string, readonly (string | undefined)[]>>>): Numbers {
  const out: Numbers = new Map();
  for (const [member, fields] of tables) {
    const names = Object.keys(fields);
    out.set(member, { names, byName: names.map((f) => numbersByName(fields[f]!)) });
  }
  return out;
}

const RECORD_NUMBERS = byName(RECORD_ENUMS);
const GUEST_NUMBERS = byName(GUEST_ENUMS);

/**
 * The enum fields of o's members written as their numbers (noted in saved);
 * a name the tables lack is left a name (page/batch.js leaves a string alone).
 */
function numbered(o: Obj, tables: Numbers): void {
  for (const k in o) {
    const t = tables.get(k);
    const m = o[k] as Obj | null | undefined;
    if (t !== undefined && m != null) numberedFields(m, t);
  }
}

const G_DEVICE = GUEST_NUMBERS.get("device")!;
const G_REF = GUEST_NUMBERS.get("ref")!;
const G_IFNET = GUEST_NUMBERS.get("ifnet")!;

/** numbered() for a guest frame: its three busiest members found by name, not by walking its keys and looking each up. */
function numberedGuest(g: Obj): void {
  let m = g["device"] as Obj | undefined;
  let t = G_DEVICE;
  if (m === undefined) {
    m = g["ref"] as Obj | undefined;
    t = G_REF;
  }
  if (m === undefined) {
    m = g["ifnet"] as Obj | undefined;
    t = G_IFNET;
  }
  if (m == null) numbered(g, GUEST_NUMBERS);
  else numberedFields(m, t);
}

function numberedFields(m: Obj, t: { names: string[]; byName: Map<string, number>[] }): void {
  const { names, byName } = t;
  for (let j = 0; j < names.length; j++) {
    const f = names[j]!;
    const v = m[f];
    if (typeof v !== "string") continue;
    const n = byName[j]!.get(v);
    if (n === undefined) continue;
    save(m, f, v);
    m[f] = n;
  }
}
