// QMP traffic as trace records: the text of an argument, result or event
// data is JSON.stringify's, empty objects (most replies) included.
import test from "ava";
import { observationRecord } from "../../src/storm/observations.js";

function replyText(result: unknown): string | null | undefined {
  return observationRecord({ type: "qmp-reply", tNs: 5, id: "q1", ok: true, result })?.qmpReply?.result;
}

test("a reply's result is JSON.stringify's text of it, whatever the object", (t) => {
  const withToJSON = Object.defineProperty({}, "toJSON", { value: () => "made", enumerable: false });
  const hiddenOnly = Object.defineProperty({}, "secret", { value: 1, enumerable: false });
  const cases: unknown[] = [{}, { a: 1 }, [], [1], Object.create(null), withToJSON, hiddenOnly, { [Symbol("s")]: 1 }, new Date(0), new Map()];
  for (const c of cases) t.is(replyText(c), JSON.stringify(c), String(JSON.stringify(c)));
  // No result at all is written as an empty object.
  t.is(replyText(undefined), "{}");
});

test("a command's arguments and an event's data are JSON text; a judged run leaves the arguments out", (t) => {
  const args = { driver: "usb-net", id: "nic1", bus: "xhci.0", port: "1" };
  t.deepEqual(observationRecord({ type: "qmp-command", tNs: 1, id: "q1", command: "device_add", arguments: args })?.qmpCommand, { id: "q1", command: "device_add", arguments: JSON.stringify(args) });
  t.deepEqual(observationRecord({ type: "qmp-command", tNs: 1, id: "q2", command: "query-status", arguments: {} })?.qmpCommand?.arguments, "{}");
  t.deepEqual(observationRecord({ type: "qmp-command", tNs: 1, id: "q1", command: "device_add", arguments: args }, true)?.qmpCommand, { id: "q1", command: "device_add" });
  t.is(observationRecord({ type: "qmp-event", tNs: 2, event: "DEVICE_DELETED", data: { device: "nic1" }, qemuTimeUs: 3 })?.qmpEvent?.data, '{"device":"nic1"}');
  t.is(observationRecord({ type: "qmp-event", tNs: 2, event: "RESET", data: undefined, qemuTimeUs: 3 })?.qmpEvent?.data, "{}");
});
