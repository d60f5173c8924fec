// Protocol 7's short host records (PROTOCOL.md, batched JSON): a host action,
// result, QMP command, reply or event, or a clock sample (a third of a storm's
// records, and with protocol 6 over half of a batch's text) goes as an array
// of its member's fields in the schema's order, [member, dt, ...slots], where
// what it repeats of its member's previous record in the batch is a 0 and its
// numbers are differences that are mostly 0 too; trailing zeros are left off.
// Field names, repeated strings and whole clock times were most of such a
// record's text, and its times most of what deflate could not squeeze.
// page/batch.js (HOST) reads it; test/serve/host-short.test.ts holds the two
// to each other.

import { RECORD_ENUMS } from "./page/batch.js";
import type { DeltaState } from "./delta.js";
import { numbersByName, trimmed } from "./slots.js";

type Obj = Record<string, unknown>;

/** The batch's previous record of each member that may go short (its member object, whole), or undefined. */
export interface HostLast {
  action: Obj | undefined;
  result: Obj | undefined;
  qmpCommand: Obj | undefined;
  qmpReply: Obj | undefined;
  qmpEvent: Obj | undefined;
  clock: Obj | undefined;
}

export function newHostLast(): HostLast {
  return { action: undefined, result: undefined, qmpCommand: undefined, qmpReply: undefined, qmpEvent: undefined, clock: undefined };
}

/** Names to numbers, from page/batch.js's numbers to names. */
function numbers(member: string, field: string): Map<string, number> {
  return numbersByName(RECORD_ENUMS.get(member)![field]!);
}

const ACTION_KIND = numbers("action", "kind");
const NIC_BUS = numbers("action", "bus");
const OUTCOME = numbers("result", "outcome");

/**
 * Set when a field cannot go in a slot (an enum name the table lacks, or one
 * whose number is 0, which would read as "the same"; a number field that is
 * not a number): the record then goes whole.
 */
let bad = false;

/** A slot of a field that repeats: 0 when it is as prev has it (both without it too), null when only prev has it, else its value. */
function same(v: unknown, p: unknown): unknown {
  if (v === p) return 0;
  if (v === undefined) return null;
  // Strings and booleans only: the schema's other fields here are enums (sameEnum) or numbers (diff).
  if (typeof v !== "string" && typeof v !== "boolean") bad = true;
  return v;
}

/** same() for an enum field, its name compared and sent as its number. */
function sameEnum(v: unknown, p: unknown, table: Map<string, number>): unknown {
  if (v === p) return 0;
  if (v === undefined) return null;
  const n = typeof v === "string" ? table.get(v) : undefined;
  if (n === undefined || n === 0) bad = true;
  return n;
}

/** A number field's slot: its value minus base, null when it has none (a 0 slot is a field there, equal to base). */
function diff(v: unknown, base: number): number | null {
  if (v === undefined) return null;
  if (typeof v !== "number") {
    bad = true;
    return null;
  }
  return v - base;
}

/** o[key] when a number, else 0: the base a field without a number gives. */
function numOr0(o: Obj | undefined, key: string): number {
  const v = o === undefined ? undefined : o[key];
  return typeof v === "number" ? v : 0;
}

/** s with its trailing decimal number one more ("plugstorm-7" -> "plugstorm-8"), or undefined without one: page/batch.js's stepped(). */
export function stepped(s: unknown): string | undefined {
  if (typeof s !== "string") return undefined;
  let i = s.length;
  while (i > 0 && s.charCodeAt(i - 1) >= 48 && s.charCodeAt(i - 1) <= 57) i--;
  if (i === s.length) return undefined;
  return s.slice(0, i) + String(Number(s.slice(i)) + 1);
}

/** A QMP id's slot: 0 when it is expected (the id the page works out), null when it has none, else itself. */
function idSlot(v: unknown, expected: unknown): unknown {
  if (v === undefined) return null;
  if (v === expected) return 0;
  if (typeof v !== "string") bad = true;
  return v;
}

/**
 * Record x (not a guest frame) as protocol 7's array when its member is one
 * that may go short and each field fits its slot, else null (it goes whole).
 * Either way its member becomes that member's last record (st.host), as the
 * page takes every record of the member. dt is its tNs minus the last
 * record's, at its tNs. Reads the model's objects, never changes them; x is
 * in the trace schema's JSON form (protocol.ts): one member, schema fields
 * only, so the fields named here are all it can have.
 */
export function hostShort(x: Obj, dt: number, at: number, st: DeltaState): unknown[] | null {
  const last = st.host;
  bad = false;
  let a: unknown[];
  let o = x["action"] as Obj | undefined;
  if (o !== undefined) {
    const p = last.action;
    last.action = o;
    a = [
      4,
      dt,
      diff(o["id"], numOr0(p, "id") + 1),
      sameEnum(o["kind"], p?.["kind"], ACTION_KIND),
      same(o["nicId"], p?.["nicId"]),
      same(o["nicKind"], p?.["nicKind"]),
      sameEnum(o["bus"], p?.["bus"], NIC_BUS),
      same(o["port"], p?.["port"]),
      same(o["mac"], p?.["mac"]),
      same(o["args"], p?.["args"]),
    ];
  } else if ((o = x["qmpCommand"] as Obj | undefined) !== undefined) {
    const p = last.qmpCommand;
    last.qmpCommand = o;
    a = [6, dt, idSlot(o["id"], stepped(p?.["id"])), same(o["command"], p?.["command"]), same(o["arguments"], p?.["arguments"])];
  } else if ((o = x["qmpReply"] as Obj | undefined) !== undefined) {
    const p = last.qmpReply;
    last.qmpReply = o;
    a = [
      7,
      dt,
      // A reply answers the command before it: its id is that command's.
      idSlot(o["id"], last.qmpCommand?.["id"]),
      same(o["ok"], p?.["ok"]),
      same(o["result"], p?.["result"]),
      same(o["errorClass"], p?.["errorClass"]),
      same(o["errorDesc"], p?.["errorDesc"]),
    ];
  } else if ((o = x["result"] as Obj | undefined) !== undefined) {
    const p = last.result;
    last.result = o;
    a = [
      5,
      dt,
      diff(o["actionId"], numOr0(p, "actionId") + 1),
      sameEnum(o["outcome"], p?.["outcome"], OUTCOME),
      same(o["message"], p?.["message"]),
      diff(o["sentNs"], at),
      diff(o["replyNs"], at),
      diff(o["eventNs"], at),
      same(o["nicId"], p?.["nicId"]),
    ];
  } else if ((o = x["qmpEvent"] as Obj | undefined) !== undefined) {
    const p = last.qmpEvent;
    last.qmpEvent = o;
    const us = o["qemuTimeUs"];
    a = [8, dt, same(o["event"], p?.["event"]), same(o["data"], p?.["data"]), diff(us, st.qemuUs)];
    // The batch's last QMP event time, as protocol 4 keeps it: moved by any event that has one (when this one goes whole, by delta.ts).
    if (!bad && typeof us === "number") st.qemuUs = us;
  } else if ((o = x["clock"] as Obj | undefined) !== undefined) {
    const p = last.clock;
    last.clock = o;
    a = [
      9,
      dt,
      diff(o["hostSendNs"], at),
      diff(o["hostRecvNs"], at),
      diff(o["guestTimeNs"], at),
      diff(o["offsetNs"], numOr0(p, "offsetNs")),
      diff(o["errorNs"], numOr0(p, "errorNs")),
    ];
  } else return null;
  return bad ? null : trimmed(a);
}
