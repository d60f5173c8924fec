// The live model's bound on devices: past maxDevices the oldest added of the
// finished devices is forgotten, whenever it finished; live and pinned ones stay.
import test from "ava";
import { LiveModel } from "../../src/serve/index.js";

let actionId = 0;

function addNic(m: LiveModel, n: number, t: number): void {
  const id = ++actionId;
  m.apply({ tNs: t, action: { id, kind: "ADD_NIC", nicId: `nic${n}`, nicKind: "usb-net", bus: "NIC_BUS_USB" } });
  m.apply({ tNs: t, result: { actionId: id, outcome: "DONE", nicId: `nic${n}` } });
}

/** Hot-removes nic n: its host side ends "removed", so it counts as finished. */
function removeNic(m: LiveModel, n: number, t: number): void {
  const id = ++actionId;
  m.apply({ tNs: t, action: { id, kind: "REMOVE_NIC", nicId: `nic${n}` } });
  m.apply({ tNs: t, result: { actionId: id, outcome: "DONE", nicId: `nic${n}` } });
}

test("the oldest added finished device is forgotten first, whenever it finished", (t) => {
  const m = new LiveModel({ maxDevices: 3 });
  addNic(m, 1, 1);
  addNic(m, 2, 2);
  addNic(m, 3, 3);
  removeNic(m, 2, 4);
  removeNic(m, 1, 5);
  addNic(m, 4, 6);
  t.deepEqual([...m.devices.keys()], ["nic2", "nic3", "nic4"], "nic1, added first, goes though nic2 finished first");
  addNic(m, 5, 7);
  t.deepEqual([...m.devices.keys()], ["nic3", "nic4", "nic5"]);
  t.is(m.counters.devicesDropped, 2);
});

test("a device live again is not taken for finished; a pinned one never goes; thousands of drops", (t) => {
  const m = new LiveModel({ maxDevices: 10, keepFirst: 1 });
  addNic(m, 0, 0);
  m.applyVerdict({ rule: "host-remove-frees", severity: "ERROR", nicId: "nic0", message: "leaked" }, 0);
  removeNic(m, 0, 1);
  addNic(m, 1, 2);
  removeNic(m, 1, 3);
  addNic(m, 1, 4); // the same NIC id added again: its device is live again
  for (let n = 2; n < 5000; n++) {
    addNic(m, n, n * 10);
    removeNic(m, n, n * 10 + 1);
  }
  t.deepEqual([...m.devices.keys()], ["nic0", "nic1", ...Array.from({ length: 8 }, (_, i) => `nic${4992 + i}`)]);
  t.true(m.devices.get("nic0")!.pinned);
  // A snapshot's model goes on dropping in the same order.
  const copy = LiveModel.fromJSON(JSON.parse(JSON.stringify(m.toJSON())));
  for (const x of [m, copy]) {
    removeNic(x, 1, 60_000);
    addNic(x, 6000, 60_010);
  }
  t.deepEqual([...copy.devices.keys()], [...m.devices.keys()]);
  t.false(m.devices.has("nic1"));
});
