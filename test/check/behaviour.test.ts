import test from "ava";
import { TraceChecker, checkRecords, formatSummary, formatVerdict, verdictToRecord, type Verdict } from "../../src/check/index.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { trace, type TraceBuilder } from "./builder.js";
import { dump, run } from "./helpers.js";

const S = 1e9;

function leak(b: TraceBuilder): TraceBuilder {
  return b
    .hostAdd("nic1")
    .netbsdAttach("cdce0", "nic1")
    .acquire("cdce0", "bpf0", { kind: "ifnet", desc: "bpf fd 5" })
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .ifDetachBegin("cdce0");
}

test("a rule whose capability the guest lacks is not observed: neither passed nor violated", (t) => {
  const b = trace()
    .hello({ caps: ["device-lifecycle", "detach-phases", "ifnet", "free"] })
    .hostAdd("nic1")
    .netbsdAttach("cdce0", "nic1")
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .acquire("cdce0", "late", { kind: "device" })
    .release("cdce0", "late", { kind: "device" })
    .netbsdDetach("cdce0", { skipBegin: true });
  const res = run(b);
  t.deepEqual(res.verdicts, [], dump(res));
  const st = (id: string) => res.summary.rules.find((r) => r.id === id)?.status;
  t.is(st("no-ref-after-detach-begin"), "not-observed");
  t.is(st("free-with-zero-refs"), "not-observed");
  t.is(st("detach-in-thread-context"), "not-observed");
  t.true(res.summary.notObserved.includes("no-ref-after-detach-begin"));
  t.is(st("free-after-drain"), "passed");
  t.deepEqual(res.summary.capabilities, ["device-lifecycle", "detach-phases", "ifnet", "free"]);
});

test("deadlines are configurable and judged on trace time: the leak fires at remove + detachNs", (t) => {
  const b = leak(trace().hello()).wait(2 * S).log("tick");
  const removeAt = b.records().find((r) => r.action?.kind === plugstorm.trace.v1.HostAction.Kind.REMOVE_NIC)!.tNs!;
  const short = run(b, { deadlines: { detachNs: 1 * S } });
  t.is(short.verdicts[0]?.rule, "host-remove-frees");
  t.is(short.verdicts[0]?.tNs, removeAt + 1 * S);
  t.deepEqual(short.verdicts[0]?.holders, ["bpf0"]);
  t.regex(short.verdicts[0]!.message, /ifnet ref held by bpf0 \(bpf fd 5\)/);
  // With the default 30 s nothing is due yet: the expectation is pending, not broken.
  const long = run(b);
  t.deepEqual(long.verdicts, [], dump(long));
  t.true(long.summary.pendingCount > 0);
  t.true(long.summary.pending.some((p) => p.rule === "host-remove-frees" && p.nicId === "nic1"));
  // finish() with a later end time judges what became due by then.
  t.is(run(b, { endTNs: removeAt + 31 * S }).verdicts[0]?.rule, "host-remove-frees");
});

test("no guest telemetry at all gives one clear channel verdict, not one per NIC", (t) => {
  const b = trace().machineStarted().hostAdd("nic1").hostAdd("nic2").hostRemove("nic1").wait(200 * S).hostAdd("nic3");
  const res = run(b);
  t.deepEqual(res.verdicts.map((v) => v.rule), ["guest-telemetry-present"], dump(res));
  t.is(res.verdicts[0]!.side, "channel");
  t.regex(res.verdicts[0]!.message, /no guest telemetry/);
});

test("frames lost, corrupt frames and agent drops are counted and reported on the channel side", (t) => {
  const res = run(trace().hello().seqGap(5, 9).corrupt(40).heartbeat(2, 0).heartbeat(2, 0));
  t.deepEqual(res.verdicts.map((v) => `${v.rule}/${v.side}`), ["no-frames-lost/channel", "no-frames-lost/channel", "no-frames-lost/channel"]);
  t.is(res.summary.framesLost, 6);
  t.is(res.summary.corruptFrames, 1);
  t.regex(res.verdicts[0]!.message, /4 telemetry frame\(s\) lost/);
});

test("verdicts separate host, guest and channel sides", (t) => {
  const b = trace().hello().hostAdd("nic1", "usb-net", { outcome: "refused", message: "no free port" }).seqGap(3, 4).hostAdd("nic2").netbsdAttach("cdce0", "nic2").release("cdce0", "x", { kind: "device" });
  const res = run(b);
  t.deepEqual(res.summary.verdicts.bySide, { host: 1, guest: 1, channel: 1 });
  t.deepEqual(res.verdicts.map((v) => v.side), ["host", "channel", "guest"]);
});

