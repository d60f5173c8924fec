// Every rule: a trace that breaks it (the rule fires first, naming device,
// QEMU id and holders) and a close variant that keeps it (no verdict at all).

import test from "ava";
import { RULES } from "../../src/model/index.js";
import { trace, type TraceBuilder } from "./builder.js";
import { assertClean, assertFirst, dump, run, type RunOpts } from "./helpers.js";

const S = 1e9;
const UGEN = "/dev/ugen0.00";

/** Host add of nic1 and a clean NetBSD attach of cdce0. */
function base(): TraceBuilder {
  return trace().machineStarted().hello().hostAdd("nic1").netbsdAttach("cdce0", "nic1");
}

function pcmcia(): TraceBuilder {
  return trace()
    .hello()
    .hostAdd("nic3", "pcmcia-ne2000")
    .attachBegin("ne0", { serial: "nic3", bus: "pcmcia", driver: "ne" })
    .ifAttach("ne0")
    .attachEnd("ne0", { bus: "pcmcia" })
    .hostRemove("nic3");
}

function pcmciaDetach(b: TraceBuilder): TraceBuilder {
  return b
    .detachBegin("ne0", { force: true, thread: "pcic0", bus: "pcmcia" })
    .ifDetachBegin("ne0")
    .ifDetachEnd("ne0")
    .detachEnd("ne0", { thread: "pcic0" })
    .free("ne0");
}

interface Who {
  device?: string;
  nicId?: string;
  holders?: readonly string[];
  side?: "host" | "guest" | "channel";
}

interface Case {
  rule: string;
  bad: () => TraceBuilder;
  good: () => TraceBuilder;
  who: Who;
  opts?: RunOpts;
}

