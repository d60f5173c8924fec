// host-add-attaches on emulated NICs plugged with a device-side fault: no
// driver probing is not observed (the guest has nothing to report), but an
// attach that began on the faulty device and never returned is still a hang.
import test from "ava";
import { Checker, type ModelEvent } from "../../src/model/index.js";

function run(deviceFault: string | undefined, attachBegins: boolean): string[] {
  const c = new Checker({ profile: "linux" });
  let i = 0;
  const at = (ms: number) => ({ t: ms * 1e6, index: ++i });
  const ev: ModelEvent[] = [
    { type: "hello", ...at(0), os: "linux", capabilities: ["device-lifecycle"], agentVersion: "t" } as ModelEvent,
    { type: "host-add", ...at(10), actionId: 1, nicId: "n1", nicKind: "redir-cdce", bus: "usb", mac: "52:54:00:00:00:01", ...(deviceFault ? { deviceFault } : {}) } as ModelEvent,
  ];
  if (attachBegins) {
    ev.push({ type: "device", ...at(20), kind: "attach-begin", name: "", driver: "cdc_ether", parent: "", bus: "usb", port: "", serial: "n1", mac: "52:54:00:00:00:01", context: "thread", thread: "kworker", force: false, error: 0, objectKind: "unknown", instance: 0, ifname: "" } as ModelEvent);
  }
  // Time passes beyond the default 30 s attach deadline, with the guest talking.
  for (let ms = 1000; ms <= 90_000; ms += 1000) ev.push({ type: "heartbeat", ...at(ms), framesSent: 0, framesDropped: 0, eventsLost: 0 } as ModelEvent);
  const seen: string[] = [];
  for (const e of ev) for (const v of c.push(e)) seen.push(v.rule);
  for (const v of c.finish().verdicts) if (!seen.includes(v.rule)) seen.push(v.rule);
  return seen.filter((r) => r === "host-add-attaches");
}

test("a clean add that never attaches is a violation; one plugged malformed, with no probe, is not observed", (t) => {
  t.deepEqual(run(undefined, false), ["host-add-attaches"]);
  t.deepEqual(run("malformed bad-class", false), []);
  t.deepEqual(run("disconnect-after-control 3", false), []);
});

test("an attach that began on a faulty device and never returned is still a hang", (t) => {
  t.deepEqual(run("malformed total-length", true), ["host-add-attaches"]);
});