test("a guest panic ends guest-side deadlines (the panic explains them)", (t) => {
  const b = leak(trace().hello()).panic("uvm_fault", "").wait(60 * S).log("tick");
  const res = run(b);
  t.deepEqual(res.verdicts.map((v) => v.rule), ["guest-no-panic"], dump(res));
});

test("a forced detach that panics is reported as the forced veto", (t) => {
  const b = trace().hello().hostAdd("nic1").netbsdAttach("cdce0", "nic1").hostRemove("nic1").detachBegin("cdce0", { force: true }).panic("config_detach: forced detach of cdce0 failed (16)", "cdce0");
  const res = run(b);
  t.deepEqual(res.verdicts.map((v) => v.rule), ["forced-detach-no-veto", "guest-no-panic"]);
  t.is(res.verdicts[0]!.severity, "fatal");
});

test("the Linux profile has no veto: a failed disconnect breaks forced-detach-no-veto", (t) => {
  const b = trace().hello({ os: "linux" }).hostAdd("nic1").attachBegin("1-1:1.0", { serial: "nic1" }).attachEnd("1-1:1.0").hostRemove("nic1").detachBegin("1-1:1.0", { force: false }).detachEnd("1-1:1.0", { error: 16 });
  const res = run(b, { profile: "linux" });
  t.is(res.verdicts[0]?.rule, "forced-detach-no-veto", dump(res));
});

function linuxDetach(b: TraceBuilder): TraceBuilder {
  return b
    .hello({ os: "linux" })
    .hostAdd("nic1")
    .attachBegin("1-1:1.0", { serial: "nic1", driver: "cdc_ether", thread: "kworker" })
    .ifAttach("usb0", "1-1:1.0")
    .attachEnd("1-1:1.0", { driver: "cdc_ether" })
    .acquire("1-1:1.0", "sock3", { kind: "netdev", object: "usb0", desc: "AF_PACKET socket" })
    .hostRemove("nic1")
    .detachBegin("1-1:1.0", { thread: "hub", force: false })
    .ifDetachBegin("usb0", "1-1:1.0")
    .drainBegin("1-1:1.0", "netdev");
}

test("Linux: a free inside the disconnect before unregister_netdev drained breaks free-after-drain, naming the holder", (t) => {
  const res = run(linuxDetach(trace()).free("1-1:1.0"), { profile: "linux" });
  t.is(res.verdicts[0]?.rule, "free-after-drain", dump(res));
  t.regex(res.verdicts[0]!.message, /interface usb0 is detaching.*sock3/);
  t.deepEqual(res.verdicts[0]!.holders, ["sock3"]);
});

test("Linux: a free after the drain but with a reference still counted breaks free-with-zero-refs", (t) => {
  const b = linuxDetach(trace()).drainEnd("1-1:1.0", "netdev").ifDetachEnd("usb0", "1-1:1.0").free("1-1:1.0");
  const res = run(b, { profile: "linux" });
  t.true(res.verdicts.some((v) => v.rule === "free-with-zero-refs" && v.holders.includes("sock3")), dump(res));
  t.false(res.verdicts.some((v) => v.rule === "free-after-drain"), dump(res));
});

test("NetBSD keeps its order: a free after the commit but before the localcount drain breaks free-after-drain", (t) => {
  const b = trace().hello().hostAdd("nic1").netbsdAttach("cdce0", "nic1").hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").commit("cdce0").free("cdce0");
  const res = run(b);
  t.is(res.verdicts[0]?.rule, "free-after-drain", dump(res));
});

test("live checking (push) yields the same verdicts, in order, as an offline check", (t) => {
  const b = leak(trace().hello()).release("cdce0", "nobody", { kind: "device" }).wait(40 * S).log("tick");
  const live: Verdict[] = [];
  const seen: Verdict[] = [];
  const c = new TraceChecker({ profile: "netbsd", onVerdict: (v) => seen.push(v) });
  b.records().forEach((r, i) => live.push(...c.push(r, i)));
  const end = c.finish();
  t.deepEqual(live, seen);
  t.deepEqual(end.verdicts, live);
  t.deepEqual(checkRecords(b.decodedRecords(), { profile: "netbsd" }).verdicts, live);
  t.deepEqual(live.map((v) => v.rule), ["release-only-held", "host-remove-frees"]);
});

