// Protocol 6's short events (PROTOCOL.md, batched JSON): a guest device, ref
// or ifnet event (two thirds of a storm's records) that repeats everything its
// key's last event in the batch has goes as a short array of numbers and its
// key, [member, kind, key, dt, ...own], not as a record object rewritten for
// the length of a stringify. In protocol 5 such an event was some 50-70
// characters of nested objects, "$same" and field names, made by copying the
// model's objects; here it is 15-30, and nothing of the model's is copied or
// changed. page/batch.js (SHORT) reads it.

import { GUEST_ENUMS } from "./page/batch.js";
import type { DeltaState } from "./delta.js";
import { numbersByName } from "./slots.js";

type Obj = Record<string, unknown>;

/** Names to numbers, from page/batch.js's numbers to names. */
function numbers(member: string, field: string): Map<string, number> {
  return numbersByName(GUEST_ENUMS.get(member)![field]!);
}

const DEVICE_KIND = numbers("device", "kind");
const OBJECT_KIND = numbers("device", "objectKind");
const STEP = numbers("device", "step");
const REF_KIND = numbers("ref", "kind");
const IFNET_KIND = numbers("ifnet", "kind");

/** An enum field as its number: 0 when absent (as the JSON form leaves a 0 out), -1 for a name the table lacks (the event then goes whole). */
function num(v: unknown, table: Map<string, number>): number {
  if (v === undefined) return 0;
  if (typeof v === "number") return v;
  return typeof v === "string" ? (table.get(v) ?? -1) : -1;
}

/**
 * Guest frame g's device, ref or ifnet event as protocol 6's array, when it
 * has each of its member's repeated fields exactly as its key's last event in
 * the batch (st) has it and no field but those, its kind, its key and its own
 * fields (page/batch.js's SHORT); it then becomes that last event. Else null,
 * and st is left as it was (the event goes whole, and delta.ts moves st).
 * dt is the record's tNs minus the last record's. g is a frame in the trace
 * schema's JSON form (protocol.ts), as the hub has it: one member, schema
 * fields only, so the fields looked at here are all it can have.
 */
export function shortEvent(g: Obj, dt: number, st: DeltaState): unknown[] | null {
  let e = g["device"] as Obj | undefined;
  if (e !== undefined) {
    if (e["flags"] !== undefined || e["error"] !== undefined || e["deferred"] !== undefined) return null;
    const name = e["name"];
    if (typeof name !== "string" || !repeatsDevice(e, st.devices.get(name))) return null;
    const kind = num(e["kind"], DEVICE_KIND);
    const objectKind = num(e["objectKind"], OBJECT_KIND);
    const step = num(e["step"], STEP);
    if (kind < 0 || objectKind < 0 || step < 0) return null;
    st.devices.set(name, e);
    // Trailing zeros left off: a slot left out is 0, a field left out.
    if (step !== 0) return [1, kind, name, dt, objectKind, step];
    if (objectKind !== 0) return [1, kind, name, dt, objectKind];
    return dt !== 0 ? [1, kind, name, dt] : [1, kind, name];
  }
  e = g["ref"] as Obj | undefined;
  if (e !== undefined) {
    const holder = e["holder"];
    if (typeof holder !== "string" || !repeatsRef(e, st.refs.get(holder))) return null;
    const kind = num(e["kind"], REF_KIND);
    const count = e["countAfter"];
    if (kind < 0 || (count !== undefined && typeof count !== "number")) return null;
    st.refs.set(holder, e);
    if (count !== undefined) return [2, kind, holder, dt, count];
    return dt !== 0 ? [2, kind, holder, dt] : [2, kind, holder];
  }
  e = g["ifnet"] as Obj | undefined;
  if (e !== undefined) {
    // Counters are rare (one event a NIC): they go whole.
    if (e["txPackets"] !== undefined || e["rxPackets"] !== undefined || e["txBytes"] !== undefined || e["rxBytes"] !== undefined) return null;
    const ifname = e["ifname"];
    if (typeof ifname !== "string" || !repeatsIfnet(e, st.ifnets.get(ifname))) return null;
    const kind = num(e["kind"], IFNET_KIND);
    const accessor = e["accessor"];
    if (kind < 0 || (accessor !== undefined && typeof accessor !== "string")) return null;
    st.ifnets.set(ifname, e);
    if (accessor !== undefined) return [3, kind, ifname, dt, accessor];
    return dt !== 0 ? [3, kind, ifname, dt] : [3, kind, ifname];
  }
  return null;
}

// Whether e has each of SAME_DEVICE_FIELDS, SAME_REF_FIELDS, SAME_IFNET_FIELDS
// (page/batch.js) exactly as p has it, both without it counting as the same.
// Spelled out, not a loop over the lists: a load by a name known here costs
// less than one by a key taken from an array (10% of the text's making, as a
// loop). test/serve/short-event.test.ts holds them to the lists.

function repeatsDevice(e: Obj, p: Obj | undefined): boolean {
  return (
    p !== undefined &&
    e["driver"] === p["driver"] &&
    e["parent"] === p["parent"] &&
    e["bus"] === p["bus"] &&
    e["port"] === p["port"] &&
    e["serial"] === p["serial"] &&
    e["mac"] === p["mac"] &&
    e["context"] === p["context"] &&
    e["thread"] === p["thread"] &&
    e["instance"] === p["instance"] &&
    e["ifname"] === p["ifname"]
  );
}

function repeatsRef(e: Obj, p: Obj | undefined): boolean {
  return (
    p !== undefined &&
    e["objectKind"] === p["objectKind"] &&
    e["object"] === p["object"] &&
    e["holderDesc"] === p["holderDesc"] &&
    e["context"] === p["context"] &&
    e["device"] === p["device"]
  );
}

function repeatsIfnet(e: Obj, p: Obj | undefined): boolean {
  return p !== undefined && e["device"] === p["device"] && e["context"] === p["context"];
}
