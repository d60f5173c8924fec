// Protocol 7's long guest events (PROTOCOL.md, batched JSON): a guest device,
// ref or ifnet event that cannot go short goes as [10 + member, dt, key,
// ...slots] (src/serve/guest-long.ts), each field a 0 where it is as its
// key's last event in the batch has it, or else its member's last event of
// any key; page/batch.js makes it the record it was.
import test from "ava";
import { asSent, batchRoundTrip as roundTrip, type Obj } from "./batch-round-trip.js";
import { LONG } from "../../src/serve/page/batch.js";
import { plugstorm } from "../../src/gen/plugstorm.js";

/** Guest records 100 µs apart, seq stepping by one, the frame's time the record's: the form short and long events take. */
const frames = (events: Obj[]): Obj[] => events.map((member, i) => ({ tNs: 1_000_000_000 + 100_000 * i, guest: { seq: 1 + i, guestTimeNs: 1_000_000_000 + 100_000 * i, ...member } }));

const attach = { kind: "ATTACH_BEGIN", name: "cdce0", driver: "cdce", parent: "uhub0", bus: "BUS_USB", port: "uhub0 port 1", serial: "nic0", mac: "52:54:00:00:00:01", context: "EXEC_CONTEXT_THREAD", thread: "usb0", instance: 1, ifname: "cdce0" };
const acquire = { kind: "ACQUIRE", objectKind: "OBJECT_KIND_IFNET", object: "cdce0", holder: "h-nic0-ifnet.0", holderDesc: "socket", countAfter: 1, context: "EXEC_CONTEXT_THREAD", device: "cdce0" };

test("events a short form cannot carry go long, what they share with their key's or member's last event a 0; they open back to the records", (t) => {
  const els = frames([
    { device: attach },
    // A new NIC under the same name: its own serial, mac and instance.
    { device: { ...attach, serial: "nic5", mac: "52:54:00:00:00:06", instance: 2 } },
    // Detach flags: a field no short form has.
    { device: { ...attach, serial: "nic5", mac: "52:54:00:00:00:06", instance: 2, kind: "DETACH_BEGIN", flags: { force: true } } },
    { ref: acquire },
    // The first of its holder: what it shares with the last ref event of any holder.
    { ref: { ...acquire, holder: "h-nic0-ifnet.1", countAfter: 2 } },
    // A device of its own name, nothing before it of that name: the last device event's fields where they are the same.
    { device: { ...attach, name: "cdce1", port: "uhub0 port 2", ifname: "cdce1", serial: "nic6" } },
  ]);
  const { opened, messages } = roundTrip(els);
  t.deepEqual(opened, asSent(els));
  t.deepEqual(messages, [
    [11, 1_000_000_000, "cdce0", 1, "cdce", "uhub0", 1, "uhub0 port 1", "nic0", "52:54:00:00:00:01", 3, "usb0", 0, 0, 0, 1, "cdce0"],
    [11, 100_000, "cdce0", 0, 0, 0, 0, 0, "nic5", "52:54:00:00:00:06", 0, 0, 0, 0, 0, 2],
    [11, 100_000, "cdce0", 4, 0, 0, 0, 0, 0, 0, 0, 0, { force: true }],
    [12, 100_000, "h-nic0-ifnet.0", 1, 2, "cdce0", "socket", 1, 3, "cdce0"],
    [12, 100_000, "h-nic0-ifnet.1", 0, 0, 0, 0, 2],
    // kind (ATTACH_BEGIN) differs from the last device event's (DETACH_BEGIN), flags it lacks (null), instance it has as 1.
    [11, 100_000, "cdce1", 1, 0, 0, 0, "uhub0 port 2", "nic6", "52:54:00:00:00:01", 0, 0, null, 0, 0, 1, "cdce1"],
  ]);
});

test("a field a slot cannot carry, or a frame that does not step as most do, sends the event whole", (t) => {
  const whole = (e: Obj): boolean => !Array.isArray(roundTrip(frames([{ device: e }])).messages[0]);
  t.false(whole(attach));
  t.true(whole({ ...attach, kind: "NOT_A_NAME" }), "an enum name the schema lacks");
  t.true(whole({ ...attach, kind: "KIND_UNSPECIFIED" }), "an enum's 0, which a slot reads as the same");
  t.true(whole({ ...attach, instance: 0 }), "a number 0 the JSON form carries");
  t.true(whole({ ...attach, kind: 99 }), "an enum number the schema has no name for");
  const gap = frames([{ device: attach }]);
  (gap[0]!["guest"] as Obj)["seq"] = 7;
  t.false(Array.isArray(roundTrip(gap).messages[0]));
  for (const e of [{ ...attach, kind: "NOT_A_NAME" }, { ...attach, instance: 0 }]) {
    const els = frames([{ device: attach }, { device: e }, { device: { ...attach, kind: "FREE", serial: "nic9" } }]);
    const { opened, messages } = roundTrip(els, 1);
    t.deepEqual(opened, asSent(els));
    t.deepEqual((messages[2] as unknown[]).slice(0, 4), [11, 100_000, "cdce0", 8], "the whole event before it is its key's last");
  }
});

test("LONG names each member's fields in the schema's order, every field it has", (t) => {
  const TL = plugstorm.telemetry.v1;
  const types: Record<string, { fromObject(o: Obj): unknown; toObject(m: unknown, o: object): Obj }> = { device: TL.DeviceEvent, ref: TL.RefEvent, ifnet: TL.IfEvent };
  for (const l of LONG) {
    if (l === null) continue;
    t.deepEqual(l.fields, Object.keys(types[l.member]!.toObject(types[l.member]!.fromObject({}), { defaults: true })), l.member);
    t.true(l.fields.includes(l.key));
  }
});
