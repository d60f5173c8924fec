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

/** A probe that fails on a malformed device, reported the way the Linux agent reports it (named after the USB interface, joined by serial), then the NIC's removal. */
function failedProbe(profile: "linux" | "netbsd", serial: string): { rule: string; message: string }[] {
  const c = new Checker({ profile });
  let i = 0;
  const at = (ms: number) => ({ t: ms * 1e6, index: ++i });
  const dev = { name: "3-1:1.0", driver: "", parent: "usb3", bus: "usb", port: "3-1", serial, mac: "", context: "thread", thread: "plugstorm-agent", force: false, objectKind: "unknown", instance: 0, ifname: "3-1:1.0" };
  const ev: ModelEvent[] = [
    { type: "hello", ...at(0), os: profile, capabilities: ["device-lifecycle", "detach-phases", "free"], agentVersion: "t" } as ModelEvent,
    { type: "host-add", ...at(10), actionId: 1, nicId: "n1", nicKind: "redir-cdce", bus: "usb", mac: "52:54:00:00:00:01", deviceFault: "malformed no-endpoints" } as ModelEvent,
    { type: "device", ...at(500), kind: "attach-begin", ...dev, error: 0 } as ModelEvent,
    { type: "device", ...at(520), kind: "attach-end", ...dev, error: 22 } as ModelEvent,
    { type: "host-remove", ...at(1500), actionId: 2, nicId: "n1" } as ModelEvent,
    { type: "qmp-device-deleted", ...at(1550), nicId: "n1" } as ModelEvent,
  ];
  for (let ms = 2000; ms <= 90_000; ms += 1000) ev.push({ type: "heartbeat", ...at(ms), framesSent: 0, framesDropped: 0, eventsLost: 0 } as ModelEvent);
  const out: { rule: string; message: string }[] = [];
  for (const e of ev) for (const v of c.push(e)) out.push({ rule: v.rule, message: v.message });
  for (const v of c.finish().verdicts) if (!out.some((o) => o.rule === v.rule && o.message === v.message)) out.push({ rule: v.rule, message: v.message });
  return out;
}

test("Linux: a failed probe joined by serial is the NIC's failed attach (attach-succeeds) and nothing else: usbnet_probe freed what it made, so the removal expects no detach", (t) => {
  t.deepEqual(failedProbe("linux", "n1").map((v) => `${v.rule}: ${v.message}`), ["attach-succeeds: attach of 3-1:1.0 failed with error 22"]);
});

test("Linux: the same failed probe without a serial cannot be joined: a device the host never added (the false alarm of an agent that did not name failed probes)", (t) => {
  const rules = failedProbe("linux", "").map((v) => v.rule);
  t.true(rules.includes("guest-device-added-by-host"), rules.join(", "));
});

test("NetBSD: a failed attach keeps the device (config_attach): the removal still expects its detach", (t) => {
  const rules = failedProbe("netbsd", "n1").map((v) => v.rule);
  t.true(rules.includes("attach-succeeds"));
  t.true(rules.includes("host-remove-detaches"), rules.join(", "));
});
