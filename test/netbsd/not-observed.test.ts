// A NetBSD guest without DTrace: its Hello lacks DETACH_PHASES and
// KERNEL_REFS, and it reports only what drvctl and the routing socket show
// (exactly the frame sequence agent-parse.test.ts gets from the agent's
// NetBSD code with "dtrace 0"). The model must check that clean and call the
// rules it cannot judge "not observed", never passed or violated.
import test from "ava";

import { Checker, RULES, type ModelEvent } from "../../src/model/index.js";

let i = 0;
function ev(e: Partial<ModelEvent> & { type: ModelEvent["type"] }, ms: number): ModelEvent {
  return { t: ms * 1e6, index: i++, ...e } as ModelEvent;
}
const dev = (kind: string, ms: number, extra: Record<string, unknown> = {}): ModelEvent =>
  ev({ type: "device", kind, name: "cdce0", driver: "cdce", parent: "uhub0", bus: "usb", port: "", serial: "nic1", mac: "52:54:00:12:34:01", context: "thread", thread: "", force: false, error: 0, objectKind: "unknown", instance: 1, ifname: "cdce0", ...extra } as Partial<ModelEvent> & { type: "device" }, ms);
const ifn = (kind: string, ms: number): ModelEvent => ev({ type: "ifnet", kind, ifname: "cdce0", device: "cdce0", accessor: "", context: "unknown" } as Partial<ModelEvent> & { type: "ifnet" }, ms);

test("drvctl + routing socket only: clean, and the DTrace-only rules are not observed", (t) => {
  i = 0;
  const events: ModelEvent[] = [
    ev({ type: "hello", os: "netbsd", agentVersion: "plugstorm-agent 0.1.0", capabilities: ["device-lifecycle", "ifnet", "agent-refs", "traffic", "detach-command", "modules"] }, 0),
    ev({ type: "host-add", actionId: 1, nicId: "nic1", nicKind: "usb-net", bus: "usb", mac: "52:54:00:12:34:01" }, 10),
    ev({ type: "host-result", actionId: 1, nicId: "nic1", outcome: "done", message: "" }, 11),
    dev("attach-begin", 400),
    dev("attach-end", 420),
    ifn("attach", 420),
    ev({ type: "host-remove", actionId: 2, nicId: "nic1" }, 1000),
    ev({ type: "host-result", actionId: 2, nicId: "nic1", outcome: "done", message: "" }, 1001),
    ifn("detach-begin", 1010),
    ifn("detach-end", 1010),
    dev("detach-end", 1012),
    ev({ type: "qmp-device-deleted", nicId: "nic1" }, 1052),
    ev({ type: "heartbeat", framesSent: 9, framesDropped: 0, eventsLost: 0 }, 2000),
  ];
  const c = new Checker({ profile: "netbsd" });
  const live = events.flatMap((e) => c.push(e));
  const res = c.finish(3000e6);
  const bad = [...live, ...res.verdicts].filter((v) => v.severity === "error" || v.severity === "fatal");
  t.deepEqual(bad.map((v) => `${v.rule}: ${v.message}`), [], "no violations from completions-only telemetry");
  const status = new Map(res.summary.rules.map((r) => [r.id, r.status]));
  const needsMissing = RULES.filter((r) => r.profiles.includes("netbsd") && r.needs.some((n) => n === "detach-phases" || n === "kernel-refs" || n === "free" || n === "context"));
  t.true(needsMissing.length >= 5, `${needsMissing.length} rules need what this guest lacks`);
  for (const r of needsMissing) t.is(status.get(r.id), "not-observed", r.id);
  for (const id of ["detach-completes", "drain-completes-empty", "single-detach-in-progress"]) t.true(res.summary.notObserved.includes(id), id);
  t.true([...status.values()].includes("passed"), "what drvctl and the routing socket show is still judged");
});

test("with DTrace: the phases the NetBSD agent reports for a USB unplug check clean against the netbsd model", (t) => {
  i = 0;
  const events: ModelEvent[] = [
    ev({ type: "hello", os: "netbsd", agentVersion: "plugstorm-agent 0.1.0", capabilities: ["device-lifecycle", "ifnet", "agent-refs", "traffic", "detach-command", "modules", "detach-phases", "kernel-refs", "free"] }, 0),
    ev({ type: "host-add", actionId: 1, nicId: "nic1", nicKind: "usb-net", bus: "usb", mac: "52:54:00:12:34:01" }, 10),
    ev({ type: "host-result", actionId: 1, nicId: "nic1", outcome: "done", message: "" }, 11),
    dev("attach-begin", 400),
    dev("attach-end", 420),
    ifn("attach", 420),
    ev({ type: "host-remove", actionId: 2, nicId: "nic1" }, 1000),
    ev({ type: "host-result", actionId: 2, nicId: "nic1", outcome: "done", message: "" }, 1001),
    // The order agent-parse.test.ts gets from nb_events.c for config_detach(DETACH_FORCE) from usb_disconnect_port.
    dev("detach-begin", 1002, { force: true, thread: "usb event thread" }),
    ifn("detach-begin", 1003),
    dev("drain-begin", 1004, { objectKind: "ifnet" }),
    dev("drain-end", 1005, { objectKind: "ifnet" }),
    ifn("detach-end", 1006),
    dev("drain-begin", 1007, { objectKind: "device" }),
    dev("drain-end", 1008, { objectKind: "device" }),
    dev("detach-end", 1010, { force: true }),
    dev("free", 1010),
    ev({ type: "qmp-device-deleted", nicId: "nic1" }, 1052),
    ev({ type: "heartbeat", framesSent: 16, framesDropped: 0, eventsLost: 0 }, 2000),
  ];
  const c = new Checker({ profile: "netbsd" });
  const live = events.flatMap((e) => c.push(e));
  const res = c.finish(3000e6);
  const bad = [...live, ...res.verdicts].filter((v) => v.severity === "error" || v.severity === "fatal");
  t.deepEqual(bad.map((v) => `${v.rule}: ${v.message}`), []);
  const status = new Map(res.summary.rules.map((r) => [r.id, r.status]));
  t.is(status.get("detach-completes"), "passed");
  t.is(status.get("detach-end-after-if-detach"), "passed");
});
