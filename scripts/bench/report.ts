// TimelineCollector cost per trace record during a storm (it runs on every
// record the runner appends), against the baseline of protobuf-encoding the
// same records, which the runner pays anyway for the trace file; and the time
// to write the four reports at the end, with many devices.

import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { TimelineCollector, writeReports, type RunReport } from "../../src/report/index.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "TimelineCollector cost per record against protobuf-encoding it; time to write the four reports";

const tr = plugstorm.trace.v1;
const tm = plugstorm.telemetry.v1;

function storm(devices: number): plugstorm.trace.v1.IRecord[] {
  const out: plugstorm.trace.v1.IRecord[] = [];
  let seq = 0;
  const ms = 1e6;
  for (let i = 0; i < devices; i++) {
    const base = i * 40 * ms;
    const nic = `nic${i}`;
    const name = `cdce${i % 8}`;
    const dev = (t: number, d: plugstorm.telemetry.v1.IDeviceEvent) => out.push({ tNs: base + t, guest: { seq: ++seq, device: { name, ...d } } });
    out.push({ tNs: base, qmpCommand: { id: `a${i}`, command: "device_add", arguments: `{"driver":"usb-net","id":"${nic}"}` } });
    out.push({ tNs: base + 2 * ms, qmpReply: { id: `a${i}`, ok: true } });
    dev(10 * ms, { kind: tm.DeviceEvent.Kind.ATTACH_BEGIN, serial: nic, driver: "cdce" });
    dev(14 * ms, { kind: tm.DeviceEvent.Kind.ATTACH_END, serial: nic });
    for (let k = 0; k < 20; k++) {
      out.push({ tNs: base + (20 + k) * ms, guest: { seq: ++seq, ref: { kind: k % 2 ? tm.RefEvent.Kind.RELEASE : tm.RefEvent.Kind.ACQUIRE, objectKind: tm.ObjectKind.OBJECT_KIND_USBNET, object: name, device: name, holder: "rx", countAfter: (k + 1) % 2 } } });
    }
    out.push({ tNs: base + 50 * ms, qmpCommand: { id: `d${i}`, command: "device_del", arguments: `{"id":"${nic}"}` } });
    out.push({ tNs: base + 51 * ms, qmpReply: { id: `d${i}`, ok: true } });
    dev(60 * ms, { kind: tm.DeviceEvent.Kind.DETACH_BEGIN });
    dev(61 * ms, { kind: tm.DeviceEvent.Kind.DRAIN_BEGIN, objectKind: tm.ObjectKind.OBJECT_KIND_IFNET });
    dev(66 * ms, { kind: tm.DeviceEvent.Kind.DRAIN_END, objectKind: tm.ObjectKind.OBJECT_KIND_IFNET });
    dev(70 * ms, { kind: tm.DeviceEvent.Kind.DETACH_END });
    dev(71 * ms, { kind: tm.DeviceEvent.Kind.FREE });
    if (i % 97 === 0) out.push({ tNs: base + 71 * ms, verdict: { rule: "free-with-zero-refs", severity: tr.Verdict.Severity.FATAL, nicId: nic, device: name, message: "freed with refs" } });
    out.push({ tNs: base + 100 * ms, qmpEvent: { event: "DEVICE_DELETED", data: `{"device":"${nic}"}` } });
  }
  return out.sort((a, b) => (a.tNs ?? 0) - (b.tNs ?? 0));
}

export async function run(): Promise<void> {
  const devices = 5000;
  const recs = storm(devices);
  const n = recs.length;

  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (const r of recs) sink += tr.Record.encode(r).finish().length;
  const encodeS = Number(process.hrtime.bigint() - t0) / 1e9;

  const c = new TimelineCollector();
  const heapBefore = process.memoryUsage().heapUsed;
  const t1 = process.hrtime.bigint();
  for (const r of recs) c.push(r);
  const collectS = Number(process.hrtime.bigint() - t1) / 1e9;
  const tl = c.timeline();
  const heapAfter = process.memoryUsage().heapUsed;
  if (sink === 0 || tl.devicesSeen !== devices) throw new Error(`collector saw ${tl.devicesSeen} of ${devices} devices`);

  const report: RunReport = {
    toolVersion: "bench",
    scenarioName: "bench",
    seed: 1,
    profiles: { machine: "sim", guest: "sim", model: "netbsd" },
    startedAtMs: 0,
    durationMs: tl.endNs / 1e6,
    reproduce: "-",
    exit: { status: "violations" },
    verdicts: recs.filter((r) => r.verdict).map((r) => ({ rule: r.verdict!.rule!, severity: "fatal", nicId: r.verdict!.nicId!, message: r.verdict!.message! })),
    counts: { cycles: devices, frames: n, framesLost: 0, corrupt: 0 },
    timeline: tl,
  };
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-bench-report-"));
  try {
    const t2 = process.hrtime.bigint();
    const { files } = await writeReports(dir, report);
    const writeS = Number(process.hrtime.bigint() - t2) / 1e9;
    const html = statSync(files.find((f) => f.endsWith(".html"))!).size;
    const rps = (s: number) => Math.round(n / s).toLocaleString("en-US");
    console.log(`report: ${devices} devices, ${n} records, ${tl.lanes.length} lanes kept, ${devices - tl.lanes.length} aggregated`);
    console.log(`  protobuf encode alone        ${rps(encodeS)} records/s (baseline)`);
    console.log(`  TimelineCollector.push       ${rps(collectS)} records/s  ratio ${(collectS / encodeS).toFixed(2)}x baseline time`);
    console.log(`  heap growth while collecting ${((heapAfter - heapBefore) / 1e6).toFixed(1)} MB (bounded by maxLanes, not by run length)`);
    console.log(`  writeReports (4 files)       ${(writeS * 1000).toFixed(0)} ms, report.html ${(html / 1e6).toFixed(2)} MB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
