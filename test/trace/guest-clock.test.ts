// The Perfetto export puts guest events at the guest's own time: a synthetic
// run whose guest clock is offset and drifts against the host's, and whose
// frames reach the host late by varying amounts.
import test from "ava";
import { perfetto } from "../../src/gen/perfetto.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { buildTimeline, encodePerfetto, toChromeJson } from "../../src/trace/index.js";

const TL = plugstorm.telemetry.v1;
type Rec = plugstorm.trace.v1.IRecord;

/** A guest clock: offset plus drift against the host's trace clock. */
const guestClock = (offsetNs: number, ppm: number) => ({
  at: (hostNs: number) => Math.round(offsetNs + hostNs * (1 + ppm / 1e6)),
  host: (guestNs: number) => (guestNs - offsetNs) / (1 + ppm / 1e6),
});

/**
 * One session: a Hello, clock samples every 100 ms of host time from
 * firstSampleMs to lastSampleMs (round trips of 400 µs, the ack stamped
 * mid-way), and attach events at the given host times whose frames arrive
 * 3-40 ms later.
 */
function session(clock: ReturnType<typeof guestClock>, startMs: number, firstSampleMs: number, lastSampleMs: number, eventsMs: number[], name: string): Rec[] {
  const recs: Rec[] = [];
  let seq = 1;
  recs.push({ tNs: startMs * 1e6 + 1e6, guest: { seq: seq++, guestTimeNs: clock.at(startMs * 1e6), hello: { agentVersion: "t" } } });
  for (let ms = firstSampleMs; ms <= lastSampleMs; ms += 100) {
    const send = ms * 1e6;
    const recv = send + 400_000;
    const g = clock.at(send + 200_000);
    recs.push({ tNs: recv, clock: { hostSendNs: send, hostRecvNs: recv, guestTimeNs: g, offsetNs: g - (send + 200_000), errorNs: 200_000 } });
  }
  eventsMs.forEach((ms, i) => {
    const happened = ms * 1e6;
    const kind = i % 2 === 0 ? TL.DeviceEvent.Kind.ATTACH_BEGIN : TL.DeviceEvent.Kind.ATTACH_END;
    recs.push({ tNs: happened + (3 + ((i * 17) % 38)) * 1e6, guest: { seq: seq++, guestTimeNs: clock.at(happened), device: { kind, name } } });
  });
  return recs;
}

function slices(recs: Rec[]): Array<{ name: string; ts: number; track: string }> {
  recs.sort((a, b) => Number(a.tNs) - Number(b.tNs));
  const tl = buildTimeline(recs.map((r) => plugstorm.trace.v1.Record.fromObject(r)));
  const trace = perfetto.protos.Trace.decode(encodePerfetto(tl));
  const names = new Map<number, string>();
  for (const p of trace.packet) if (p.trackDescriptor) names.set(Number(p.trackDescriptor.uuid), p.trackDescriptor.name ?? "");
  return trace.packet
    .filter((p) => p.trackEvent && p.trackEvent.type !== perfetto.protos.TrackEvent.Type.TYPE_COUNTER)
    .map((p) => ({ name: p.trackEvent!.name ?? "end", ts: Number(p.timestamp), track: names.get(Number(p.trackEvent!.trackUuid)) ?? "" }));
}

test("guest events land at the guest's time on the host clock, through offset and drift, not at receipt", (t) => {
  // 5 s ahead, running 800 ppm fast; events inside, before and after the sampled span.
  const c = guestClock(5e9, 800);
  const eventsMs = [20, 150, 420, 900, 1333, 1800, 2600, 2950];
  const got = slices(session(c, 0, 100, 2500, eventsMs, "cdce0")).filter((s) => s.track.includes("cdce0"));
  t.is(got.length, eventsMs.length);
  got.forEach((s, i) => {
    const want = eventsMs[i]! * 1e6;
    // Within 1 µs (rounding of the guest stamps); receipt is 3 ms or more late.
    t.true(Math.abs(s.ts - want) <= 1000, `event ${i} (${s.name}): at ${s.ts} ns, the guest said ${want} ns`);
  });
});

test("each guest session has its own clock: a reboot's new offset applies from its Hello on", (t) => {
  const before = guestClock(7e9, -300);
  const after = guestClock(-2e8, 150); // rebooted: the guest clock restarted near zero
  const recs = [...session(before, 0, 100, 900, [50, 500, 950], "cdce0"), ...session(after, 1000, 1100, 2000, [1050, 1500, 2100], "cdce1")];
  const got = slices(recs);
  const at = (dev: string) => got.filter((s) => s.track.includes(dev)).map((s) => s.ts);
  const near = (xs: number[], ms: number[]) => xs.length === ms.length && xs.every((x, i) => Math.abs(x - ms[i]! * 1e6) <= 1000);
  t.true(near(at("cdce0"), [50, 500, 950]), `first session: ${at("cdce0").join(", ")}`);
  t.true(near(at("cdce1"), [1050, 1500, 2100]), `second session: ${at("cdce1").join(", ")}`);
});

test("without clock samples guest events stay at host receipt, and the Chrome JSON agrees with Perfetto", (t) => {
  const c = guestClock(5e9, 800);
  const recs = session(c, 0, 1e9, 0, [100, 200], "cdce0"); // no sample: the loop never runs
  t.false(recs.some((r) => r.clock));
  const got = slices(recs).filter((s) => s.track.includes("cdce0"));
  t.deepEqual(got.map((s) => s.ts), recs.filter((r) => r.guest?.device).map((r) => Number(r.tNs)));
  const sampled = session(c, 0, 100, 500, [300], "cdce0").map((r) => plugstorm.trace.v1.Record.fromObject(r));
  const chrome = toChromeJson(buildTimeline(sampled)).traceEvents.find((e) => e.name === "attach");
  t.truthy(chrome);
  t.true(Math.abs(chrome!.ts - 300_000) <= 1, `chrome ts ${chrome!.ts} µs`);
});