const CASES: Case[] = [
  {
    rule: "no-ref-after-detach-begin",
    bad: () => base().hostRemove("nic1").detachBegin("cdce0").commit("cdce0").acquire("cdce0", "late", { kind: "device", desc: "drvctl -p" }),
    good: () => base().hostRemove("nic1").detachBegin("cdce0").acquireFailed("cdce0", "late").netbsdDetach("cdce0", { skipBegin: true }),
    who: { device: "cdce0", nicId: "nic1", holders: ["late"], side: "guest" },
  },
  {
    rule: "release-only-held",
    bad: () => base().acquire("cdce0", "a", { kind: "device" }).release("cdce0", "b", { kind: "device" }),
    good: () => base().acquire("cdce0", "a", { kind: "device" }).release("cdce0", "a", { kind: "device" }),
    who: { device: "cdce0", nicId: "nic1", holders: ["b"] },
  },
  {
    rule: "drain-completes-empty",
    bad: () =>
      base()
        .acquire("cdce0", "rx-xfer", { kind: "usbnet", desc: "usb_task" })
        .hostRemove("nic1")
        .detachBegin("cdce0")
        .ifDetachBegin("cdce0")
        .ifDetachEnd("cdce0")
        .drainBegin("cdce0", "usbnet")
        .wait(60 * S)
        .drainEnd("cdce0", "usbnet"),
    good: () =>
      base()
        .acquire("cdce0", "rx-xfer", { kind: "usbnet" })
        .hostRemove("nic1")
        .detachBegin("cdce0")
        .ifDetachBegin("cdce0")
        .ifDetachEnd("cdce0")
        .drainBegin("cdce0", "usbnet")
        .release("cdce0", "rx-xfer", { kind: "usbnet" })
        .drainEnd("cdce0", "usbnet")
        .detachEnd("cdce0")
        .free("cdce0"),
    who: { device: "cdce0", nicId: "nic1", holders: ["rx-xfer"] },
    opts: { deadlines: { detachNs: 120 * S } },
  },
  {
    rule: "if-detach-waits-for-psrefs",
    bad: () => base().acquire("cdce0", "bpf0", { kind: "ifnet" }).hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0"),
    good: () =>
      base()
        .acquire("cdce0", "bpf0", { kind: "ifnet" })
        .hostRemove("nic1")
        .detachBegin("cdce0")
        .ifDetachBegin("cdce0")
        .release("cdce0", "bpf0", { kind: "ifnet" })
        .netbsdDetach("cdce0", { skipBegin: true, skipIfBegin: true }),
    who: { device: "cdce0", nicId: "nic1", holders: ["bpf0"] },
  },
  {
    rule: "detach-drains-refs",
    bad: () =>
      base().acquire("cdce0", "open1", { kind: "device" }).hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").detachEnd("cdce0"),
    good: () =>
      base()
        .acquire("cdce0", "open1", { kind: "device" })
        .hostRemove("nic1")
        .detachBegin("cdce0")
        .ifDetachBegin("cdce0")
        .ifDetachEnd("cdce0")
        .release("cdce0", "open1", { kind: "device" })
        .detachEnd("cdce0")
        .free("cdce0"),
    who: { device: "cdce0", nicId: "nic1", holders: ["open1"] },
  },
  {
    rule: "detach-end-after-if-detach",
    bad: () => base().hostRemove("nic1").detachBegin("cdce0").detachEnd("cdce0"),
    good: () => base().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").detachEnd("cdce0").free("cdce0"),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "free-after-drain",
    bad: () => base().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").drainBegin("cdce0", "device").free("cdce0"),
    good: () => base().hostRemove("nic1").netbsdDetach("cdce0"),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    // Detach completion unobserved: a free with a holder left is caught at the free itself.
    rule: "free-with-zero-refs",
    bad: () =>
      trace().hello({ caps: ["free", "kernel-refs"] }).hostAdd("nic1").netbsdAttach("cdce0", "nic1").acquire("cdce0", "open1", { kind: "device" }).hostRemove("nic1").free("cdce0"),
    good: () =>
      trace()
        .hello({ caps: ["free", "kernel-refs"] })
        .hostAdd("nic1")
        .netbsdAttach("cdce0", "nic1")
        .acquire("cdce0", "open1", { kind: "device" })
        .hostRemove("nic1")
        .release("cdce0", "open1", { kind: "device" })
        .free("cdce0"),
    who: { device: "cdce0", nicId: "nic1", holders: ["open1"] },
  },
  {
    rule: "free-once",
    bad: () => base().hostRemove("nic1").netbsdDetach("cdce0").free("cdce0"),
    good: () => base().hostRemove("nic1").netbsdDetach("cdce0"),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "no-event-after-free",
    // The loser of a detach race returns after the winner freed the device.
    bad: () => base().hostRemove("nic1").netbsdDetach("cdce0").detachEnd("cdce0", { thread: "drvctl", error: 2 }),
    good: () => base().hostRemove("nic1").netbsdDetach("cdce0").acquireFailed("cdce0", "late"),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "detach-in-thread-context",
    bad: () => base().hostRemove("nic1").detachBegin("cdce0", { context: "softint" }),
    good: () => base().hostRemove("nic1").netbsdDetach("cdce0", { context: "thread" }),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "no-sleep-in-interrupt",
    bad: () => pcmcia().deactivate("ne0", { bus: "pcmcia" }).drainBegin("ne0", "device", { context: "interrupt" }),
    good: () =>
      pcmciaDetach(pcmcia().acquire("ne0", "x", { kind: "transfer", context: "interrupt" }).release("ne0", "x", { kind: "transfer" }).deactivate("ne0", { bus: "pcmcia" }).drainBegin("ne0", "device").drainEnd("ne0", "device")),
    who: { device: "ne0", nicId: "nic3" },
  },
  {
    rule: "pcmcia-deactivate-before-detach",
    bad: () => pcmciaDetach(pcmcia()),
    good: () => pcmciaDetach(pcmcia().deactivate("ne0", { bus: "pcmcia", context: "interrupt" })),
    who: { device: "ne0", nicId: "nic3" },
  },
  {
    rule: "single-detach-in-progress",
    bad: () => base().detachBegin("cdce0", { force: false, thread: "drvctl" }).hostRemove("nic1").detachBegin("cdce0", { force: true, thread: "usb0" }),
    good: () =>
      base()
        .detachBegin("cdce0", { force: false, thread: "drvctl" })
        .hostRemove("nic1")
        .netbsdDetach("cdce0", { skipBegin: true, free: false, thread: "drvctl" })
        .detachBegin("cdce0", { force: true, thread: "usb0" })
        .detachEnd("cdce0", { thread: "usb0", error: 2 })
        .free("cdce0"),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "detach-once",
    bad: () =>
      base().hostRemove("nic1").netbsdDetach("cdce0", { free: false }).detachBegin("cdce0", { force: false, thread: "modunload" }).detachEnd("cdce0", { thread: "modunload" }),
    good: () =>
      base()
        .hostRemove("nic1")
        .netbsdDetach("cdce0", { free: false })
        .detachBegin("cdce0", { force: false, thread: "modunload" })
        .detachEnd("cdce0", { thread: "modunload", error: 2 })
        .free("cdce0"),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "detach-after-attach-done",
    bad: () => trace().hello().hostAdd("nic1").attachBegin("cdce0", { serial: "nic1" }).hostRemove("nic1").detachBegin("cdce0"),
    good: () => trace().hello().hostAdd("nic1").attachBegin("cdce0", { serial: "nic1" }).hostRemove("nic1").ifAttach("cdce0").attachEnd("cdce0").netbsdDetach("cdce0"),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "forced-detach-no-veto",
    bad: () => base().hostRemove("nic1").detachBegin("cdce0", { force: true }).detachEnd("cdce0", { error: 16 }),
    good: () => base().detachBegin("cdce0", { force: false, thread: "drvctl" }).detachEnd("cdce0", { error: 16, thread: "drvctl" }),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "veto-before-teardown",
    bad: () => base().detachBegin("cdce0", { force: false, thread: "drvctl" }).ifDetachBegin("cdce0").detachEnd("cdce0", { error: 16, thread: "drvctl" }),
    good: () => base().detachBegin("cdce0", { force: false, thread: "drvctl" }).detachEnd("cdce0", { error: 16, thread: "drvctl" }),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "detach-completes",
    bad: () => base().acquire("cdce0", "bpf0", { kind: "ifnet" }).detachBegin("cdce0", { force: false, thread: "drvctl" }).ifDetachBegin("cdce0").wait(31 * S).log("tick"),
    good: () =>
      base()
        .acquire("cdce0", "bpf0", { kind: "ifnet" })
        .detachBegin("cdce0", { force: false, thread: "drvctl" })
        .ifDetachBegin("cdce0")
        .wait(29 * S)
        .release("cdce0", "bpf0", { kind: "ifnet" })
        .netbsdDetach("cdce0", { skipBegin: true, skipIfBegin: true, thread: "drvctl" })
        .wait(31 * S)
        .log("tick"),
    who: { device: "cdce0", nicId: "nic1", holders: ["bpf0"] },
  },
  {
    rule: "no-ifnet-access-after-if-detach",
    bad: () => base().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").ifAccess("cdce0", "multicast task"),
    good: () => base().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifAccess("cdce0", "multicast task").netbsdDetach("cdce0", { skipBegin: true, skipIfBegin: true }),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "usb-task-waited",
    bad: () =>
      base()
        .hostRemove("nic1")
        .detachBegin("cdce0")
        .step("cdce0", "dying")
        .step("cdce0", "task-wait")
        .acquire("cdce0", "mcasttask", { kind: "usb-task", desc: "multicast task" })
        .step("cdce0", "ether-ifdetach")
        .ifDetachBegin("cdce0")
        .ifDetachEnd("cdce0")
        .step("cdce0", "refs-drained"),
    good: () =>
      base()
        .hostRemove("nic1")
        .detachBegin("cdce0")
        .step("cdce0", "dying")
        .step("cdce0", "task-wait")
        .acquire("cdce0", "mcasttask", { kind: "usb-task", desc: "multicast task" })
        .step("cdce0", "ether-ifdetach")
        .ifDetachBegin("cdce0")
        .ifDetachEnd("cdce0")
        .step("cdce0", "task-wait-again")
        .release("cdce0", "mcasttask", { kind: "usb-task" })
        .step("cdce0", "refs-drained")
        .commit("cdce0")
        .drainBegin("cdce0", "device")
        .drainEnd("cdce0", "device")
        .free("cdce0")
        .detachEnd("cdce0"),
    who: { device: "cdce0", nicId: "nic1", holders: ["mcasttask"] },
  },
  {
    rule: "no-method-after-revoke",
    bad: () => base().vnodeOpen(UGEN, "cdce0", "fd3").hostRemove("nic1").detachBegin("cdce0").revoke(UGEN, "cdce0").methodCall(UGEN, "cdce0", "read", "fd3"),
    good: () =>
      base().vnodeOpen(UGEN, "cdce0", "fd3").hostRemove("nic1").detachBegin("cdce0").revoke(UGEN, "cdce0").deadfsCall(UGEN, "cdce0", "read", 5, "fd3").netbsdDetach("cdce0", { skipBegin: true }),
    who: { device: "cdce0", nicId: "nic1", holders: ["fd3"] },
  },
  {
    rule: "deadfs-answers",
    bad: () => base().vnodeOpen(UGEN, "cdce0", "fd3").revoke(UGEN, "cdce0").deadfsCall(UGEN, "cdce0", "ioctl", 0, "fd3"),
    good: () => base().vnodeOpen(UGEN, "cdce0", "fd3").revoke(UGEN, "cdce0").deadfsCall(UGEN, "cdce0", "ioctl", 9, "fd3").deadfsCall(UGEN, "cdce0", "open", 6, "fd4"),
    who: { device: "cdce0", nicId: "nic1", holders: ["fd3"] },
  },
  {
    rule: "close-once",
    bad: () => base().vnodeOpen(UGEN, "cdce0", "fd3").vnodeClose(UGEN, "cdce0", "fd3").vnodeClose(UGEN, "cdce0", "fd3"),
    good: () => base().vnodeOpen(UGEN, "cdce0", "fd3").vnodeClose(UGEN, "cdce0", "fd3"),
    who: { device: "cdce0", nicId: "nic1", holders: ["fd3"] },
  },
  {
    rule: "unload-frees-instances",
    bad: () => base().unloadBegin("if_cdce", ["cdce0"]).unloadEnd("if_cdce", 0),
    good: () =>
      base()
        .unloadBegin("if_cdce")
        .netbsdDetach("cdce0", { force: false, thread: "modunload" })
        .unloadEnd("if_cdce", 0)
        .hostRemove("nic1"),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "unload-completes",
    bad: () => base().unloadBegin("if_cdce", ["cdce0"]).detachBegin("cdce0", { force: false, thread: "modunload" }).ifDetachBegin("cdce0").wait(40 * S).log("tick"),
    good: () => base().unloadBegin("if_cdce", ["cdce0"]).detachBegin("cdce0", { force: false, thread: "modunload" }).detachEnd("cdce0", { error: 16, thread: "modunload" }).unloadEnd("if_cdce", 16).wait(40 * S).log("tick"),
    who: { device: "", nicId: "" },
  },
  {
    rule: "sick-case-completes",
    bad: () =>
      base()
        .acquire("cdce0", "bpf0", { kind: "ifnet" })
        .unloadBegin("if_cdce", ["cdce0"])
        .detachBegin("cdce0", { force: false, thread: "modunload" })
        .hostRemove("nic1")
        .ifDetachBegin("cdce0")
        .wait(40 * S)
        .log("tick"),
    good: () =>
      base()
        .acquire("cdce0", "bpf0", { kind: "ifnet" })
        .unloadBegin("if_cdce", ["cdce0"])
        .detachBegin("cdce0", { force: false, thread: "modunload" })
        .hostRemove("nic1")
        .ifDetachBegin("cdce0")
        .release("cdce0", "bpf0", { kind: "ifnet" })
        .netbsdDetach("cdce0", { skipBegin: true, skipIfBegin: true, thread: "modunload", free: false })
        .detachBegin("cdce0", { thread: "usb0" })
        .detachEnd("cdce0", { thread: "usb0", error: 2 })
        .free("cdce0")
        .unloadEnd("if_cdce", 0)
        .wait(40 * S)
        .log("tick"),
    who: { device: "cdce0", nicId: "nic1", holders: ["bpf0"] },
  },
  {
    rule: "lifecycle-order",
    bad: () => base().attachEnd("cdce0"),
    good: () => base(),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "guest-no-panic",
    bad: () => base().panic("config_detach: forced detach of cdce0 failed (16)", "cdce0"),
    good: () => base(),
    who: { device: "cdce0", nicId: "nic1", side: "guest" },
  },
  {
    rule: "attach-succeeds",
    bad: () => trace().hello().hostAdd("nic1").attachBegin("cdce0", { serial: "nic1" }).attachEnd("cdce0", { error: 6 }),
    good: () => base(),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "host-add-attaches",
    bad: () => trace().machineStarted().hello().hostAdd("nic1").wait(31 * S).log("tick"),
    good: () => trace().machineStarted().hello().hostAdd("nic1").wait(29 * S).netbsdAttach("cdce0", "nic1").wait(31 * S).log("tick"),
    who: { device: "", nicId: "nic1" },
  },
  {
    rule: "host-remove-detaches",
    bad: () => base().hostRemove("nic1").wait(31 * S).log("tick"),
    good: () => base().hostRemove("nic1").wait(20 * S).netbsdDetach("cdce0").wait(31 * S).log("tick"),
    who: { device: "cdce0", nicId: "nic1" },
  },
  {
    rule: "host-remove-frees",
    bad: () => base().acquire("cdce0", "bpf0", { kind: "ifnet", desc: "bpf fd 5" }).hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").wait(31 * S).log("tick"),
    good: () => base().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").wait(20 * S).netbsdDetach("cdce0", { skipBegin: true, skipIfBegin: true }).wait(31 * S).log("tick"),
    who: { device: "cdce0", nicId: "nic1", holders: ["bpf0"] },
  },
  {
    rule: "guest-device-added-by-host",
    bad: () => trace().hello().hostAdd("nic1").attachBegin("cdce5", { serial: "nic9", mac: "52:54:00:00:00:99" }),
    good: () => trace().hello().hostAdd("nic9").attachBegin("cdce5", { serial: "nic9" }),
    who: { device: "cdce5", nicId: "" },
  },
  {
    rule: "qemu-accepts-command",
    bad: () => trace().hello().hostAdd("nic1", "usb-net", { outcome: "refused", message: "Bus 'usb-bus.0' does not support hotplugging" }),
    good: () => base(),
    who: { nicId: "nic1", side: "host" },
  },
  {
    rule: "host-remove-finalised",
    bad: () => base().hostRemove("nic1", { deleted: false, outcome: null }).netbsdDetach("cdce0").wait(11 * S).log("tick"),
    good: () => base().hostRemove("nic1", { deleted: false, outcome: null }).netbsdDetach("cdce0").wait(9 * S).deviceDeleted("nic1").wait(5 * S).log("tick"),
    who: { nicId: "nic1", side: "host" },
  },
  {
    rule: "host-action-completes",
    bad: () => trace().hello().hostAdd("nic1", "usb-net", { outcome: "failed", message: "QMP connection lost" }),
    good: () => base(),
    who: { nicId: "nic1", side: "host" },
  },
  {
    rule: "machine-does-not-crash",
    bad: () => base().machineExited(139, "SIGSEGV"),
    good: () => base().machineStopped(),
    who: { side: "host" },
  },
  {
    rule: "machine-responsive",
    bad: () => base().machineUnresponsive(5 * S).log("tick"),
    good: () => base().machineResponsive().wait(5 * S).log("tick"),
    who: { side: "host" },
  },
  {
    rule: "profile-matches-guest",
    bad: () => trace().hello({ os: "linux" }),
    good: () => trace().hello({ os: "netbsd" }),
    who: { side: "host" },
  },
  {
    rule: "no-frames-lost",
    bad: () => base().seqGap(9, 14),
    good: () => base().heartbeat(0, 0),
    who: { side: "channel" },
  },
  {
    rule: "guest-telemetry-present",
    bad: () => trace().machineStarted().hostAdd("nic1").wait(121 * S).hostAdd("nic2"),
    good: () => trace().machineStarted().wait(100 * S).hello().hostAdd("nic1").netbsdAttach("cdce0", "nic1").wait(121 * S).log("tick"),
    who: { side: "channel" },
  },
  {
    rule: "device-idle-after-detach",
    bad: () => base().deviceTransfers("nic1", 40, 9, 1).netbsdDetach("cdce0").deviceTransfers("nic1", 44, 9, 1).deviceTransfers("nic1", 45, 9, 1),
    good: () => base().deviceTransfers("nic1", 40, 9, 1).netbsdDetach("cdce0").deviceTransfers("nic1", 44, 9, 1).deviceTransfers("nic1", 44, 9, 1),
    who: { device: "cdce0", nicId: "nic1", side: "guest" },
  },
  {
    rule: "commands-acknowledged",
    bad: () => base().ackTimeout(),
    good: () => base().log("ack"),
    who: { side: "channel" },
  },
];

test("every rule the model judges has a case here", (t) => {
  const covered = new Set(CASES.map((c) => c.rule));
  // Rules the trace reader judges are tested with damaged traces (test/trace/damage.test.ts).
  t.deepEqual(RULES.filter((r) => r.judgedBy === "model").map((r) => r.id).filter((id) => !covered.has(id)), []);
  t.deepEqual(RULES.filter((r) => r.judgedBy !== "model").map((r) => r.id), ["trace-intact"]);
});

for (const c of CASES) {
  test(`${c.rule}: breaking trace fires it first`, (t) => {
    const res = run(c.bad(), c.opts);
    assertFirst(t, res, c.rule, c.who);
  });
  test(`${c.rule}: keeping trace gives no verdict`, (t) => {
    const res = run(c.good(), c.opts);
    t.deepEqual(res.verdicts.map((v) => v.rule), [], dump(res));
    const st = res.summary.rules.find((r) => r.id === c.rule)?.status;
    t.is(st, "passed", "the keeping trace gives the rule a case to judge");
  });
}
