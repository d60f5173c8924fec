// A small synthetic storm as real trace Records: nic1 (cdce0) attaches, holds
// and releases a reference, detaches cleanly; nic2 (cdce1) is freed while a
// bpf reference is still held, and the checker's verdict is recorded.
// Records are encoded and decoded again so they are exactly what a trace file holds.

import { plugstorm } from "../../src/gen/plugstorm.js";
import { TimelineCollector, type ReportVerdict, type RunReport } from "../../src/report/index.js";

const tr = plugstorm.trace.v1;
const tm = plugstorm.telemetry.v1;
const ms = 1_000_000;

export const NASTY = `free with <refs> & "quotes" 'too'`;
export const RULES = ["free-requires-zero-refs", "no-ref-after-detach", "detach-in-thread-context"];

/** Records of one add/remove cycle of `nic<n>` (guest name `name`) starting at base ns; leak = a bpf reference outlives the free. */
function cycleRecords(recs: plugstorm.trace.v1.IRecord[], ids: { seq: number; action: number; qmp: number }, base: number, n: number, name: string, leak: boolean): void {
  const frame = (t: number, body: Omit<plugstorm.telemetry.v1.IFrame, "seq" | "guestTimeNs">) =>
    recs.push({ tNs: t, guest: { seq: ++ids.seq, guestTimeNs: t + 5 * ms, ...body } });
  const dev = (t: number, d: plugstorm.telemetry.v1.IDeviceEvent) => frame(t, { device: d });
  const nic = `nic${n}`;
  const addId = ++ids.action;
  recs.push({ tNs: base, action: { id: addId, kind: tr.HostAction.Kind.ADD_NIC, nicId: nic, nicKind: "usb-net", bus: tr.NicBus.NIC_BUS_USB, port: `${n % 4}` } });
  const qa = `q${++ids.qmp}`;
  recs.push({ tNs: base + 0.1 * ms, qmpCommand: { id: qa, command: "device_add", arguments: JSON.stringify({ driver: "usb-net", id: nic, serial: nic }) } });
  recs.push({ tNs: base + 2 * ms, qmpReply: { id: qa, ok: true, result: "{}" } });
  recs.push({ tNs: base + 2 * ms, result: { actionId: addId, outcome: tr.HostResult.Outcome.DONE, sentNs: base + 0.1 * ms, replyNs: base + 2 * ms, nicId: nic } });
  dev(base + 10 * ms, { kind: tm.DeviceEvent.Kind.ATTACH_BEGIN, name, driver: "cdce", serial: nic, bus: tm.Bus.BUS_USB, context: tm.ExecContext.EXEC_CONTEXT_THREAD });
  dev(base + 14 * ms, { kind: tm.DeviceEvent.Kind.ATTACH_END, name, driver: "cdce", serial: nic, ifname: name });
  frame(base + 20 * ms, { ref: { kind: tm.RefEvent.Kind.ACQUIRE, objectKind: tm.ObjectKind.OBJECT_KIND_IFNET, object: name, device: name, holder: "bpf5", holderDesc: "bpf fd 5", countAfter: 1 } });
  frame(base + 22 * ms, { ref: { kind: tm.RefEvent.Kind.ACQUIRE, objectKind: tm.ObjectKind.OBJECT_KIND_DEVICE, object: name, holder: "ioctl", countAfter: 1 } });
  frame(base + 30 * ms, { ref: { kind: tm.RefEvent.Kind.RELEASE, objectKind: tm.ObjectKind.OBJECT_KIND_DEVICE, object: name, holder: "ioctl", countAfter: 0 } });
  if (!leak) frame(base + 40 * ms, { ref: { kind: tm.RefEvent.Kind.RELEASE, objectKind: tm.ObjectKind.OBJECT_KIND_IFNET, object: name, device: name, holder: "bpf5", countAfter: 0 } });
  const delId = ++ids.action;
  recs.push({ tNs: base + 50 * ms, action: { id: delId, kind: tr.HostAction.Kind.REMOVE_NIC, nicId: nic, nicKind: "usb-net" } });
  const qd = `q${++ids.qmp}`;
  recs.push({ tNs: base + 50.1 * ms, qmpCommand: { id: qd, command: "device_del", arguments: JSON.stringify({ id: nic }) } });
  recs.push({ tNs: base + 51 * ms, qmpReply: { id: qd, ok: true, result: "{}" } });
  dev(base + 60 * ms, { kind: tm.DeviceEvent.Kind.DETACH_BEGIN, name, serial: nic, flags: { force: true }, context: tm.ExecContext.EXEC_CONTEXT_THREAD, thread: "usb0" });
  dev(base + 61 * ms, { kind: tm.DeviceEvent.Kind.DRAIN_BEGIN, name, objectKind: tm.ObjectKind.OBJECT_KIND_IFNET });
  dev(base + 66 * ms, { kind: tm.DeviceEvent.Kind.DRAIN_END, name, objectKind: tm.ObjectKind.OBJECT_KIND_IFNET });
  dev(base + 67 * ms, { kind: tm.DeviceEvent.Kind.DRAIN_BEGIN, name, objectKind: tm.ObjectKind.OBJECT_KIND_DEVICE });
  dev(base + 69 * ms, { kind: tm.DeviceEvent.Kind.DRAIN_END, name, objectKind: tm.ObjectKind.OBJECT_KIND_DEVICE });
  dev(base + 70 * ms, { kind: tm.DeviceEvent.Kind.DETACH_END, name, error: 0 });
  dev(base + 71 * ms, { kind: tm.DeviceEvent.Kind.FREE, name });
  if (leak) {
    recs.push({
      tNs: base + 71 * ms,
      verdict: { rule: RULES[0], side: tr.Verdict.Side.GUEST, severity: tr.Verdict.Severity.FATAL, device: name, nicId: nic, holders: ["bpf5"], message: NASTY, recordIndex: 0 },
    });
  }
  recs.push({ tNs: base + 100 * ms, qmpEvent: { event: "DEVICE_DELETED", data: JSON.stringify({ device: nic, path: `/machine/peripheral/${nic}` }) } });
  recs.push({ tNs: base + 100 * ms, result: { actionId: delId, outcome: tr.HostResult.Outcome.DONE, sentNs: base + 50.1 * ms, replyNs: base + 51 * ms, eventNs: base + 100 * ms, nicId: nic } });
}

