import test from "ava";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { TimelineCollector } from "../../src/report/index.js";
import { decodeFrame } from "../../src/telemetry/frame-decoder.js";
import { RULES, syntheticRecords } from "./fixture.js";

const tr = plugstorm.trace.v1;
const tm = plugstorm.telemetry.v1;
const ms = 1_000_000;

function collect(options?: ConstructorParameters<typeof TimelineCollector>[0]) {
  const c = new TimelineCollector(options);
  for (const r of syntheticRecords()) c.push(r);
  return c.timeline();
}

test("guest devices join their QEMU id by serial, host side and guest side on one lane", (t) => {
  const tl = collect();
  t.deepEqual(tl.lanes.map((l) => [l.key, l.devices, l.driver, l.nicKind]), [
    ["nic1", ["cdce0"], "cdce", "usb-net"],
    ["nic2", ["cdce1"], "cdce", "usb-net"],
  ]);
  const nic1 = tl.lanes[0]!;
  t.deepEqual(
    nic1.host.map((s) => [s.phase, s.startNs, s.endNs]),
    [
      ["device_add", 1.1 * ms, 3 * ms],
      ["device_del", 51.1 * ms, 52 * ms],
      ["removal", 52 * ms, 101 * ms],
    ],
    "QMP records make the bars; the HostResult that follows does not duplicate them",
  );
  t.deepEqual(
    nic1.guest.map((s) => [s.phase, s.startNs, s.endNs, s.note]),
    [
      ["attach", 11 * ms, 15 * ms, undefined],
      ["detach", 61 * ms, 71 * ms, "flags force"],
      ["drain", 62 * ms, 67 * ms, "ifnet"],
      ["drain", 68 * ms, 70 * ms, "device"],
    ],
  );
  t.deepEqual(nic1.points.map((p) => [p.kind, p.tNs]), [["free", 72 * ms], ["device_deleted", 101 * ms]]);
  t.is(tl.startNs, 1 * ms);
  t.is(tl.endNs, 210 * ms);
});

test("references held are a step plot summed over the device's objects", (t) => {
  const tl = collect();
  t.deepEqual(tl.lanes[0]!.refs, [[21 * ms, 1], [23 * ms, 2], [31 * ms, 1], [41 * ms, 0]]);
  t.deepEqual(tl.lanes[1]!.refs, [[130 * ms, 1], [132 * ms, 2], [140 * ms, 1]], "nic2 still holds the bpf reference at free");
});

test("without count_after, references count +1/-1 per event", (t) => {
  const c = new TimelineCollector();
  c.push({ tNs: 1, guest: { seq: 1, device: { kind: tm.DeviceEvent.Kind.ATTACH_BEGIN, name: "ne0", serial: "nic7", driver: "ne" } } });
  for (const [tNs, kind] of [[2, tm.RefEvent.Kind.ACQUIRE], [3, tm.RefEvent.Kind.ACQUIRE], [4, tm.RefEvent.Kind.ACQUIRE_FAILED], [5, tm.RefEvent.Kind.RELEASE]] as const) {
    c.push({ tNs, guest: { seq: tNs, ref: { kind, objectKind: tm.ObjectKind.OBJECT_KIND_DEVICE, object: "ne0", holder: "h", countAfter: -1 } } });
  }
  t.deepEqual(c.timeline().lanes[0]!.refs, [[2, 1], [3, 2], [5, 1]]);
});

