// Protocol 7's long guest events (PROTOCOL.md, batched JSON): a guest device,
// ref or ifnet event that cannot go short (protocol 6: the first of its key in
// the batch, or one with fields of its own such as a new NIC's serial and mac,
// or detach flags) goes as [10 + member, dt, key, ...slots], every other field
// of its member in the schema's order, each a 0 where it is as the event's
// reference has it: its key's last event in the batch, or else its member's
// last event of any key. Such events were under a fifth of a storm's records
// and over a third of a batch's text once host records went short.
// page/batch.js (LONG) reads it.

import { GUEST_ENUMS, LONG } from "./page/batch.js";
import type { DeltaState } from "./delta.js";
import { numbersByName, trimmed } from "./slots.js";

type Obj = Record<string, unknown>;

/** Per member code (1 device, 2 ref, 3 ifnet): its member, key field and other fields in the schema's order, each with its enum's numbers by name where it is an enum. */
interface Long {
  member: string;
  key: string;
  fields: string[];
  enums: (Map<string, number> | undefined)[];
}

function long(member: string, key: string, fields: readonly string[]): Long {
  // The key goes in its own slot, before the others.
  fields = fields.filter((f) => f !== key);
  const tables = GUEST_ENUMS.get(member)!;
  const enums = fields.map((f) => {
    const names = tables[f];
    return names === undefined ? undefined : numbersByName(names);
  });
  return { member, key, fields: [...fields], enums };
}

const MEMBERS: Long[] = [1, 2, 3].map((m) => long(LONG[m]!.member, LONG[m]!.key, LONG[m]!.fields));

/**
 * Guest frame g's device, ref or ifnet event as protocol 7's long array, when
 * each field fits its slot (an enum name the schema has, not its 0; a number
 * not 0; the key a string), else null and st is left as it was (the event goes
 * whole). It then becomes its key's and its member's last event (st). dt is
 * the record's tNs minus the last record's; the caller has checked that the
 * frame steps seq by one and its guestTimeNs is its record's tNs.
 */
export function longEvent(g: Obj, dt: number, st: DeltaState): unknown[] | null {
  let m = 1;
  let e = g["device"] as Obj | undefined;
  let byKey = st.devices;
  if (e === undefined) {
    m = 2;
    e = g["ref"] as Obj | undefined;
    byKey = st.refs;
  }
  if (e === undefined) {
    m = 3;
    e = g["ifnet"] as Obj | undefined;
    byKey = st.ifnets;
  }
  if (e === undefined) return null;
  const d = MEMBERS[m - 1]!;
  const key = e[d.key];
  if (typeof key !== "string") return null;
  const ref = byKey.get(key) ?? st.anyLast[m];
  const a: unknown[] = [10 + m, dt, key];
  const { fields, enums } = d;
  for (let j = 0; j < fields.length; j++) {
    const f = fields[j]!;
    const v = e[f];
    const p = ref === undefined ? undefined : ref[f];
    if (v === p) a.push(0);
    else if (v === undefined) a.push(null);
    else {
      const t = enums[j];
      if (t !== undefined) {
        const n = typeof v === "string" ? t.get(v) : undefined;
        // A 0 would read as "the same"; a name the schema lacks has no number.
        if (n === undefined || n === 0) return null;
        a.push(n);
      } else {
        // A 0 would read as "the same", a null as "not there".
        if (v === 0 || v === null) return null;
        a.push(v);
      }
    }
  }
  byKey.set(key, e);
  st.anyLast[m] = e;
  return trimmed(a);
}

/** Notes guest frame g's device, ref or ifnet event (one with a string key) as its member's last event of any key: what every other path does too. */
export function noteAnyLast(g: Obj, st: DeltaState): void {
  let e = g["device"] as Obj | undefined;
  if (e !== undefined) {
    if (typeof e["name"] === "string") st.anyLast[1] = e;
    return;
  }
  e = g["ref"] as Obj | undefined;
  if (e !== undefined) {
    if (typeof e["holder"] === "string") st.anyLast[2] = e;
    return;
  }
  e = g["ifnet"] as Obj | undefined;
  if (e !== undefined && typeof e["ifname"] === "string") st.anyLast[3] = e;
}
