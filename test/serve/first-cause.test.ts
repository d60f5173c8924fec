// #16 item 2 in the live view: the first violations (and the devices they
// name) are kept whatever comes after, and consequences are grouped under
// their cause.
import test from "ava";
import { LiveModel } from "../../src/serve/index.js";

function addNic(m: LiveModel, n: number, t: number): void {
  m.apply({ tNs: t, action: { id: n, kind: "ADD_NIC", nicId: `nic${n}`, nicKind: "usb-net", bus: "NIC_BUS_USB" } });
}

test("the first verdicts and first causes are kept past the window, with their devices", (t) => {
  const m = new LiveModel({ maxVerdicts: 50, keepFirst: 5, maxDevices: 20 });
  addNic(m, 1, 1);
  // The cause: a leak on nic1.
  m.applyVerdict({ rule: "host-remove-frees", severity: "ERROR", nicId: "nic1", device: "cdce0", message: "leaked" }, 2);
  for (let i = 2; i < 2000; i++) {
    addNic(m, i, i * 10);
    m.applyVerdict({ rule: "host-add-attaches", severity: "ERROR", nicId: `nic${i}`, message: "no attach", cause: { ordinal: 0, rule: "host-remove-frees" } }, i * 10 + 1);
  }
  // A later independent cause is kept too (one of the first 5 causes).
  m.applyVerdict({ rule: "no-ref-after-detach-begin", severity: "ERROR", nicId: "nic1999", message: "late ref" }, 30_000);
  t.is(m.counters.verdicts, 2000);
  t.is(m.verdicts.length, 50);
  t.deepEqual(m.verdicts.slice(0, 5).map((v) => v.n), [0, 1, 2, 3, 4], "the first verdicts stay first");
  t.is(m.verdicts[0]!.rule, "host-remove-frees");
  t.is(m.verdicts[0]!.consequences, 1998, "every consequence counted beside its cause, kept or not");
  t.is(m.verdicts[1]!.causeN, 0);
  t.is(m.verdicts.at(-1)!.rule, "no-ref-after-detach-begin");
  t.is(m.causesSeen, 2);
  t.true(m.devices.has("nic1"), "the device the first violation names is never dropped");
  t.true(m.devices.get("nic1")!.pinned);
  t.true(m.devices.size <= 20);
  // A snapshot keeps all of it.
  const copy = LiveModel.fromJSON(JSON.parse(JSON.stringify(m.toJSON())));
  t.deepEqual(copy.verdicts, m.verdicts);
  t.is(copy.causesSeen, 2);
});