test("formatVerdict and verdictToRecord carry rule, device, QEMU id, holders and history", (t) => {
  const res = run(leak(trace().hello()).wait(31 * S).log("tick"));
  const v = res.verdicts[0]!;
  const text = formatVerdict(v);
  t.regex(text, /^ERROR \[guest\] host-remove-frees: cdce0 \(nic1\) at record #\d+/);
  t.regex(text, /holders: bpf0/);
  t.regex(text, /host remove nic1/);
  t.regex(text, /guest cdce0 detach-begin/);
  const rec = verdictToRecord(v);
  t.is(rec.rule, "host-remove-frees");
  t.is(rec.side, plugstorm.trace.v1.Verdict.Side.GUEST);
  t.is(rec.severity, plugstorm.trace.v1.Verdict.Severity.ERROR);
  t.is(rec.nicId, "nic1");
  t.deepEqual(rec.holders, ["bpf0"]);
  const bytes = plugstorm.trace.v1.Record.encode({ tNs: 1, verdict: rec }).finish();
  t.is(plugstorm.trace.v1.Record.decode(bytes).verdict?.device, "cdce0");
});

test("summary: latency per driver over many cycles, and rules never exercised", (t) => {
  const b = trace().hello();
  for (let i = 0; i < 50; i++) b.netbsdUsbCycle(`nic${i}`, "cdce0").wait(i * 1e6);
  const res = run(b);
  t.deepEqual(res.verdicts, []);
  const lat = res.summary.latency.find((l) => l.driver === "cdce")!;
  t.is(lat.attach.count, 50);
  t.is(lat.removal.count, 50);
  t.true(lat.drain.count >= 150);
  t.true(lat.detach.p50Ns <= lat.detach.p99Ns && lat.detach.p99Ns <= lat.detach.maxNs);
  t.is(res.summary.cycles, 50);
  t.is(res.summary.nicsAdded, 50);
  t.true(res.summary.notExercised.includes("no-method-after-revoke"));
  t.false(res.summary.notExercised.includes("free-with-zero-refs"));
});

test("a use after free names the freed instance; a new instance of the same name is a new device", (t) => {
  const b = trace()
    .hello()
    .hostAdd("nic1")
    .netbsdAttach("cdce0", "nic1", { instance: 1 })
    .hostRemove("nic1")
    .netbsdDetach("cdce0", { instance: 1 })
    .hostAdd("nic2")
    .netbsdAttach("cdce0", "nic2", { instance: 2 })
    .detachEnd("cdce0", { instance: 1, error: 2 });
  const res = run(b);
  t.is(res.verdicts[0]?.rule, "no-event-after-free", dump(res));
  t.is(res.verdicts[0]?.nicId, "nic1");
  t.regex(res.verdicts[0]!.message, /instance 1/);
  t.is(res.verdicts.length, 1);
});

test("a NIC pulled before the guest saw it owes no attach and no detach", (t) => {
  const res = run(trace().machineStarted().hello().hostAdd("nic1").hostRemove("nic1").wait(100 * S).log("tick"));
  t.deepEqual(res.verdicts, [], dump(res));
  t.is(res.summary.pendingCount, 0);
});

test("advance() reports a hang while it lasts, with the verdict a replay gives later", (t) => {
  const b = leak(trace().hello());
  const records = b.records();
  const live = new TraceChecker({ profile: "netbsd" });
  records.forEach((r, i) => live.push(r, i));
  const last = records[records.length - 1]!.tNs!;
  t.deepEqual(live.advance(last + 10 * S), []);
  const hung = live.advance(last + 40 * S);
  t.deepEqual(hung.map((v) => v.rule), ["host-remove-frees"]);
  const replay = checkRecords(b.wait(40 * S).log("later").records(), { profile: "netbsd" });
  t.deepEqual(replay.verdicts, hung);
});

test("formatSummary names counts, latencies and rule statuses", (t) => {
  const res = run(trace().hello().netbsdUsbCycle("nic1", "cdce0").release("cdce0", "x", { kind: "device" }));
  const text = formatSummary(res.summary);
  t.regex(text, /profile netbsd: \d+ events, \d+ guest frames, 1 cycles/);
  t.regex(text, /cdce: attach p50 .* \(n=1\)/);
  t.regex(text, /violated: no-event-after-free/);
  t.regex(text, /not-exercised: .*no-method-after-revoke/);
});

test("an agent that only sees completions (drvctl-like): attach end, detach end, free", (t) => {
  const caps = ["device-lifecycle", "free"] as const;
  const clean = trace()
    .hello({ caps })
    .hostAdd("nic1")
    .attachEnd("cdce0", { serial: "nic1" })
    .hostRemove("nic1")
    .detachEnd("cdce0")
    .free("cdce0");
  const res = run(clean);
  t.deepEqual(res.verdicts, [], dump(res));
  t.is(res.summary.cycles, 1);
  const hung = run(trace().hello({ caps }).hostAdd("nic1").attachEnd("cdce0", { serial: "nic1" }).hostRemove("nic1").wait(31 * S).log("tick"));
  t.deepEqual(hung.verdicts.map((v) => v.rule), ["host-remove-frees"], dump(hung));
});