test("a device that comes back to life after its free (late references, a new attach) is drawn on as before", (t) => {
  const c = new TimelineCollector();
  const dev = (tNs: number, kind: number, extra: object = {}) => c.push({ tNs, guest: { seq: tNs, device: { kind, name: "ne0", serial: "nic7", driver: "ne", ...extra } } });
  const ref = (tNs: number, kind: number, countAfter: number) =>
    c.push({ tNs, guest: { seq: tNs, ref: { kind, objectKind: tm.ObjectKind.OBJECT_KIND_DEVICE, object: "ne0", holder: "h", countAfter } } });
  dev(1, tm.DeviceEvent.Kind.ATTACH_BEGIN);
  dev(2, tm.DeviceEvent.Kind.ATTACH_END);
  ref(3, tm.RefEvent.Kind.ACQUIRE, 1);
  ref(4, tm.RefEvent.Kind.RELEASE, 0);
  dev(5, tm.DeviceEvent.Kind.DETACH_BEGIN);
  dev(6, tm.DeviceEvent.Kind.FREE);
  // After the free (the lane is finished and compacted): a late reference without count_after counts from 0, and a new attach opens a bar.
  ref(7, tm.RefEvent.Kind.ACQUIRE, -1);
  dev(8, tm.DeviceEvent.Kind.ATTACH_BEGIN);
  dev(9, tm.DeviceEvent.Kind.ATTACH_END);
  ref(10, tm.RefEvent.Kind.RELEASE, -1);
  const lane = c.timeline().lanes[0]!;
  t.deepEqual(lane.refs, [[3, 1], [4, 0], [7, 1], [10, 0]]);
  t.deepEqual(lane.guest.map((s) => [s.phase, s.startNs, s.endNs]), [["attach", 1, 2], ["detach", 5, 6], ["attach", 8, 9]]);
  t.deepEqual(lane.points.map((p) => [p.kind, p.tNs]), [["free", 6]]);
});

test("verdict records mark the device's lane with rule, severity and holders; channel loss is kept", (t) => {
  const tl = collect();
  t.deepEqual(tl.lanes[0]!.violations, []);
  t.deepEqual(tl.lanes[1]!.violations.map((v) => [v.rule, v.severity, v.holders, v.tNs]), [[RULES[0], "fatal", ["bpf5"], 181 * ms]]);
  t.deepEqual(tl.channel, [{ tNs: 105 * ms, kind: "seq_gap", amount: 2 }]);
});

test("a verdict naming only the guest device finds the lane through the name; unknown devices go to the run row", (t) => {
  const c = new TimelineCollector();
  c.push({ tNs: 1, guest: { seq: 1, device: { kind: tm.DeviceEvent.Kind.ATTACH_BEGIN, name: "cdce3", serial: "nic3" } } });
  c.addVerdict({ rule: "r1", severity: "error", device: "cdce3", message: "m" }, 5);
  c.addVerdict({ rule: "r2", severity: tr.Verdict.Severity.WARNING, message: "no device" }, 6);
  const tl = c.timeline();
  t.deepEqual(tl.lanes[0]!.violations.map((v) => [v.rule, v.severity, v.tNs]), [["r1", "error", 5]]);
  t.deepEqual(tl.runViolations.map((v) => [v.rule, v.severity]), [["r2", "warning"]]);
});

test("a guest device the host never added gets its own lane", (t) => {
  const c = new TimelineCollector();
  c.push({ tNs: 1, guest: { seq: 1, device: { kind: tm.DeviceEvent.Kind.ATTACH_BEGIN, name: "ure0", driver: "ure" } } });
  c.push({ tNs: 2, guest: { seq: 2, device: { kind: tm.DeviceEvent.Kind.ATTACH_END, name: "ure0" } } });
  const tl = c.timeline();
  t.deepEqual(tl.lanes.map((l) => [l.key, l.nicId, l.guest.length]), [["guest:ure0", undefined, 1]]);
});

test("refused device_del and a never-finalised removal show as failed bars", (t) => {
  const c = new TimelineCollector();
  c.push({ tNs: 0, qmpCommand: { id: "a", command: "device_add", arguments: '{"id":"nic1","driver":"usb-net"}' } });
  c.push({ tNs: 1, qmpReply: { id: "a", ok: true } });
  c.push({ tNs: 10, action: { id: 2, kind: tr.HostAction.Kind.REMOVE_NIC, nicId: "nic1" } });
  c.push({ tNs: 11, qmpCommand: { id: "b", command: "device_del", arguments: '{"id":"nic1"}' } });
  c.push({ tNs: 12, qmpReply: { id: "b", ok: false, errorClass: "GenericError", errorDesc: "Device 'nic1' not found" } });
  c.push({ tNs: 13, result: { actionId: 2, outcome: tr.HostResult.Outcome.REFUSED, nicId: "nic1", message: "not found" } });
  c.push({ tNs: 20, action: { id: 3, kind: tr.HostAction.Kind.REMOVE_NIC, nicId: "nic1" } });
  c.push({ tNs: 21, qmpCommand: { id: "c", command: "device_del", arguments: '{"id":"nic1"}' } });
  c.push({ tNs: 22, qmpReply: { id: "c", ok: true } });
  c.push({ tNs: 90, result: { actionId: 3, outcome: tr.HostResult.Outcome.NEVER_FINALISED, nicId: "nic1", sentNs: 21, replyNs: 22 } });
  const host = c.timeline().lanes[0]!.host;
  t.deepEqual(host.map((s) => [s.phase, s.startNs, s.endNs ?? null, !!s.failed]), [
    ["device_add", 0, 1, false],
    ["device_del", 11, 12, true],
    ["device_del", 21, 22, false],
    ["removal", 22, null, true],
  ]);
  t.regex(host[1]!.note!, /GenericError: Device 'nic1' not found|refused/);
  t.regex(host[3]!.note!, /never finalised/);
});

