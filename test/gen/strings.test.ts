// The generated code's string reads (scripts/gen-proto.mjs) give back a
// string made before for the same short ASCII bytes (which JavaScript cannot
// observe: equal strings are one value). What can go wrong is the text: a
// slot holding another string, or a string the recent table should not take.
// Every string still decodes to what protobufjs's own read gives, and invalid
// UTF-8 is still rejected.
import test from "ava";
import { plugstorm } from "../../src/gen/plugstorm.js";

const DeviceEvent = plugstorm.telemetry.v1.DeviceEvent;
const Record = plugstorm.trace.v1.Record;

const nameOf = (bytes: Uint8Array): string => DeviceEvent.decode(bytes).name;
const withName = (name: string): Uint8Array => DeviceEvent.encode({ name }).finish();

test("strings that share a slot of the recent table are told apart by their bytes", (t) => {
  // 4096 names over the 1024 slots: many collide; each read gives its own text.
  const names = Array.from({ length: 4096 }, (_, i) => `nic${i}`);
  for (let round = 0; round < 2; round++) for (const n of names) t.is(nameOf(withName(n)), n);
});

test("long, empty and non-ASCII strings decode as protobufjs's read gives them", (t) => {
  for (const s of ["", "x", "a".repeat(32), "b".repeat(33), "z".repeat(200), "ure0é", "名前", "mixed ✓ text that is longer than thirty-two bytes"]) {
    t.is(nameOf(withName(s)), s, JSON.stringify(s));
  }
});

test("a string in a record nested in a frame reads the same", (t) => {
  const r = Record.decode(Record.encode({ tNs: 1, guest: { seq: 2, device: { name: "axe0", driver: "axe", thread: "usb0" } } }).finish());
  t.deepEqual([r.guest?.device?.name, r.guest?.device?.driver, r.guest?.device?.thread], ["axe0", "axe", "usb0"]);
});

test("invalid UTF-8 is still rejected, and a length past the end still throws", (t) => {
  // Field 2 (name), length 2: a lone continuation byte is not UTF-8.
  const bad = Uint8Array.of(0x12, 2, 0x41, 0x80);
  t.throws(() => DeviceEvent.decode(bad));
  const short = Uint8Array.of(0x12, 9, 0x41, 0x42);
  t.throws(() => DeviceEvent.decode(short));
});
