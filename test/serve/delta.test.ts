// Batched records' growing numbers as differences, device events without
// what they repeat (PROTOCOL.md, batched JSON): the server writes them
// (delta.ts), the page and Node clients make them whole (page/batch.js), and
// the records the live model holds are never seen changed.
import test from "ava";
import fc from "fast-check";
import { newDeltaState, stringifyWithDeltas } from "../../src/serve/delta.js";
import { openBatch } from "../../src/serve/page/batch.js";

type Obj = Record<string, unknown>;

/** A number field: never 0 when there (the JSON form leaves zeros out, PROTOCOL.md), or absent. */
const num = fc.option(
  fc.integer({ min: -1e12, max: 4e15 }).filter((n) => n !== 0),
  { nil: undefined },
);
/** An enum field as the JSON form has it: a name the schema knows, one it does not, or a number it has no name for. */
const enumValue = (...names: string[]): fc.Arbitrary<string | number> => fc.oneof(fc.constantFrom(...names), fc.constant("NOT_A_NAME"), fc.constant(99));
/** A guest device event: of one of two devices, its repeated fields each there or not, often the same as before. */
const device = fc.record(
  {
    kind: fc.constantFrom("ATTACH_BEGIN", "FREE"),
    name: fc.constantFrom("cdce0", "cdce1"),
    driver: fc.constantFrom("cdce", "axe"),
    port: fc.constantFrom("uhub0 port 1", "uhub0 port 2"),
    instance: fc.constantFrom(1, 2),
    mac: fc.constant("52:54:00:00:00:01"),
    ifname: fc.constantFrom("cdce0", "cdce1"),
    objectKind: enumValue("OBJECT_KIND_IFNET", "OBJECT_KIND_OTHER"),
    context: enumValue("EXEC_CONTEXT_THREAD"),
  },
  { requiredKeys: ["kind"] },
);
/** A guest ref event: of one of two holders, its repeated fields each there or not, often the same as before. */
const ref = fc.record(
  {
    kind: enumValue("ACQUIRE", "RELEASE"),
    holder: fc.constantFrom("cdce0.mcasttask", "h-nic7-ifnet"),
    object: fc.constantFrom("cdce0 usbtask", "cdce0"),
    objectKind: enumValue("OBJECT_KIND_USB_TASK"),
    holderDesc: fc.constantFrom("multicast task", "held"),
    countAfter: fc.constantFrom(1, 2),
    context: enumValue("EXEC_CONTEXT_THREAD", "EXEC_CONTEXT_INTERRUPT"),
    device: fc.constantFrom("cdce0", "cdce1"),
  },
  { requiredKeys: ["kind"] },
);
/** A guest ifnet event: of one of two interfaces, its repeated fields each there or not. */
const ifnet = fc.record(
  { kind: enumValue("ATTACH", "DEPARTURE"), ifname: fc.constantFrom("cdce0", "ne0"), device: fc.constantFrom("cdce0", "ne0"), context: enumValue("EXEC_CONTEXT_THREAD") },
  { requiredKeys: ["kind"] },
);
/**
 * A record-like element, as the hub has them (the trace schema's JSON form: a
 * record has one member, a guest frame one member): every field the
 * differences touch, each there or not; or a message with a type.
 */
const guestFrame = fc
  .tuple(
    fc.record({ seq: num, guestTimeNs: num }, { requiredKeys: [] }),
    fc.oneof(fc.record({ device }), fc.record({ ref }), fc.record({ ifnet }), fc.constant({})),
  )
  .map(([frame, member]) => ({ ...frame, ...member }));
const element = fc.oneof(
  fc
    .tuple(
      fc.record({ tNs: num }, { requiredKeys: [] }),
      fc.oneof(
        fc.record({ guest: guestFrame }),
        fc.record({ result: fc.record({ sentNs: num, replyNs: num, eventNs: num, actionId: fc.nat() }, { requiredKeys: ["actionId"] }) }),
        fc.record({ qmpEvent: fc.record({ qemuTimeUs: num, event: fc.constant("DEVICE_DELETED") }, { requiredKeys: ["event"] }) }),
        fc.record({ action: fc.record({ kind: enumValue("ADD_NIC", "REMOVE_NIC"), bus: enumValue("NIC_BUS_USB") }, { requiredKeys: [] }) }),
        fc.constant({}),
      ),
    )
    .map(([r, member]) => ({ ...r, ...member })),
  fc.record({ type: fc.constantFrom("header", "verdict"), tNs: num }),
);

/** x without keys whose value is undefined: what JSON text keeps of it. */
const asSent = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