test("HostResults alone (no QMP records) still draw the host side", (t) => {
  const c = new TimelineCollector();
  c.push({ tNs: 0, action: { id: 1, kind: tr.HostAction.Kind.ADD_NIC, nicId: "nic4", nicKind: "pcmcia-ne2000", bus: tr.NicBus.NIC_BUS_PCMCIA } });
  c.push({ tNs: 5, result: { actionId: 1, outcome: tr.HostResult.Outcome.DONE, nicId: "nic4", sentNs: 1, replyNs: 5 } });
  c.push({ tNs: 50, action: { id: 2, kind: tr.HostAction.Kind.REMOVE_NIC, nicId: "nic4" } });
  c.push({ tNs: 80, result: { actionId: 2, outcome: tr.HostResult.Outcome.DONE, nicId: "nic4", sentNs: 51, replyNs: 53, eventNs: 80 } });
  const lane = c.timeline().lanes[0]!;
  t.is(lane.bus, "pcmcia");
  t.deepEqual(lane.host.map((s) => [s.phase, s.startNs, s.endNs]), [["device_add", 1, 5], ["device_del", 51, 53], ["removal", 53, 80]]);
  t.deepEqual(lane.points, [{ kind: "device_deleted", tNs: 80 }]);
});

test("memory stays bounded: extra devices are aggregated, lanes with violations are kept", (t) => {
  const c = new TimelineCollector({ maxLanes: 3, maxRefStepsPerLane: 10 });
  let seq = 0;
  for (let n = 0; n < 20; n++) {
    const base = n * 1000;
    const name = `cdce${n}`;
    c.push({ tNs: base, qmpCommand: { id: `a${n}`, command: "device_add", arguments: JSON.stringify({ id: `nic${n}`, driver: "usb-net" }) } });
    c.push({ tNs: base + 1, qmpReply: { id: `a${n}`, ok: true } });
    c.push({ tNs: base + 2, guest: { seq: ++seq, device: { kind: tm.DeviceEvent.Kind.ATTACH_BEGIN, name, serial: `nic${n}`, driver: "cdce" } } });
    for (let k = 0; k < 30; k++) {
      c.push({ tNs: base + 10 + k, guest: { seq: ++seq, ref: { kind: tm.RefEvent.Kind.ACQUIRE, objectKind: tm.ObjectKind.OBJECT_KIND_DEVICE, object: name, holder: `h${k}`, countAfter: k + 1 } } });
    }
    if (n === 2) c.push({ tNs: base + 50, verdict: { rule: "r", severity: tr.Verdict.Severity.ERROR, nicId: `nic${n}`, message: "bad" } });
    c.push({ tNs: base + 60, guest: { seq: ++seq, device: { kind: tm.DeviceEvent.Kind.FREE, name } } });
  }
  const tl = c.timeline();
  t.is(tl.devicesSeen, 20);
  t.deepEqual(tl.lanes.map((l) => l.key), ["nic2", "nic18", "nic19"]);
  t.deepEqual(tl.aggregated, [{ group: "usb-net", devices: 17, violations: 0, hostSpans: 17, guestSpans: 17 }]);
  for (const l of tl.lanes) {
    t.true(l.refs.length <= 10);
    t.is(l.refs[l.refs.length - 1]![1], 30, "the most recent steps are the ones kept");
    t.is(typeof l.truncatedBeforeNs, "number");
  }
  // A late event about an aggregated device does not resurrect a partial lane.
  c.push({ tNs: 99_999, verdict: { rule: "late", nicId: "nic0", message: "use after free" } });
  const after = c.timeline();
  t.deepEqual(after.lanes.map((l) => l.key), ["nic2", "nic18", "nic19"]);
  t.is(after.aggregated[0]!.violations, 1);
});

