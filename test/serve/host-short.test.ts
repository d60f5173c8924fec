// Protocol 7's short host records (PROTOCOL.md, batched JSON): an action,
// result, QMP command, reply or event, or a clock sample goes as
// [member, dt, ...slots] (src/serve/host-short.ts), what it repeats of its
// member's last record in the batch a 0, and page/batch.js makes it the
// record it was.
import test from "ava";
import { asSent, batchRoundTrip as roundTrip, type Obj } from "./batch-round-trip.js";
import fc from "fast-check";
import { stepped as serverStepped } from "../../src/serve/host-short.js";
import { HOST, stepped } from "../../src/serve/page/batch.js";

/** One hot-plug cycle's host records as the runner writes them (a default storm's, in the JSON form). */
function cycle(n: number, t0: number): Obj[] {
  const nic = `nic${n}`;
  const mac = `52:54:00:00:00:${(n + 1).toString(16).padStart(2, "0")}`;
  const args = JSON.stringify({ driver: "usb-net", id: nic, bus: "usbc.0", port: "2", mac, serial: nic });
  return [
    { tNs: t0, action: { id: 2 * n + 1, kind: "ADD_NIC", nicId: nic, nicKind: "usb-net", bus: "NIC_BUS_USB" } },
    { tNs: t0, qmpCommand: { id: `plugstorm-${2 * n + 1}`, command: "device_add", arguments: args } },
    { tNs: t0 + 1_200_000, qmpReply: { id: `plugstorm-${2 * n + 1}`, ok: true, result: "{}" } },
    { tNs: t0 + 1_200_000, result: { actionId: 2 * n + 1, outcome: "DONE", sentNs: t0, replyNs: t0 + 1_200_000, nicId: nic } },
    { tNs: t0 + 1_300_000, clock: { hostSendNs: t0 + 1_280_000, hostRecvNs: t0 + 1_300_000, guestTimeNs: t0 + 1_300_000, offsetNs: 10_000, errorNs: 10_000 } },
    { tNs: t0 + 9_000_000, action: { id: 2 * n + 2, kind: "REMOVE_NIC", nicId: nic, nicKind: "usb-net", bus: "NIC_BUS_USB", port: "usbc.0:2", mac } },
    { tNs: t0 + 9_000_000, qmpCommand: { id: `plugstorm-${2 * n + 2}`, command: "device_del", arguments: JSON.stringify({ id: nic }) } },
    { tNs: t0 + 9_500_000, qmpReply: { id: `plugstorm-${2 * n + 2}`, ok: true, result: "{}" } },
    { tNs: t0 + 20_000_000, qmpEvent: { event: "DEVICE_DELETED", data: JSON.stringify({ device: nic, path: `/machine/peripheral/${nic}` }), qemuTimeUs: 1_700_000_000_000_000 + t0 / 1000 } },
    { tNs: t0 + 20_000_000, result: { actionId: 2 * n + 2, outcome: "DONE", sentNs: t0 + 9_000_000, replyNs: t0 + 9_500_000, eventNs: t0 + 20_000_000, nicId: nic } },
  ];
}

test("a storm's host records go as [member, dt, ...slots], what repeats their member's last record a 0, trailing zeros left off; they open back to the records", (t) => {
  const els = [...cycle(0, 1_000_000_000), ...cycle(1, 1_100_000_000)];
  const { opened, messages } = roundTrip(els);
  t.deepEqual(opened, asSent(els));
  t.deepEqual(messages.slice(10), [
    // Id one past the last action's, the fields it shares with that one left out; an add has no port or mac where the remove had them.
    [4, 80_000_000, 0, 1, "nic1", 0, 0, null, null],
    // Id stepped from the last command's, its arguments its own.
    [6, 0, 0, "device_add", '{"driver":"usb-net","id":"nic1","bus":"usbc.0","port":"2","mac":"52:54:00:00:00:02","serial":"nic1"}'],
    // Id the last command's, the rest the last reply's.
    [7, 1_200_000],
    // Times from the record's own: replyNs is it (0), no eventNs where the last result had one.
    [5, 0, 0, 0, 0, -1_200_000, 0, null, "nic1"],
    [9, 100_000, -20_000],
    [4, 7_700_000, 0, 2, 0, 0, 0, "usbc.0:2", "52:54:00:00:00:02"],
    [6, 0, 0, "device_del", '{"id":"nic1"}'],
    [7, 500_000],
    [8, 10_500_000, 0, '{"device":"nic1","path":"/machine/peripheral/nic1"}', 100_000],
    // eventNs is the record's time (0), and nicId the last result's: both trailing zeros.
    [5, 0, 0, 0, 0, -11_000_000, -10_500_000],
  ]);
  const chars = (xs: unknown[]): number => JSON.stringify(xs).length;
  t.true(chars(messages.slice(10)) < 0.45 * chars(asSent(els.slice(10)) as unknown[]), `${chars(messages.slice(10))} characters, against ${chars(asSent(els.slice(10)) as unknown[])} whole`);
});