test("records' numbers made differences in chunks, over one state, open back to the records; the elements are left as they were", (t) => {
  fc.assert(
    fc.property(fc.array(element, { maxLength: 60 }), fc.integer({ min: 1, max: 20 }), fc.nat(1000), (els, size, from) => {
      const before = asSent(els);
      const st = newDeltaState();
      const parts: string[] = [];
      for (let i = 0; i < els.length; i += size) parts.push(stringifyWithDeltas(els.slice(i, i + size), st).slice(1, -1));
      t.deepEqual(asSent(els), before, "the elements are unchanged");
      const batch = JSON.parse(`{"type":"batch","from":${from},"messages":[${parts.filter((p) => p).join(",")}]}`) as { from: number; messages: Obj[] };
      const opened: unknown[] = [];
      const indexes: number[] = [];
      openBatch(
        batch,
        (i, x) => {
          indexes.push(i);
          opened.push(x);
        },
        (x) => opened.push(x),
      );
      t.deepEqual(opened, before);
      t.deepEqual(indexes, Array.from({ length: indexes.length }, (_, k) => from + k), "records numbered from the batch's from");
    }),
  );
});

test("growing numbers go out as small differences: a first record's from zero, each next one's from the last; differences of 0 (seq: 1) are left out", (t) => {
  const els: Obj[] = [
    { tNs: 1_000_000_000, guest: { seq: 40, guestTimeNs: 1_000_000_500 } },
    { tNs: 1_000_002_000, guest: { seq: 41, guestTimeNs: 1_000_002_000 } },
    { type: "verdict", tNs: 5 },
    { tNs: 1_000_002_000, result: { sentNs: 999_000_000, replyNs: 1_000_001_000 } },
    { qmpEvent: { qemuTimeUs: 1_700_000_000_000_000 } },
    { tNs: 1_000_003_000, qmpEvent: { qemuTimeUs: 1_700_000_000_000_900 } },
    { tNs: 1_000_003_000, guest: { seq: 45, guestTimeNs: 1_000_003_000 } },
  ];
  t.deepEqual(JSON.parse(stringifyWithDeltas(els, newDeltaState())), [
    { tNs: 1_000_000_000, guest: { seq: 39, guestTimeNs: 500 } },
    { tNs: 2000, guest: {} },
    { type: "verdict", tNs: 5 },
    // Host results and QMP events go as protocol 7's arrays ([member, dt, ...slots]), their times differences all the same.
    [5, 0, null, 0, 0, -1_002_000, -1000, null],
    // A record without tNs is at 0: the next one's difference is from there.
    [8, -1_000_002_000, 0, 0, 1_700_000_000_000_000],
    [8, 1_000_003_000, 0, 0, 900],
    { guest: { seq: 3 } },
  ]);
});

test("a record lacking a field whose difference is not 0 goes out as a copy with it; the model's object is left as it was", (t) => {
  const first = { tNs: 2_000, guest: { seq: 7, guestTimeNs: 2_000 } };
  const bare = { guest: { device: { kind: "FREE", name: "cdce0" } } };
  const before = asSent([first, bare]);
  t.deepEqual(JSON.parse(stringifyWithDeltas([first, bare], newDeltaState())), [
    { tNs: 2_000, guest: { seq: 6 } },
    { tNs: -2_000, guest: { seq: -8, device: { kind: 8, name: "cdce0" } } },
  ]);
  t.deepEqual(asSent([first, bare]), before);
});

test("a device event leaves out the fields it repeats of the batch's previous event of that device, and only when it lacks none that one has", (t) => {
  const dev = (extra: Obj): Obj => ({ name: "cdce2", driver: "cdce", port: "uhub0 port 3", mac: "52:54:00:00:00:03", instance: 1, ...extra });
  const els: Obj[] = [
    { guest: { device: dev({ kind: "ATTACH_BEGIN" }) } },
    { guest: { device: dev({ kind: "ATTACH_END", objectKind: "OBJECT_KIND_DEVICE" }) } },
    { guest: { device: dev({ kind: "DETACH_BEGIN", instance: 2 }) } },
    { guest: { device: { kind: "FREE", name: "cdce2" } } },
    { guest: { device: dev({ kind: "FREE" }) } },
  ];
  const before = asSent(els);
  t.deepEqual(
    (JSON.parse(stringifyWithDeltas(els, newDeltaState())) as { guest: { device: Obj } }[]).map((x) => x.guest.device),
    [
      dev({ kind: 1 }),
      { kind: 2, name: "cdce2", objectKind: 1, $same: 1 },
      { kind: 4, name: "cdce2", instance: 2, $same: 1 },
      { kind: 8, name: "cdce2" },
      dev({ kind: 8 }),
    ],
  );
  t.deepEqual(asSent(els), before, "the model's objects are left whole");
});

