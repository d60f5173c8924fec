import test from "ava";
import { checkRecords } from "../../src/check/index.js";
import { trace, macOf } from "./builder.js";
import { assertClean, dump, run } from "./helpers.js";

test("a clean NetBSD USB cycle gives no verdict and exercises the core rules", (t) => {
  const b = trace().machineStarted().hello().netbsdUsbCycle("nic1", "cdce0");
  const res = run(b);
  assertClean(t, res, [
    "no-ref-after-detach-begin",
    "release-only-held",
    "drain-completes-empty",
    "if-detach-waits-for-psrefs",
    "detach-drains-refs",
    "detach-end-after-if-detach",
    "free-after-drain",
    "free-with-zero-refs",
    "detach-in-thread-context",
    "guest-device-added-by-host",
    "host-add-attaches",
    "host-remove-finalised",
  ]);
  t.is(res.summary.cycles, 1);
  t.is(res.summary.devicesSeen, 1);
  t.is(res.summary.liveDevices, 0);
  t.is(res.summary.maxRefsHeld.count, 2);
  t.is(res.summary.maxRefsHeld.device, "cdce0");
  const lat = res.summary.latency.find((l) => l.driver === "cdce");
  t.truthy(lat);
  t.is(lat!.detach.count, 1);
  t.true(lat!.detach.maxNs > 0);
});

test("the same clean cycle decoded from protobuf bytes gives the same result", (t) => {
  const b = trace().machineStarted().hello().netbsdUsbCycle("nic1", "cdce0").netbsdUsbCycle("nic2", "cdce0");
  const a = run(b);
  const d = run(b, { decoded: true });
  assertClean(t, d);
  t.deepEqual(d.summary, a.summary);
  t.is(d.summary.cycles, 2);
});

test("a clean PCMCIA cycle: deactivate in the interrupt, forced detach in the event thread", (t) => {
  const b = trace()
    .hello()
    .hostAdd("nic3", "pcmcia-ne2000")
    .attachBegin("ne0", { serial: "nic3", bus: "pcmcia", driver: "ne" })
    .ifAttach("ne0")
    .attachEnd("ne0", { bus: "pcmcia" })
    .acquire("ne0", "bpf0", { kind: "ifnet" })
    .hostRemove("nic3")
    .deactivate("ne0", { context: "interrupt", bus: "pcmcia" })
    .ifDeactivate("ne0")
    .release("ne0", "bpf0", { kind: "ifnet" })
    .detachBegin("ne0", { force: true, thread: "pcic0,0,0", bus: "pcmcia" })
    .ifDetachBegin("ne0")
    .ifDetachEnd("ne0")
    .drainBegin("ne0", "device")
    .drainEnd("ne0", "device")
    .detachEnd("ne0", { thread: "pcic0,0,0" })
    .free("ne0");
  const res = run(b);
  assertClean(t, res, ["pcmcia-deactivate-before-detach", "detach-in-thread-context"]);
  t.is(res.summary.cycles, 1);
});

test("a vetoed drvctl detach, then a forced detach on removal: no verdict", (t) => {
  const b = trace()
    .hello()
    .hostAdd("nic1")
    .netbsdAttach("cdce0", "nic1")
    .acquire("cdce0", "ugen-open", { kind: "device" })
    .detachBegin("cdce0", { force: false, thread: "drvctl" })
    .detachEnd("cdce0", { thread: "drvctl", error: 16 })
    .ifUp("cdce0")
    .acquire("cdce0", "ioctl2", { kind: "ifnet" })
    .release("cdce0", "ioctl2", { kind: "ifnet" })
    .release("cdce0", "ugen-open", { kind: "device" })
    .hostRemove("nic1")
    .netbsdDetach("cdce0");
  const res = run(b);
  assertClean(t, res, ["forced-detach-no-veto", "veto-before-teardown", "no-ref-after-detach-begin"]);
  t.is(res.summary.vetoes, 1);
  t.is(res.summary.cycles, 1);
});