test("latency percentiles per driver and phase come from the trace", (t) => {
  const tl = collect();
  const row = (driver: string, phase: string) => tl.latency.find((l) => l.driver === driver && l.phase === phase);
  t.like(row("cdce", "attach"), { n: 2, p50Ns: 4 * ms, maxNs: 4 * ms });
  t.like(row("cdce", "detach"), { n: 2, p50Ns: 10 * ms });
  t.like(row("cdce", "drain:ifnet"), { n: 2, p50Ns: 5 * ms });
  t.like(row("usb-net", "device_add"), { n: 2, p50Ns: 1.9 * ms });
  t.like(row("usb-net", "removal"), { n: 2, p50Ns: 49.9 * ms });
  t.like(row("usb-net", "add→attached"), { n: 2, p50Ns: 13.9 * ms });
  t.like(row("usb-net", "del→freed"), { n: 2, p50Ns: 20.9 * ms });
});

test("bad options are refused with the option's name", (t) => {
  t.throws(() => new TimelineCollector({ maxLanes: 0 }), { message: /maxLanes must be a positive integer, got 0/ });
  t.throws(() => new TimelineCollector({ latencyReservoir: 1.5 }), { message: /latencyReservoir/ });
});

test("guest phases are timed on the guest clock: frames that arrive together still give the phase's real length", (t) => {
  const c = new TimelineCollector();
  const Dev = tm.DeviceEvent.Kind;
  const frame = (seq: number, guestMs: number, device: plugstorm.telemetry.v1.IDeviceEvent) =>
    tr.Record.create({ tNs: 500 * ms, guest: tm.Frame.create({ seq, guestTimeNs: guestMs * ms, device }) });
  const base = { name: "usb0", driver: "cdc_ether", serial: "nic1" };
  c.push(frame(1, 1000, { ...base, kind: Dev.ATTACH_BEGIN }));
  c.push(frame(2, 1007, { ...base, kind: Dev.ATTACH_END }));
  c.push(frame(3, 2000, { ...base, kind: Dev.DETACH_BEGIN }));
  c.push(frame(4, 2012, { ...base, kind: Dev.FREE }));
  const row = (phase: string) => c.timeline().latency.find((l) => l.driver === "cdc_ether" && l.phase === phase);
  t.like(row("attach"), { n: 1, p50Ns: 7 * ms });
  t.like(row("detach"), { n: 1, p50Ns: 12 * ms });
});

test("the lanes of the first violations are kept however many violating lanes follow (#16)", (t) => {
  const K = tr.HostAction.Kind;
  const c = new TimelineCollector({ maxLanes: 16 });
  let tNs = 0;
  for (let i = 1; i <= 400; i++) {
    c.push({ tNs: (tNs += 1000), action: { id: i, kind: K.ADD_NIC, nicId: `nic${i}`, nicKind: "usb-net" } });
    c.addVerdict({ rule: i === 1 ? "host-remove-frees" : "host-add-attaches", severity: "error", nicId: `nic${i}`, message: "x", ...(i > 1 ? { cause: { ordinal: 0, rule: "host-remove-frees" } } : {}) }, (tNs += 10));
  }
  const tl = c.timeline();
  t.is(tl.lanes.length, 16);
  const keys = tl.lanes.map((l) => l.key);
  t.true(keys.includes("nic1"), keys.join(","));
  // The first four violations' lanes (16 / 4 pinned) are all kept.
  for (const k of ["nic1", "nic2", "nic3", "nic4"]) t.true(keys.includes(k), k);
  t.is(tl.lanes.find((l) => l.key === "nic1")!.firstViolation, 0);
});