test("ref events leave out what they repeat of the batch's previous ref event of their holder, ifnet events of their interface's", (t) => {
  const acq = { kind: "ACQUIRE", objectKind: "OBJECT_KIND_USB_TASK", object: "cdce0 usbtask", holder: "cdce0.mcasttask", holderDesc: "multicast task", countAfter: 1, context: "EXEC_CONTEXT_THREAD", device: "cdce0" };
  const els: Obj[] = [
    { guest: { ref: acq } },
    { guest: { ifnet: { kind: "DETACH_BEGIN", ifname: "cdce0", device: "cdce0", context: "EXEC_CONTEXT_THREAD" } } },
    { guest: { ref: { ...acq, kind: "RELEASE", countAfter: undefined } } },
    { guest: { ifnet: { kind: "DEPARTURE", ifname: "cdce0", device: "cdce0", context: "EXEC_CONTEXT_THREAD" } } },
    { guest: { ref: { ...acq, holder: "other" } } },
    { guest: { ifnet: { kind: "DETACH_END", ifname: "cdce0", device: "cdce0" } } },
  ];
  const before = asSent(els);
  const sent = (JSON.parse(stringifyWithDeltas(els, newDeltaState())) as { guest: Obj }[]).map((x) => x.guest["ref"] ?? x.guest["ifnet"]);
  t.deepEqual(sent, [
    { kind: 1, objectKind: 11, object: "cdce0 usbtask", holder: "cdce0.mcasttask", holderDesc: "multicast task", countAfter: 1, context: 3, device: "cdce0" },
    { kind: 3, ifname: "cdce0", device: "cdce0", context: 3 },
    { kind: 2, holder: "cdce0.mcasttask", $same: 1 },
    { kind: 9, ifname: "cdce0", $same: 1 },
    { kind: 1, objectKind: 11, object: "cdce0 usbtask", holder: "other", holderDesc: "multicast task", countAfter: 1, context: 3, device: "cdce0" },
    { kind: 4, ifname: "cdce0", device: "cdce0" },
  ]);
  t.deepEqual(asSent(els), before, "the model's objects are left whole");
});

test("enum fields go out as their numbers and open back to their names; a name or number the schema lacks goes out as it is", (t) => {
  const els: Obj[] = [
    { action: { id: 3, kind: "REMOVE_NIC", bus: "NIC_BUS_PCMCIA", nicId: "nic3" } },
    { guest: { ref: { kind: "ACQUIRE", objectKind: "OBJECT_KIND_OTHER", context: "EXEC_CONTEXT_THREAD", holder: "ACQUIRE" } } },
    { guest: { ifnet: { kind: 77, context: "EXEC_CONTEXT_SOFTINT", ifname: "cdce0" } } },
    { result: { actionId: 3, outcome: "NOT_IN_THE_SCHEMA" } },
    { verdict: { rule: "r", side: "GUEST", severity: "ERROR" }, guestCommand: { holdRefs: { kind: "OBJECT_KIND_IFNET" } } },
    { type: "verdict", verdict: { side: "HOST" } },
  ];
  const before = asSent(els);
  const text = stringifyWithDeltas(els, newDeltaState());
  t.deepEqual(asSent(els), before, "the model's objects keep their names");
  const sent = JSON.parse(text) as Obj[];
  t.deepEqual(sent[0], [4, 0, 2, 2, "nic3", 0, 2], "an action goes as protocol 7's array, its enums as numbers");
  t.deepEqual(sent.slice(1, 5).map((x) => Object.values(x)[0]), [
    { seq: -1, ref: { kind: 1, objectKind: 15, context: 3, holder: "ACQUIRE" } },
    { seq: -1, ifnet: { kind: 77, context: 2, ifname: "cdce0" } },
    // A name the schema lacks cannot be a slot's number: the result goes whole.
    { actionId: 3, outcome: "NOT_IN_THE_SCHEMA" },
    { rule: "r", side: 2, severity: 2 },
  ]);
  t.deepEqual(sent[4]!["guestCommand"], { holdRefs: { kind: "OBJECT_KIND_IFNET" } }, "only fields directly in a member are numbered");
  t.deepEqual(sent[5], { type: "verdict", verdict: { side: "HOST" } }, "a message with a type is left as it is");
  const opened: unknown[] = [];
  openBatch({ from: 0, messages: sent }, (_, x) => opened.push(x), (m) => opened.push(m));
  t.deepEqual(opened, before);
});

test("the elements are put back when stringify throws", (t) => {
  const rec = { tNs: 7_000, guest: { seq: 3, guestTimeNs: 7_000 } };
  const st = newDeltaState();
  st.t = 5_000;
  t.throws(() => stringifyWithDeltas([rec, { tNs: 9_000, bad: 1n }], st), { instanceOf: TypeError });
  t.deepEqual(rec, { tNs: 7_000, guest: { seq: 3, guestTimeNs: 7_000 } });
});
