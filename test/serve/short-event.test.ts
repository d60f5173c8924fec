// Protocol 6's short events (PROTOCOL.md, batched JSON): a guest device, ref
// or ifnet event that repeats its key's last event in the batch goes as
// [member, kind, key, dt, ...own] (src/serve/short-event.ts), and
// page/batch.js makes it the record it was.
import test from "ava";
import { asSent, batchRoundTrip as roundTrip, type Obj } from "./batch-round-trip.js";
import fc from "fast-check";
import { SAME_DEVICE_FIELDS, SAME_IFNET_FIELDS, SAME_REF_FIELDS, SHORT } from "../../src/serve/page/batch.js";

/** Whether an element is protocol 6's short event ([member, kind, key, ...], member 1 to 3). */
const isShort = (m: unknown): boolean => Array.isArray(m) && (m[0] as number) <= 3;

/** Guest records at t, seq stepping by one, the frame's time the record's: the form short events take. */
function frames(events: Obj[], t0 = 1_000_000_000, seq0 = 40): Obj[] {
  return events.map((member, i) => ({ tNs: t0 + 100_000 * Math.floor(i / 2), guest: { seq: seq0 + i, guestTimeNs: t0 + 100_000 * Math.floor(i / 2), ...member } }));
}

const attach = { kind: "ATTACH_BEGIN", name: "cdce0", driver: "cdce", parent: "uhub0", bus: "BUS_USB", port: "uhub0 port 1", serial: "nic0", mac: "52:54:00:00:00:01", context: "EXEC_CONTEXT_THREAD", thread: "usb0", instance: 1, ifname: "cdce0" };
const acquire = { kind: "ACQUIRE", objectKind: "OBJECT_KIND_USB_TASK", object: "cdce0 usbtask", holder: "cdce0.mcasttask", holderDesc: "multicast task", countAfter: 1, context: "EXEC_CONTEXT_THREAD", device: "cdce0" };
const ifAttach = { kind: "ATTACH", ifname: "cdce0", device: "cdce0", context: "EXEC_CONTEXT_THREAD" };

test("an event that repeats its key's last event goes as [member, kind, key, dt, ...own], trailing zeros left off; it opens back to the record", (t) => {
  const els = frames([
    { device: attach },
    { ifnet: ifAttach },
    { device: { ...attach, kind: "ATTACH_END" } },
    { ifnet: { ...ifAttach, kind: "DEPARTURE" } },
    { device: { ...attach, kind: "DRAIN_BEGIN", objectKind: "OBJECT_KIND_IFNET" } },
    { device: { ...attach, kind: "DETACH_STEP", step: "DETACH_STEP_STOP" } },
    { ref: acquire },
    { ref: { ...acquire, kind: "RELEASE", countAfter: undefined } },
    { ref: { ...acquire, countAfter: -2 } },
    { ifnet: { ...ifAttach, kind: "ACCESS", accessor: "bpf" } },
  ]);
  const before = asSent(els);
  const { opened, messages } = roundTrip(els);
  t.deepEqual(opened, before);
  t.deepEqual(asSent(els), before, "the model's objects are left as they were");
  t.deepEqual(messages.slice(2), [
    [1, 2, "cdce0", 100_000],
    [3, 9, "cdce0"],
    [1, 6, "cdce0", 100_000, 2],
    [1, 12, "cdce0", 0, 0, 2],
    // The first of its holder: protocol 7's long form, every field in a slot ([10 + member, dt, key, ...]).
    [12, 100_000, "cdce0.mcasttask", 1, 11, "cdce0 usbtask", "multicast task", 1, 3, "cdce0"],
    [2, 2, "cdce0.mcasttask"],
    [2, 1, "cdce0.mcasttask", 100_000, -2],
    [3, 8, "cdce0", 0, "bpf"],
  ]);
});

test("each field a short event leaves out must be its key's last event's: one that differs, or a field only the whole form carries, sends the event whole", (t) => {
  const cases: [string, Obj, readonly string[], string][] = [
    ["device", attach, SAME_DEVICE_FIELDS, "name"],
    ["ref", acquire, SAME_REF_FIELDS, "holder"],
    ["ifnet", ifAttach, SAME_IFNET_FIELDS, "ifname"],
  ];
  for (const [member, first, same, key] of cases) {
    t.deepEqual(SHORT.find((s) => s?.member === member)?.same, same);
    // Not short: whole, or protocol 7's long form ([10 + member, ...]).
    const whole = (next: Obj): boolean => !isShort(roundTrip(frames([{ [member]: first }, { [member]: next }])).messages[1]);
    t.false(whole({ ...first }), `${member}: the same event again goes short`);
    t.true(whole({ ...first, [key]: "other" }), `${member}: another key has no last event`);
    for (const f of same) {
      t.true(whole({ ...first, [f]: "changed" }), `${member}.${f} changed`);
      t.true(whole({ ...first, [f]: undefined }), `${member}.${f} left out where the last event had it`);
    }
  }
  const device = (extra: Obj): boolean => !isShort(roundTrip(frames([{ device: attach }, { device: { ...attach, ...extra } }])).messages[1]);
  t.true(device({ flags: { force: true } }));
  t.true(device({ error: 16 }));
  t.true(device({ deferred: true }));
  t.true(device({ kind: "NOT_A_NAME" }), "a name the tables lack stays a name, in the whole form");
  t.false(device({ kind: 99 }), "a number the tables lack stays a number, short or whole");
  t.true(!isShort(roundTrip(frames([{ ifnet: ifAttach }, { ifnet: { ...ifAttach, kind: "COUNTERS", txPackets: 4 } }])).messages[1]));
  // Not stepping as most frames do: whole, with its differences.
  const twoAttach = frames([{ device: attach }, { device: attach }]);
  const gap = structuredClone(twoAttach);
  (gap[1]!["guest"] as Obj)["seq"] = 42;
  const offTime = structuredClone(twoAttach);
  (offTime[1]!["guest"] as Obj)["guestTimeNs"] = 1;
  for (const els of [gap, offTime]) {
    const { opened, messages } = roundTrip(els);
    t.false(Array.isArray(messages[1]));
    t.deepEqual(opened, asSent(els));
  }
});