test("a bar's keys come out in the order they were first set, as report.json has always written them", (t) => {
  const c = new TimelineCollector();
  const Dev = tm.DeviceEvent.Kind;
  const dev = (tNs: number, kind: number, extra: object = {}) => c.push({ tNs, guest: { seq: tNs, device: { kind, name: "cdce0", serial: "nic1", driver: "cdce", ...extra } } });
  c.push({ tNs: 1, qmpCommand: { id: "a", command: "device_add", arguments: '{"id":"nic1"}' } });
  c.push({ tNs: 2, qmpReply: { id: "a", ok: false, errorClass: "GenericError" } });
  dev(3, Dev.ATTACH_BEGIN);
  dev(4, Dev.ATTACH_END, { error: 19 });
  dev(5, Dev.DETACH_BEGIN, { flags: { force: true } });
  dev(6, Dev.DETACH_END, { error: 16 });
  dev(7, Dev.DETACH_BEGIN);
  dev(8, Dev.DETACH_BEGIN);
  c.push({ tNs: 9, action: { id: 1, kind: tr.HostAction.Kind.REMOVE_NIC, nicId: "nic1" } });
  c.push({ tNs: 10, result: { actionId: 1, outcome: tr.HostResult.Outcome.REFUSED, nicId: "nic1", sentNs: 9, replyNs: 10, message: "busy" } });
  const lane = c.timeline().lanes[0]!;
  t.is(
    JSON.stringify(lane.host),
    '[{"phase":"device_add","startNs":1,"endNs":2,"failed":true,"note":"GenericError"},' +
      '{"phase":"device_del","startNs":9,"endNs":10,"note":"refused: busy","failed":true}]',
  );
  t.is(
    JSON.stringify(lane.guest),
    '[{"phase":"attach","startNs":3,"endNs":4,"failed":true,"note":"error ENODEV (19)"},' +
      '{"phase":"detach","startNs":5,"note":"flags force, error EBUSY (16)","endNs":6,"failed":true},' +
      '{"phase":"detach","startNs":7,"note":"never ended"},' +
      '{"phase":"detach","startNs":8}]',
  );
});

test("a lane over its bar budget keeps its newest bars; a dropped bar still open is timed when it ends and leaves nothing behind", (t) => {
  const c = new TimelineCollector({ maxSpansPerLane: 2 });
  const Dev = tm.DeviceEvent.Kind;
  const dev = (tNs: number, kind: number, extra: object = {}) => c.push({ tNs, guest: { seq: tNs, device: { kind, name: "ne0", serial: "nic7", driver: "ne", ...extra } } });
  dev(10, Dev.ATTACH_BEGIN);
  dev(11, Dev.DRAIN_BEGIN, { objectKind: tm.ObjectKind.OBJECT_KIND_IFNET });
  dev(12, Dev.DRAIN_END, { objectKind: tm.ObjectKind.OBJECT_KIND_IFNET });
  // The attach bar was dropped by the third bar while still open: its end is still timed from its start.
  dev(13, Dev.DRAIN_BEGIN, { objectKind: tm.ObjectKind.OBJECT_KIND_DEVICE });
  dev(30, Dev.ATTACH_END, { error: 5 });
  // Bars made after the dropped one is given back carry none of what was written to it (the first reuses it).
  dev(40, Dev.DETACH_BEGIN);
  dev(45, Dev.DETACH_BEGIN);
  dev(46, Dev.FREE);
  const tl = c.timeline();
  const lane = tl.lanes[0]!;
  t.deepEqual(lane.guest, [
    { phase: "detach", startNs: 40, note: "never ended" },
    { phase: "detach", startNs: 45, endNs: 46 },
  ]);
  t.is(lane.truncatedBeforeNs, 13);
  t.like(tl.latency.find((l) => l.driver === "ne" && l.phase === "attach"), { n: 1, maxNs: 20 });
});