/** Encode and decode: the records are exactly what a trace file would give back. */
function roundTrip(recs: plugstorm.trace.v1.IRecord[]): plugstorm.trace.v1.Record[] {
  return recs.map((r) => tr.Record.decode(tr.Record.encode(tr.Record.create(r)).finish()));
}

export function syntheticRecords(): plugstorm.trace.v1.Record[] {
  const recs: plugstorm.trace.v1.IRecord[] = [];
  const ids = { seq: 0, action: 0, qmp: 0 };
  cycleRecords(recs, ids, 1 * ms, 1, "cdce0", false);
  recs.push({ tNs: 105 * ms, channel: { kind: tr.ChannelEvent.Kind.SEQ_GAP, expectedSeq: 40, gotSeq: 42 } });
  cycleRecords(recs, ids, 110 * ms, 2, "cdce1", true);
  return roundTrip(recs);
}

/**
 * A storm of `devices` overlapping cycles (one starts every 40 ms, each lasts
 * 100 ms; guest names are reused as in a real kernel), leaking on every
 * leakEvery-th device. Records are in time order.
 */
export function stormRecords(devices: number, leakEvery: number): plugstorm.trace.v1.Record[] {
  const recs: plugstorm.trace.v1.IRecord[] = [];
  const ids = { seq: 0, action: 0, qmp: 0 };
  for (let i = 0; i < devices; i++) cycleRecords(recs, ids, i * 40 * ms, i + 1, `cdce${i % 8}`, (i + 1) % leakEvery === 0);
  recs.sort((a, b) => (a.tNs ?? 0) - (b.tNs ?? 0));
  return roundTrip(recs);
}

/** A RunReport built the way the storm runner does: records through the collector, verdicts from the checker. */
export function syntheticReport(collector = new TimelineCollector(), records = syntheticRecords()): RunReport {
  const verdicts: ReportVerdict[] = [];
  records.forEach((r, index) => {
    collector.push(r);
    if (r.verdict) {
      verdicts.push({
        rule: r.verdict.rule ?? "",
        side: r.verdict.side,
        severity: r.verdict.severity,
        device: r.verdict.device,
        nicId: r.verdict.nicId,
        holders: r.verdict.holders,
        message: r.verdict.message ?? "",
        tNs: r.tNs,
        recordIndex: index,
      });
    }
  });
  return {
    toolVersion: "plugstorm 0.1.0",
    scenarioName: "two-nics",
    seed: 424242,
    profiles: { machine: "q35-xhci", guest: "sim", model: "netbsd" },
    startedAtMs: Date.UTC(2026, 10, 23, 3, 0, 0),
    durationMs: 211,
    reproduce: "plugstorm storm scenarios/two-nics.yaml --seed 424242",
    exit: { status: "violations" },
    verdicts,
    rules: RULES,
    counts: { cycles: records.filter((r) => r.action?.kind === tr.HostAction.Kind.ADD_NIC).length, frames: records.filter((r) => r.guest).length, framesLost: 2, corrupt: 0 },
    timeline: collector.timeline(),
  };
}