test("keys with quotes, backslashes, control characters and non-ASCII open back to exactly themselves", (t) => {
  const names = ['a"b', "back\\slash", "tab\there", "\u0001\u001f", "ütf-8 é", "日本", "😀", "\ud800 lone", "\u2028\u2029", "</script>"];
  const els = frames(names.flatMap((name) => [{ device: { ...attach, name } }, { device: { ...attach, name, kind: "FREE" } }, { ifnet: { ...ifAttach, ifname: name } }, { ifnet: { ...ifAttach, ifname: name, kind: "DOWN", accessor: name } }]));
  const { opened, messages } = roundTrip(els, 7);
  t.deepEqual(opened, asSent(els));
  const shortKeys = messages.filter(Array.isArray).map((a) => a[2] as string);
  t.deepEqual([...new Set(shortKeys)].sort(), [...names].sort(), "every name went as a short event's key");
});

/** An event's field: mostly its first value (so events repeat), now and then another, or left out. */
const pick = (first: string | number, ...others: (string | number)[]): fc.Arbitrary<string | number | undefined> =>
  fc.oneof({ arbitrary: fc.constant(first), weight: 12 }, { arbitrary: fc.constantFrom(undefined, ...others), weight: 1 });
/** A field now and then there. */
const rare = <T>(x: T): fc.Arbitrary<T | undefined> => fc.oneof({ arbitrary: fc.constant(undefined), weight: 9 }, { arbitrary: fc.constant(x), weight: 1 });
const member = fc.oneof(
  fc.record({
    device: fc.record({
      kind: fc.constantFrom("ATTACH_BEGIN", "FREE", "NOT_A_NAME", 99, undefined),
      name: fc.constantFrom("cdce0", 'q"uote', "né"),
      driver: pick("cdce", "axe"),
      port: pick("uhub0 port 1", "uhub0 port 2"),
      context: pick("EXEC_CONTEXT_THREAD", 7),
      instance: pick(1, 2),
      objectKind: fc.constantFrom("OBJECT_KIND_IFNET", "OBJECT_KIND_OTHER", 12, undefined),
      step: fc.constantFrom("DETACH_STEP_STOP", undefined),
      flags: rare({ force: true }),
      deferred: rare(true),
    }),
  }),
  fc.record({
    ref: fc.record({
      kind: fc.constantFrom("ACQUIRE", "RELEASE"),
      holder: fc.constantFrom("h\\1", "h2"),
      object: pick("cdce0", "cdce1"),
      countAfter: fc.constantFrom(1, 2, -1, undefined),
      context: pick("EXEC_CONTEXT_INTERRUPT", "EXEC_CONTEXT_THREAD"),
    }),
  }),
  fc.record({
    ifnet: fc.record({
      kind: fc.constantFrom("ATTACH", "DOWN"),
      ifname: fc.constantFrom("cdce0", "ne0"),
      device: pick("cdce0", "ne0"),
      accessor: fc.constantFrom("bpf", "\u0007", undefined),
      txPackets: rare(5),
    }),
  }),
);
/** A guest record stepping from the one before as most do, or not (a seq gap, a frame time of its own), or another record between. */
const step = fc.record({
  dt: fc.constantFrom(0, 0, 0, 100_000, -3),
  seqGap: fc.constantFrom(0, 0, 0, 0, 0, 1),
  ownTime: fc.constantFrom(0, 0, 0, 0, 0, 5),
  member: fc.option(member, { nil: undefined, freq: 6 }),
});

test("any run of guest events, chunked anywhere, opens back to the records it was made of, short, long or whole", (t) => {
  const shorts = [0, 0, 0, 0];
  const longs = [0, 0, 0, 0];
  fc.assert(
    fc.property(fc.array(step, { minLength: 30, maxLength: 80 }), fc.integer({ min: 1, max: 40 }), (steps, size) => {
      let at = 5_000;
      let seq = 0;
      const els: Obj[] = steps.map((s) => {
        at += s.dt;
        if (s.member === undefined) return { tNs: at, qmpEvent: { event: "DEVICE_DELETED", qemuTimeUs: at } };
        seq += 1 + s.seqGap;
        return { tNs: at, guest: { seq, guestTimeNs: at + s.ownTime, ...s.member } };
      });
      const before = asSent(els);
      const { opened, messages } = roundTrip(els, size);
      for (const m of messages) if (Array.isArray(m) && (m[0] as number) <= 3) shorts[m[0] as number]!++;
      for (const m of messages) if (Array.isArray(m) && (m[0] as number) > 10) longs[(m[0] as number) - 10]!++;
      t.deepEqual(opened, before);
      t.deepEqual(asSent(els), before);
    }),
  );
  t.true(shorts.slice(1).every((n) => n > 50), `short device, ref, ifnet events over the runs: ${shorts.slice(1).join(", ")}`);
  t.true(longs.slice(1).every((n) => n > 50), `long device, ref, ifnet events (protocol 7) over the runs: ${longs.slice(1).join(", ")}`);
});