test("a folded lane's row, reused by the next device, starts empty", (t) => {
  const c = new TimelineCollector({ maxLanes: 1 });
  const Dev = tm.DeviceEvent.Kind;
  for (const [n, base] of [[1, 0], [2, 100]] as const) {
    const dev = (tNs: number, kind: number) => c.push({ tNs: base + tNs, guest: { seq: base + tNs, device: { kind, name: `ne${n}`, serial: `nic${n}`, driver: "ne" } } });
    dev(1, Dev.ATTACH_BEGIN);
    if (n === 1) {
      dev(2, Dev.DRAIN_BEGIN);
      c.push({ tNs: 3, guest: { seq: 3, ref: { kind: tm.RefEvent.Kind.ACQUIRE, objectKind: tm.ObjectKind.OBJECT_KIND_DEVICE, object: "ne1", holder: "h", countAfter: 1 } } });
      dev(4, Dev.DEACTIVATE);
    }
    dev(5, Dev.FREE);
  }
  const lanes = c.timeline().lanes;
  t.deepEqual(lanes.map((l) => [l.key, l.guest, l.points, l.refs]), [["nic2", [{ phase: "attach", startNs: 101 }], [{ kind: "free", tNs: 105 }], []]]);
});

test("drains of object kinds beyond the lane's slot table (a corrupt trace's) still open and close their bars", (t) => {
  const c = new TimelineCollector();
  const Dev = tm.DeviceEvent.Kind;
  const dev = (tNs: number, kind: number, objectKind: number) => c.push({ tNs, guest: { seq: tNs, device: { kind, name: "ne0", serial: "nic7", driver: "ne", objectKind } } });
  dev(1, Dev.DRAIN_BEGIN, 40);
  dev(2, Dev.DRAIN_BEGIN, -3);
  dev(5, Dev.DRAIN_END, 40);
  dev(9, Dev.DRAIN_END, -3);
  const tl = c.timeline();
  t.deepEqual(tl.lanes[0]!.guest.map((s) => [s.startNs, s.endNs, s.note]), [[1, 5, "kind 40"], [2, 9, "kind -3"]]);
  t.like(tl.latency.find((l) => l.phase === "drain:kind 40"), { n: 1, maxNs: 4 });
  t.like(tl.latency.find((l) => l.phase === "drain:kind -3"), { n: 1, maxNs: 7 });
});

test("a detach bar names its flags in a fixed order, each set of them alike however often it comes", (t) => {
  const c = new TimelineCollector();
  const Dev = tm.DeviceEvent.Kind;
  const sets = [{ force: true }, { quiet: true, poweroff: true }, { force: true, quiet: true, shutdown: true, poweroff: true }, {}, { shutdown: true }, { force: true }, { poweroff: true, quiet: true }];
  sets.forEach((flags, i) => {
    const dev = (tNs: number, kind: number) => c.push({ tNs, guest: { seq: tNs, device: { kind, name: "ne0", serial: "nic1", driver: "ne", flags } } });
    dev(10 * i + 1, Dev.DETACH_BEGIN);
    dev(10 * i + 2, Dev.DETACH_END);
  });
  t.deepEqual(
    c.timeline().lanes[0]!.guest.map((b) => b.note),
    ["flags force", "flags quiet|poweroff", "flags force|quiet|shutdown|poweroff", undefined, "flags shutdown", "flags force", "flags quiet|poweroff"],
  );
});

test("a device folded away while its records were the latest is not found again as that lane", (t) => {
  // maxLanes 1: nic2's lane folds nic1's away, then nic1 comes back (a new add): a new lane, not the folded one.
  const c = new TimelineCollector({ maxLanes: 1 });
  const K = tr.HostAction.Kind;
  c.push({ tNs: 1, action: { id: 1, kind: K.ADD_NIC, nicId: "nic1", nicKind: "usb-net" } });
  c.push({ tNs: 2, action: { id: 2, kind: K.ADD_NIC, nicId: "nic2", nicKind: "usb-net" } });
  c.push({ tNs: 3, action: { id: 3, kind: K.ADD_NIC, nicId: "nic1", nicKind: "ne2000" } });
  // Folded away, and not asked to be made again (a removal, not an add): drawn nowhere.
  c.push({ tNs: 4, action: { id: 4, kind: K.REMOVE_NIC, nicId: "nic2" } });
  const tl = c.timeline();
  t.deepEqual(tl.lanes.map((l) => [l.key, l.nicKind, l.firstNs, l.lastNs]), [["nic1", "ne2000", 3, 3]]);
  t.deepEqual(tl.aggregated.map((a) => [a.group, a.devices]), [["usb-net", 2]]);
});

