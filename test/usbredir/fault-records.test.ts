// Device-side faults are trace records of their own (trace.proto DeviceSide):
// with endpoint and status, drawn on the HTML timeline and in the Perfetto
// export, and kept by the shrinker when they are what breaks the rule.
import test from "ava";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { renderHtml, TimelineCollector } from "../../src/report/index.js";
import { buildTimeline, perfettoPackets } from "../../src/trace/index.js";
import { deviceSideRecord } from "../../src/storm/device-record.js";
import { parseStorm, searchSmallest, specToInput, stormToYaml, type Step } from "../../src/storm/index.js";
import { syntheticRecords, syntheticReport } from "../report/fixture.js";

const tr = plugstorm.trace.v1;
const ms = 1e6;

function withFault(): plugstorm.trace.v1.Record[] {
  const device = deviceSideRecord({ type: "device", tNs: 30 * ms, nicId: "nic1", event: "fault", detail: "stall bulk-in 0x81: stall", fault: { kind: "stall", endpoint: "bulk-in 0x81", status: "stall" } });
  const recs = syntheticRecords();
  const at = recs.findIndex((r) => Number(r.tNs) > 30 * ms);
  recs.splice(at, 0, tr.Record.decode(tr.Record.encode(tr.Record.create({ tNs: 30 * ms, device })).finish()));
  return recs;
}

test("a device-side fault is a DeviceSide record with its endpoint and status, not a mark", (t) => {
  const r = withFault().find((x) => x.device)!;
  t.is(r.body, "device");
  t.is(r.device!.kind, tr.DeviceSide.Kind.FAULT);
  t.is(r.device!.nicId, "nic1");
  t.is(r.device!.fault, "stall");
  t.is(r.device!.endpoint, "bulk-in 0x81");
  t.is(r.device!.status, "stall");
  const counts = deviceSideRecord({ type: "device", tNs: 0, nicId: "nic2", event: "transfers", detail: "", transfers: { bulkIn: 7, bulkOut: 3, interrupt: 1 } });
  t.deepEqual([counts.kind, counts.bulkIn, counts.bulkOut, counts.interrupt], [tr.DeviceSide.Kind.TRANSFERS, 7, 3, 1]);
});

test("the HTML timeline draws the fault on its NIC's lane, with what the host got", (t) => {
  const plain = renderHtml(syntheticReport());
  t.false(plain.includes('class="fault"'), "no fault, no fault mark");
  const collector = new TimelineCollector();
  const html = renderHtml(syntheticReport(collector, withFault()));
  const lane = collector.timeline().lanes.find((l) => l.key === "nic1")!;
  t.deepEqual(lane.faults, [{ tNs: 30 * ms, fault: "stall", endpoint: "bulk-in 0x81", status: "stall" }]);
  t.regex(html, /<g class="[^"]*" data-lane="nic1"[^]*?<path class="fault" data-fault="stall"[^>]*><title>device fault stall on [^:]+: bulk-in 0x81 → stall at/);
});

test("the Perfetto export has the fault as an instant on the NIC's host track, with endpoint and status", (t) => {
  const tl = buildTimeline(withFault());
  const track = tl.tracks.find((x) => x.name === "host nic1")!;
  t.truthy(track);
  const ev = tl.events.find((e) => e.type === "instant" && e.name === "device fault stall");
  t.truthy(ev);
  t.is(ev!.type === "instant" ? ev!.track : -1, track.uuid);
  t.deepEqual(ev!.type === "instant" ? ev!.args : undefined, { fault: "stall", endpoint: "bulk-in 0x81", status: "stall" });
  const packets = perfettoPackets(tl);
  const pe = packets.find((p) => p.trackEvent?.name === "device fault stall")!;
  t.truthy(pe);
  t.deepEqual(
    pe.trackEvent!.debugAnnotations!.map((a) => [a.name, a.stringValue]),
    [["fault", "stall"], ["endpoint", "bulk-in 0x81"], ["status", "stall"]],
  );
});

const STORM = `machine: { type: qemu, profile: linux-guest }
model: linux
nics: { mix: [{ kind: redir-cdce, count: 2 }] }
schedule:
  maxInFlight: 2
  steps:
    - add: { nic: a, kind: redir-cdce, fault: [{ fault: malformed, what: bad-class }, { fault: disconnect-after-control, count: 9 }] }
    - add: { nic: b, kind: redir-cdce }
    - device-fault: { nic: b, fault: late, endpoint: bulk-out, delay: 20ms }
    - device-fault: { nic: b, fault: pending, endpoint: bulk-in, count: 4 }
    - sleep: 30ms
    - remove: a
    - remove: { nic: b, via: device-disconnect }
`;

test("shrinking keeps the fault steps that matter and drops the others, and the shrunk storm says so", async (t) => {
  const spec = parseStorm(STORM);
  const steps = spec.schedule.steps!;
  // Stands in for a run: the rule breaks while b has a pending bulk-in fault and a's descriptors are malformed.
  const breaks = (s: Step[]): boolean =>
    s.some((x) => x.op === "device-fault" && x.nic === "b" && x.fault.kind === "pending") &&
    s.some((x) => x.op === "add" && x.nic === "a" && (x.faults ?? []).some((f) => f.kind === "malformed"));
  let best = steps;
  await searchSmallest(steps, async (s) => {
    const hit = breaks(s);
    if (hit && s.length <= best.length) best = s;
    return hit;
  });
  t.deepEqual(best.filter((x) => x.op === "device-fault"), [{ op: "device-fault", nic: "b", fault: { kind: "pending", endpoint: "bulk-in", count: 1 } }]);
  t.deepEqual(best.find((x) => x.op === "add" && x.nic === "a"), { op: "add", nic: "a", kind: "redir-cdce", faults: [{ kind: "malformed", what: "bad-class" }] });
  const yaml = stormToYaml(specToInput({ ...spec, schedule: { ...spec.schedule, steps: best } }, best));
  t.regex(yaml, /device-fault: \{ nic: b, fault: pending, endpoint: bulk-in, count: 1 \}/);
  t.deepEqual(parseStorm(yaml).schedule.steps, best);
});
