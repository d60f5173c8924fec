// device-idle-after-detach: the emulated device's transfer counts, taken when
// the guest has finished detaching a NIC, must not grow afterwards.
import test from "ava";
import { Checker, type ModelEvent } from "../../src/model/index.js";
import { recordToEvent } from "../../src/check/adapter.js";
import { plugstorm } from "../../src/gen/plugstorm.js";

type Profile = "linux" | "netbsd";

function checker(profile: Profile) {
  const c = new Checker({ profile });
  let i = 0;
  const at = (ms: number) => ({ t: ms * 1e6, index: ++i });
  const seen: Array<{ rule: string; message: string }> = [];
  const push = (e: ModelEvent): void => {
    for (const v of c.push(e)) seen.push({ rule: v.rule, message: v.message });
  };
  const dev = (ms: number, kind: string, name: string, serial: string, error = 0): ModelEvent =>
    ({ type: "device", ...at(ms), kind, name, driver: "cdce", parent: "", bus: "usb", port: "", serial, mac: "", context: "thread", thread: "usb0", force: false, error, objectKind: "unknown", instance: 0, ifname: "", step: "unknown", deferred: false }) as ModelEvent;
  const counts = (ms: number, nicId: string, bulkIn: number, bulkOut: number, interrupt: number): ModelEvent => ({ type: "device-side", ...at(ms), nicId, bulkIn, bulkOut, interrupt });
  push({ type: "hello", ...at(0), os: profile, capabilities: ["device-lifecycle", "detach-phases"], agentVersion: "t" } as ModelEvent);
  const idle = (): Array<{ rule: string; message: string }> => seen.filter((v) => v.rule === "device-idle-after-detach");
  const report = () => c.finish().summary.rules.find((r) => r.id === "device-idle-after-detach")!;
  return { push, dev, counts, idle, report };
}

test("linux: counts that stay put after the free pass; the rule is judged", (t) => {
  const k = checker("linux");
  k.push(k.dev(10, "attach-begin", "usb0", "nic1"));
  k.push(k.counts(20, "nic1", 40, 12, 1)); // while attached: not judged
  k.push(k.dev(30, "free", "usb0", ""));
  k.push(k.counts(31, "nic1", 44, 12, 1)); // the count taken at the free: the base
  k.push(k.counts(90, "nic1", 44, 12, 1)); // at close: nothing new
  t.deepEqual(k.idle(), []);
  const r = k.report();
  t.is(r.status, "passed");
  t.is(r.checks, 1);
});

test("linux: a bulk OUT transfer after the free is a violation naming the NIC and what grew", (t) => {
  const k = checker("linux");
  k.push(k.dev(10, "attach-begin", "usb0", "nic1"));
  k.push(k.dev(30, "free", "usb0", "nic1"));
  k.push(k.counts(31, "nic1", 44, 12, 1));
  k.push(k.counts(90, "nic1", 44, 14, 1));
  k.push(k.counts(95, "nic1", 44, 15, 1));
  t.deepEqual(k.idle().map((v) => v.message), ["nic1 (usb0): 2 bulk OUT transfer(s) submitted to the device after the guest had finished detaching it"]);
});

test("netbsd: joined by name when detach-end carries no serial; a vetoed detach is not judged", (t) => {
  const k = checker("netbsd");
  k.push(k.dev(10, "attach-begin", "cdce0", "nic1"));
  k.push(k.dev(11, "attach-end", "cdce0", "nic1"));
  k.push(k.dev(20, "detach-begin", "cdce0", ""));
  k.push(k.dev(21, "detach-end", "cdce0", "", 16));
  k.push(k.counts(22, "nic1", 5, 5, 1));
  k.push(k.counts(40, "nic1", 9, 5, 1));
  t.deepEqual(k.idle(), [], "EBUSY: the driver is still attached, its transfers are its own");
  k.push(k.dev(50, "detach-begin", "cdce0", ""));
  k.push(k.dev(51, "detach-end", "cdce0", ""));
  k.push(k.counts(52, "nic1", 9, 5, 1));
  k.push(k.counts(60, "nic1", 9, 5, 2));
  t.deepEqual(k.idle().map((v) => v.message), ["nic1 (cdce0): 1 interrupt transfer(s) submitted to the device after the guest had finished detaching it"]);
});

test("a NIC re-attached under the same id starts over; without a device side the rule is not exercised", (t) => {
  const k = checker("linux");
  k.push(k.dev(10, "attach-begin", "usb0", "nic1"));
  k.push(k.dev(30, "free", "usb0", "nic1"));
  k.push(k.counts(31, "nic1", 1, 1, 0));
  k.push(k.dev(40, "attach-begin", "usb0", "nic1"));
  k.push(k.counts(50, "nic1", 30, 30, 1));
  t.deepEqual(k.idle(), []);
  const none = checker("linux");
  none.push(none.dev(10, "attach-begin", "usb0", "nic1"));
  none.push(none.dev(30, "free", "usb0", "nic1"));
  t.is(none.report().status, "not-exercised");
});

test("a DeviceSide TRANSFERS trace record becomes the model's device-side event; other device-side records carry nothing", (t) => {
  const T = plugstorm.trace.v1;
  const rec = T.Record.decode(T.Record.encode({ tNs: 5e6, device: { kind: T.DeviceSide.Kind.TRANSFERS, nicId: "nic3", bulkIn: 7, bulkOut: 2, interrupt: 1 } }).finish());
  t.deepEqual(recordToEvent(rec, 4), { type: "device-side", t: 5e6, index: 4, nicId: "nic3", bulkIn: 7, bulkOut: 2, interrupt: 1 });
  const fault = T.Record.decode(T.Record.encode({ tNs: 5e6, device: { kind: T.DeviceSide.Kind.FAULT, nicId: "nic3", fault: "stall" } }).finish());
  t.is(recordToEvent(fault, 5), null);
});

test("NICs share no state: each detached NIC's base is its own first count, and a verdict on one leaves the next judged", (t) => {
  const k = checker("linux");
  k.push(k.dev(10, "attach-begin", "usb0", "nic1"));
  k.push(k.dev(20, "free", "usb0", "nic1"));
  k.push(k.counts(21, "nic1", 10, 10, 1)); // nic1's base
  k.push(k.dev(30, "attach-begin", "usb1", "nic2"));
  k.push(k.counts(31, "nic2", 50, 50, 5)); // attached: not judged, no base
  k.push(k.dev(40, "free", "usb1", "nic2"));
  k.push(k.counts(41, "nic2", 60, 60, 6)); // nic2's base: not judged against nic1's
  k.push(k.counts(50, "nic1", 11, 10, 1)); // nic1 grew
  k.push(k.counts(51, "nic1", 12, 10, 1)); // one verdict per detach
  k.push(k.counts(60, "nic2", 60, 60, 6)); // nic2 did not
  k.push(k.dev(70, "attach-begin", "usb2", "nic3"));
  k.push(k.dev(80, "free", "usb2", "nic3"));
  k.push(k.counts(81, "nic3", 1, 1, 1));
  k.push(k.counts(90, "nic3", 1, 1, 2)); // nic3 grew: judged, as nic1's verdict touched nothing shared
  t.deepEqual(k.idle().map((v) => v.message), [
    "nic1 (usb0): 1 bulk IN transfer(s) submitted to the device after the guest had finished detaching it",
    "nic3 (usb2): 1 interrupt transfer(s) submitted to the device after the guest had finished detaching it",
  ]);
});
