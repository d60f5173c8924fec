// The generated code's oneofs (scripts/gen-proto.mjs): its setter replaces
// protobufjs's, which deleted every other member whether there or not, and
// decoding a fresh message tracks the member it set last in a local instead
// of calling the setter (a message merged into keeps the setter). Setting a
// member still takes every other member of its oneof away, in decode (the
// last member on the wire wins, a repeated message field merges into the one
// before) and when set by hand.
import test from "ava";
import { plugstorm } from "../../src/gen/plugstorm.js";

const Record = plugstorm.trace.v1.Record;
const Frame = plugstorm.telemetry.v1.Frame;

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};

test("decoding two members of a record's body keeps the last one only", (t) => {
  const a = Record.encode({ tNs: 5, action: { id: 1 } }).finish();
  const b = Record.encode({ result: { actionId: 1 } }).finish();
  const r = Record.decode(concat(a, b));
  t.is(r.body, "result");
  t.false(Object.hasOwn(r, "action"));
  t.is(r.result?.actionId, 1);
  t.is(Number(r.tNs), 5);
  const back = Record.decode(concat(b, a));
  t.is(back.body, "action");
  t.false(Object.hasOwn(back, "result"));
});

test("a decoded record holds its one member and no other member of its oneof", (t) => {
  const r = Record.decode(Record.encode({ tNs: 1, guest: { seq: 3, heartbeat: {} } }).finish());
  t.deepEqual(Object.keys(r).sort(), ["guest", "tNs"]);
  t.deepEqual(Object.keys(r.guest!).sort(), ["heartbeat", "seq"]);
  t.is(r.guest!.body, "heartbeat");
});

test("setting a oneof by hand deletes the member held before, and only that", (t) => {
  const f = Frame.create({ seq: 9, heartbeat: {} });
  f.hello = Frame.decode(Frame.encode({ hello: { agentVersion: "x" } }).finish()).hello!;
  f.body = "hello";
  t.false(Object.hasOwn(f, "heartbeat"));
  t.is(f.body, "hello");
  t.is(f.seq, 9);
  t.is(Frame.decode(Frame.encode(f).finish()).hello?.agentVersion, "x");
});

test("the same member twice merges, and a merged message's own oneof keeps protobuf's rule", (t) => {
  const same = Record.decode(concat(Record.encode({ action: { id: 1 } }).finish(), Record.encode({ action: { nicId: "nic1" } }).finish()));
  t.is(same.body, "action");
  t.like(same.action, { id: 1, nicId: "nic1" });
  // The second guest frame merges into the first (decode with a target): its seq stays, its body is replaced.
  const merged = Record.decode(
    concat(Record.encode({ guest: { seq: 7, device: { name: "cdce0" } } }).finish(), Record.encode({ guest: { ref: { object: "cdce0" } } }).finish()),
  );
  t.is(merged.body, "guest");
  t.is(merged.guest?.seq, 7);
  t.is(merged.guest?.body, "ref");
  t.false(Object.hasOwn(merged.guest!, "device"));
  t.is(merged.guest?.ref?.object, "cdce0");
});

test("of three members on the wire the last wins, in a record and in a telemetry frame", (t) => {
  const r = Record.decode(concat(Record.encode({ result: { actionId: 1 } }).finish(), Record.encode({ mark: { name: "m" } }).finish(), Record.encode({ action: { id: 2 } }).finish()));
  t.is(r.body, "action");
  t.false(Object.hasOwn(r, "result"));
  t.false(Object.hasOwn(r, "mark"));
  const f = Frame.decode(concat(Frame.encode({ seq: 1, device: { name: "x" } }).finish(), Frame.encode({ heartbeat: {} }).finish()));
  t.is(f.body, "heartbeat");
  t.false(Object.hasOwn(f, "device"));
  t.is(f.seq, 1);
});