test("a verdict added after records still waiting to be drawn (push draws them in batches) marks the lane they made", (t) => {
  const c = new TimelineCollector();
  c.push({ tNs: 5 * ms, action: { id: 1, kind: tr.HostAction.Kind.ADD_NIC, nicId: "nic7", nicKind: "usb-net" } });
  c.addVerdict({ rule: "leak", severity: 2, message: "held", nicId: "nic7", tNs: 6 * ms } as Parameters<TimelineCollector["addVerdict"]>[0]);
  const lane = c.timeline().lanes[0]!;
  // Drawn after the verdict, the action would find the lane the verdict made at 6 ms.
  t.deepEqual([lane.key, lane.firstNs, lane.nicKind, lane.violations.map((v) => v.rule)], ["nic7", 5 * ms, "usb-net", ["leak"]]);
});

test("record literals and records read from a trace are drawn in the order pushed, however they are mixed", (t) => {
  const literals: plugstorm.trace.v1.IRecord[] = [
    { tNs: 1, qmpCommand: { id: "a", command: "device_add", arguments: '{"id":"nic1","driver":"usb-net"}' } },
    { tNs: 2, qmpReply: { id: "a", ok: true } },
    { tNs: 3, qmpCommand: { id: "b", command: "device_del", arguments: '{"id":"nic1"}' } },
    { tNs: 4, qmpReply: { id: "b", ok: true } },
    { tNs: 9, qmpEvent: { event: "DEVICE_DELETED", data: '{"device":"nic1"}' } },
  ];
  const all = new TimelineCollector();
  for (const r of literals) all.push(r);
  // Every other record as a decoded trace reads it (a class instance, drawn at once).
  const mixed = new TimelineCollector();
  literals.forEach((r, i) => mixed.push(i % 2 === 1 ? tr.Record.fromObject(r) : r));
  const bars = (c: TimelineCollector) => c.timeline().lanes.map((l) => l.host.map((s) => [s.phase, s.startNs, s.endNs ?? null]));
  t.deepEqual(bars(mixed), [[["device_add", 1, 2], ["device_del", 3, 4], ["removal", 4, 9]]]);
  t.deepEqual(bars(mixed), bars(all));
});

test("a frame the decoder saw as a heartbeat draws nothing; a device frame decoded before another frame is still drawn", (t) => {
  const bytes = (f: plugstorm.telemetry.v1.IFrame) => tm.Frame.encode(f).finish();
  const device = decodeFrame(bytes({ seq: 1, guestTimeNs: 100, device: { kind: tm.DeviceEvent.Kind.ATTACH_BEGIN, name: "cdce0", serial: "nic1", driver: "cdce" } }));
  // The decoder's word is now on the heartbeat: the device frame must not be taken for one.
  const heartbeat = decodeFrame(bytes({ seq: 2, heartbeat: { framesSent: 2 } }));
  const c = new TimelineCollector();
  c.push({ tNs: 1, guest: device });
  c.push({ tNs: 2, guest: heartbeat });
  // An interface's attach joins its name to the device's NIC (interface events of other kinds join nothing).
  c.push({ tNs: 3, guest: decodeFrame(bytes({ seq: 3, ifnet: { kind: tm.IfEvent.Kind.ATTACH, ifname: "ue0", device: "cdce0" } })) });
  c.push({ tNs: 4, guest: decodeFrame(bytes({ seq: 4, ifnet: { kind: tm.IfEvent.Kind.DETACH_BEGIN, ifname: "ue0", device: "cdce0" } })) });
  c.push({ tNs: 5, guest: { seq: 5, ref: { kind: tm.RefEvent.Kind.ACQUIRE, objectKind: tm.ObjectKind.OBJECT_KIND_IFNET, object: "ue0", holder: "h", countAfter: 1 } } });
  const tl = c.timeline();
  t.deepEqual(tl.lanes.map((l) => [l.key, l.guest.map((s) => [s.phase, s.startNs]), l.refs]), [["nic1", [["attach", 1]], [[5, 1]]]]);
  t.deepEqual([tl.records, tl.startNs, tl.endNs], [5, 1, 5]);
});
