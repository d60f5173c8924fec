// QMP traffic as trace records: the text of an argument, result or event
// data is JSON.stringify's, empty objects (most replies) included.
import test from "ava";
import { recordToEvent } from "../../src/check/adapter.js";
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

test("a judged run's DEVICE_DELETED data is the device alone, as JSON.stringify writes it, and the checker reads the same device from it", (t) => {
  const ids = ["nic1", "usb-nic 7", 'q"uote', "back\\slash", "tab\there", "é-unicode", "\u{1f600}", "\ud800lone", "ctl\u0001"];
  for (const id of ids) {
    const data = { device: id, path: `/machine/peripheral/${id}` };
    const lean = observationRecord({ type: "qmp-event", tNs: 2, event: "DEVICE_DELETED", data, qemuTimeUs: 3 }, true)!;
    const full = observationRecord({ type: "qmp-event", tNs: 2, event: "DEVICE_DELETED", data, qemuTimeUs: 3 })!;
    t.is(lean.qmpEvent?.data, JSON.stringify({ device: id }), id);
    t.is(full.qmpEvent?.data, JSON.stringify(data), id);
    t.deepEqual(recordToEvent(lean, 4), recordToEvent(full, 4), id);
    t.is((recordToEvent(lean, 4) as { nicId?: string } | null)?.nicId, id);
  }
  // Without a device id (QEMU names only the path then), or another event: the whole data, as in full.
  for (const [event, data] of [["DEVICE_DELETED", { path: "/machine/peripheral-anon/device[3]" }], ["DEVICE_DELETED", { device: "" }], ["RESET", { guest: true }], ["DEVICE_DELETED", undefined]] as const) {
    const lean = observationRecord({ type: "qmp-event", tNs: 2, event, data, qemuTimeUs: 3 }, true);
    t.is(lean?.qmpEvent?.data, observationRecord({ type: "qmp-event", tNs: 2, event, data, qemuTimeUs: 3 })?.qmpEvent?.data);
  }
});