test("the sick case done right: unload detaching while the card is pulled, one detach wins, the other sees ENOENT", (t) => {
  for (const unloadWins of [true, false]) {
    const b = trace().hello().hostAdd("nic1").netbsdAttach("cdce0", "nic1").acquire("cdce0", "bpf0", { kind: "ifnet" });
    b.unloadBegin("if_cdce", ["cdce0"]);
    const winner = unloadWins ? "modunload" : "usb0";
    const loser = unloadWins ? "usb0" : "modunload";
    b.detachBegin("cdce0", { force: !unloadWins, thread: winner })
      .ifDetachBegin("cdce0")
      .hostRemove("nic1")
      .release("cdce0", "bpf0", { kind: "ifnet" })
      .ifDetachEnd("cdce0")
      .drainBegin("cdce0", "device")
      .drainEnd("cdce0", "device")
      .detachEnd("cdce0", { thread: winner })
      .detachBegin("cdce0", { force: unloadWins, thread: loser })
      .detachEnd("cdce0", { thread: loser, error: 2 })
      .free("cdce0")
      .unloadEnd("if_cdce", 0);
    const res = run(b);
    assertClean(t, res, ["free-once", "detach-once", "unload-frees-instances", "single-detach-in-progress"]);
    t.is(res.summary.cycles, 1);
  }
});

test("a clean Linux cycle gives no verdict", (t) => {
  const b = trace()
    .machineStarted()
    .hello({ os: "linux" })
    .hostAdd("nic1")
    .attachBegin("1-1:1.0", { serial: "nic1", driver: "cdc_ether", thread: "kworker" })
    .ifAttach("usb0", "1-1:1.0")
    .attachEnd("1-1:1.0", { driver: "cdc_ether" })
    .acquire("1-1:1.0", "sock3", { kind: "netdev", object: "usb0", desc: "AF_PACKET socket" })
    .hostRemove("nic1")
    .detachBegin("1-1:1.0", { thread: "hub", force: false })
    .ifDetachBegin("usb0", "1-1:1.0")
    .drainBegin("1-1:1.0", "netdev")
    .release("1-1:1.0", "sock3", { kind: "netdev", object: "usb0" })
    .drainEnd("1-1:1.0", "netdev")
    .ifDetachEnd("usb0", "1-1:1.0")
    // free_netdev runs inside usbnet_disconnect: no detach end before the free.
    .free("1-1:1.0");
  const res = run(b, { profile: "linux" });
  assertClean(t, res, ["if-detach-waits-for-psrefs", "free-with-zero-refs", "drain-completes-empty", "free-after-drain", "host-remove-frees"]);
  t.is(res.summary.cycles, 1);
  t.is(res.summary.detaches, 1);
  t.is(res.summary.rules.find((r) => r.id === "pcmcia-deactivate-before-detach")?.status, "not-in-profile");
});

test("joins guest devices to QEMU ids by MAC when the serial is missing", (t) => {
  const b = trace()
    .hello()
    .hostAdd("nic7")
    .attachBegin("cdce2", { mac: macOf("nic7").toUpperCase() })
    .ifAttach("cdce2")
    .attachEnd("cdce2")
    .hostRemove("nic7")
    .netbsdDetach("cdce2");
  const res = run(b);
  assertClean(t, res, ["guest-device-added-by-host"]);
  t.is(res.summary.cycles, 1);
});

test("recorded verdicts in a trace are ignored; replay is deterministic", (t) => {
  const b = trace()
    .hello()
    .recordedVerdict("free-once")
    .hostAdd("nic1")
    .netbsdAttach("cdce0", "nic1")
    .acquire("cdce0", "leaky", { kind: "ifnet" })
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .ifDetachBegin("cdce0")
    .wait(60e9)
    .log("still waiting");
  const records = b.records();
  const a = checkRecords(records, { profile: "netbsd" });
  const c = checkRecords(records, { profile: "netbsd" });
  t.deepEqual(a, c);
  t.false(a.verdicts.some((v) => v.rule === "free-once"), dump(a));
  t.is(a.verdicts[0]?.rule, "host-remove-frees");
});