test("a field a slot cannot carry sends the record whole, and it is still its member's last record", (t) => {
  const els: Obj[] = [
    { tNs: 5, action: { id: 1, kind: "ADD_NIC", nicId: "nic0", bus: "NIC_BUS_USB" } },
    // An enum name the schema lacks, or the name of its 0 (which a slot would read as "the same").
    { tNs: 6, action: { id: 2, kind: "NOT_IN_THE_SCHEMA", nicId: "nic0", bus: "NIC_BUS_USB" } },
    { tNs: 7, action: { id: 3, kind: "KIND_UNSPECIFIED", nicId: "nic0", bus: "NIC_BUS_USB" } },
    { tNs: 8, result: { actionId: 3, outcome: 99 } },
    { tNs: 9, action: { id: 4, kind: "ADD_NIC", nicId: "nic0", bus: "NIC_BUS_USB" } },
  ];
  const { opened, messages } = roundTrip(els);
  t.deepEqual(opened, asSent(els));
  t.deepEqual(messages.map((m) => (Array.isArray(m) ? "short" : "whole")), ["short", "whole", "whole", "whole", "short"]);
  t.deepEqual(messages[4], [4, 1, 0, 1], "the id steps from the whole action before it, and kind differs from that one's");
});

test("zeros, empty strings and false that the JSON form carries, and fields not there, open back as they were", (t) => {
  const els: Obj[] = [
    { result: { actionId: 0, outcome: "DONE", message: "", sentNs: 0, replyNs: 0, nicId: "" } },
    { tNs: 3, result: { outcome: "DONE", message: "", replyNs: 3 } },
    { tNs: 3, qmpReply: { ok: false, result: "" } },
    { tNs: 3, qmpReply: { id: "", ok: true } },
    { tNs: 4, clock: { hostSendNs: 0, offsetNs: -5, errorNs: 0 } },
    { tNs: 4, clock: { offsetNs: -5 } },
    { qmpEvent: { event: "", qemuTimeUs: 0 } },
    { qmpEvent: {} },
    { qmpCommand: {} },
    { action: {} },
  ];
  const { opened, messages } = roundTrip(els, 3);
  t.deepEqual(opened, asSent(els));
  t.true(messages.every(Array.isArray), "all short");
});

test("QMP ids: a command's is 0 only when it steps the last command's trailing number, a reply's only when it is the last command's", (t) => {
  for (const [s, next] of [["plugstorm-9", "plugstorm-10"], ["x-007", "x-8"], ["42", "43"], ["plugstorm-", undefined], ["", undefined], [7, undefined]] as const) {
    t.is(stepped(s), next, String(s));
    t.is(serverStepped(s), next, String(s));
  }
  const els: Obj[] = [
    { qmpReply: { id: "plugstorm-1", ok: true } },
    { qmpCommand: { id: "plugstorm-1", command: "a" } },
    { qmpCommand: { id: "plugstorm-2", command: "a" } },
    { qmpCommand: { id: "plugstorm-02", command: "a" } },
    { qmpCommand: { id: "q", command: "a" } },
    { qmpReply: { id: "plugstorm-02", ok: true } },
    { qmpReply: { id: "q", ok: true } },
    { qmpCommand: { command: "a" } },
    { qmpReply: { ok: true } },
    { qmpReply: { id: "q", ok: true } },
  ];
  const { opened, messages } = roundTrip(els);
  t.deepEqual(opened, asSent(els));
  t.deepEqual(
    messages.map((m) => ((m as unknown[]).length > 2 ? (m as unknown[])[2] : 0)),
    ["plugstorm-1", "plugstorm-1", 0, "plugstorm-02", "q", "plugstorm-02", 0, null, null, "q"],
  );
});

test("strings with quotes, backslashes, control characters and non-ASCII open back to exactly themselves", (t) => {
  const names = ['a"b', "back\\slash", "tab\there", "\u0001\u001f", "ütf-8 é", "日本", "😀", "\ud800 lone", "\u2028\u2029", "</script>", "0", "null"];
  const els: Obj[] = names.flatMap((s, i) => [
    { tNs: i + 1, action: { id: i, kind: "ADD_NIC", nicId: s, nicKind: s, port: s, mac: s, args: s } },
    { tNs: i + 1, qmpCommand: { id: `${s}${i}`, command: s, arguments: s } },
    { tNs: i + 1, qmpReply: { id: `${s}${i}`, result: s, errorClass: s, errorDesc: s } },
    { tNs: i + 1, qmpEvent: { event: s, data: s } },
    { tNs: i + 1, result: { actionId: i, message: s, nicId: s } },
  ]);
  const { opened, messages } = roundTrip(els, 7);
  t.deepEqual(opened, asSent(els));
  t.true(messages.every(Array.isArray), "all short");
});

