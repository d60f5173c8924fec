// The fault plan's side of the device faults: which transfer a fault reaches,
// how often, and what it reports.
import test from "ava";
import { FaultPlan, type AppliedFault } from "../../src/devices/index.js";

function plan(): { p: FaultPlan; applied: AppliedFault[] } {
  const p = new FaultPlan();
  const applied: AppliedFault[] = [];
  p.onApplied = (a) => applied.push(a);
  return { p, applied };
}

test("short reaches bulk IN only, count times, and reports each", (t) => {
  const { p, applied } = plan();
  p.add({ kind: "short", endpoint: "bulk-in", count: 2 });
  t.is(p.bulk(0x02, 512), "pass", "bulk OUT untouched");
  t.is(p.bulk(0x81, 1600), "short");
  t.is(p.bulk(0x81, 1600), "short");
  t.is(p.bulk(0x81, 1600), "pass", "spent after 2");
  t.deepEqual(applied.map((a) => `${a.fault} ${a.endpoint}: ${a.outcome}`), ["short bulk-in 0x81: short", "short bulk-in 0x81: short"]);
});

test("disconnect-pending waits until count bulk IN requests are outstanding, fires once, and names how many were pending", (t) => {
  const { p, applied } = plan();
  p.add({ kind: "disconnect-pending", count: 2 });
  t.is(p.inQueued(0x82, 1), "pass");
  t.is(p.bulk(0x82, 2048), "pass", "it does not touch the transfers themselves");
  t.is(p.inQueued(0x82, 2), "disconnect");
  t.is(p.inQueued(0x82, 3), "pass", "once");
  t.deepEqual(applied.map((a) => `${a.fault} ${a.endpoint}: ${a.outcome}`), ["disconnect-pending bulk-in 0x82: disconnect with 2 bulk IN pending"]);
});

test("reconnect acts through the bound connection, at once or as soon as one is bound; a bad gap or count is refused", (t) => {
  const { p, applied } = plan();
  const asked: string[] = [];
  p.add({ kind: "reconnect", count: 3, gapMs: 200 });
  t.deepEqual(asked, [], "no connection yet");
  p.bind({ reconnect: (n, gap) => asked.push(`${n}x${gap}`), recheckPending: () => asked.push("recheck") });
  t.deepEqual(asked, ["3x200"]);
  p.add({ kind: "reconnect", count: 1, gapMs: 0 });
  t.deepEqual(asked, ["3x200", "1x0"]);
  t.deepEqual(p.active, [], "nothing stays armed");
  p.add({ kind: "disconnect-pending", count: 1 });
  t.deepEqual(asked, ["3x200", "1x0", "recheck"], "a disconnect-pending armed on a bound connection looks at what is outstanding now");
  t.deepEqual(applied.map((a) => a.outcome), ["3 disconnect/connect cycles, 200 ms apart", "1 disconnect/connect cycles, 0 ms apart"]);
  t.throws(() => p.add({ kind: "reconnect", count: 0, gapMs: 10 }), { message: /count must be at least 1, got 0/ });
  t.throws(() => p.add({ kind: "reconnect", count: 1, gapMs: -1 }), { message: /gap must be at least 0 ms, got -1/ });
});