/** A field: mostly its first value (so records repeat), now and then another, or left out. */
const pick = <T>(first: T, ...others: T[]): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(first), weight: 8 }, { arbitrary: fc.constantFrom<T | undefined>(undefined, ...others), weight: 2 });
const n = fc.oneof({ arbitrary: fc.integer({ min: -5, max: 5 }), weight: 1 }, { arbitrary: fc.integer({ min: -1e12, max: 4e15 }), weight: 1 }, { arbitrary: fc.constant(undefined), weight: 1 });
const host = fc.oneof(
  fc.record({ action: fc.record({ id: n, kind: pick("ADD_NIC", "REMOVE_NIC", "NOT_A_NAME", "KIND_UNSPECIFIED"), nicId: pick("nic1", "nic2"), nicKind: pick("usb-net", ""), bus: pick("NIC_BUS_USB", "NIC_BUS_PCMCIA"), port: pick("p", ""), mac: pick("m"), args: pick("{}") }, { requiredKeys: [] }) }),
  fc.record({ result: fc.record({ actionId: n, outcome: pick<string | number>("DONE", "FAILED", 99), message: pick("", "why"), sentNs: n, replyNs: n, eventNs: n, nicId: pick("nic1", "nic2") }, { requiredKeys: [] }) }),
  fc.record({ qmpCommand: fc.record({ id: fc.constantFrom("plugstorm-", "q"), command: pick("device_add", "device_del"), arguments: pick("{}", '{"id":"x"}') }, { requiredKeys: [] }) }),
  fc.record({ qmpReply: fc.record({ id: fc.constantFrom("plugstorm-", "q", "last"), ok: pick(true, false), result: pick("{}", ""), errorClass: pick("GenericError"), errorDesc: pick("no") }, { requiredKeys: [] }) }),
  fc.record({ qmpEvent: fc.record({ event: pick("DEVICE_DELETED", "X"), data: pick("{}"), qemuTimeUs: n }, { requiredKeys: [] }) }),
  fc.record({ clock: fc.record({ hostSendNs: n, hostRecvNs: n, guestTimeNs: n, offsetNs: pick(10_000, -3, 0), errorNs: pick(10_000, 0) }, { requiredKeys: [] }) }),
  fc.record({ guest: fc.record({ seq: fc.integer({ min: 1, max: 3 }), ack: fc.record({ id: fc.nat(9) }) }) }),
  fc.record({ mark: fc.record({ name: fc.constant("m") }) }),
);

test("any run of host records, chunked anywhere, opens back to the records it was made of, short or whole", (t) => {
  const shorts = new Map<number, number>();
  fc.assert(
    fc.property(fc.array(fc.tuple(host, fc.constantFrom(0, 0, 7, 1_000_000, -3), fc.nat(4)), { minLength: 20, maxLength: 80 }), fc.integer({ min: 1, max: 40 }), (steps, size) => {
      let at = 5_000;
      let cmd = 0;
      let lastCmd: string | undefined;
      const els: Obj[] = steps.map(([member, dt, k]) => {
        at += dt;
        const x: Obj = structuredClone(member);
        // QMP ids as the runner makes them (a counter), now and then another.
        const c = x["qmpCommand"] as Obj | undefined;
        if (c && c["id"] === "plugstorm-") c["id"] = lastCmd = `plugstorm-${(cmd += k === 0 ? 2 : 1)}`;
        const r = x["qmpReply"] as Obj | undefined;
        if (r && r["id"] === "last") r["id"] = lastCmd;
        else if (r && r["id"] === "plugstorm-") r["id"] = `plugstorm-${cmd + k}`;
        return at === 0 ? x : { tNs: at, ...x };
      });
      const before = asSent(els);
      const { opened, messages } = roundTrip(els, size);
      for (const m of messages) if (Array.isArray(m)) shorts.set(m[0] as number, (shorts.get(m[0] as number) ?? 0) + 1);
      t.deepEqual(opened, before);
      t.deepEqual(asSent(els), before, "the model's records are left as they were");
    }),
  );
  t.true([4, 5, 6, 7, 8, 9].every((m) => (shorts.get(m) ?? 0) > 50), `short records by member: ${[...shorts].join(" ")}`);
});

test("HOST names each member's fields in the schema's order, every field it has", async (t) => {
  const { plugstorm } = await import("../../src/gen/plugstorm.js");
  const T = plugstorm.trace.v1;
  const types: Record<string, { fromObject(o: Obj): unknown; toObject(m: unknown, o: object): Obj }> = { action: T.HostAction, result: T.HostResult, qmpCommand: T.QmpCommand, qmpReply: T.QmpReply, qmpEvent: T.QmpEvent, clock: T.ClockSample };
  for (const h of HOST) {
    if (h === null) continue;
    const all = Object.keys(types[h.member]!.toObject(types[h.member]!.fromObject({}), { defaults: true }));
    t.deepEqual(h.fields.map(([f]) => f), all, h.member);
  }
});
