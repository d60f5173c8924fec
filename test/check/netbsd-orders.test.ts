// Issue #11 points 1-7: each order NetBSD's code really produces is clean,
// and the bug next to it is caught first by its rule. The legal orders come
// from docs/netbsd.md (and §9 there: measured on real NetBSD kernel code).

import test from "ava";
import { describeEvent } from "../../src/model/index.js";
import { recordToEvent } from "../../src/check/adapter.js";
import { BASE_CAPS, trace, type TraceBuilder } from "./builder.js";
import { assertClean, assertFirst, dump, run } from "./helpers.js";

const S = 1e9;
const ENOENT = 2;
const EBUSY = 16;
const UGEN = "/dev/ugen0.00";

/** nic1 attached as cdce0; `old` = an agent without the commit point, steps and flags. */
function usb(old = false): TraceBuilder {
  return trace().machineStarted().hello(old ? { caps: BASE_CAPS } : {}).hostAdd("nic1").netbsdAttach("cdce0", "nic1");
}

function pcmcia(): TraceBuilder {
  return trace()
    .hello()
    .hostAdd("nic3", "pcmcia-ne2000")
    .attachBegin("ne0", { serial: "nic3", bus: "pcmcia", driver: "ne" })
    .ifAttach("ne0")
    .attachEnd("ne0", { bus: "pcmcia" });
}

// ---------------------------------------------------------------- point 1: ifnet psrefs until if_deactivate

test("1 legal: a psref taken after config_detach began, before if_detach, is drained by if_detach", (t) => {
  const b = usb()
    .hostRemove("nic1")
    .netbsdDetachReal("cdce0", {
      between: (x) => x.acquire("cdce0", "sock7", { kind: "ifnet", desc: "socket (if_get)" }),
      inDrain: (x) => x.wait(S).release("cdce0", "sock7", { kind: "ifnet" }),
    });
  assertClean(t, run(b), ["no-ref-after-detach-begin", "if-detach-waits-for-psrefs", "free-after-drain"]);
});

test("1 legal without steps or commit: psrefs and usbnet refs during the detach's early steps", (t) => {
  const b = usb(true)
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .acquire("cdce0", "sock7", { kind: "ifnet" })
    .acquire("cdce0", "ioctl", { kind: "usbnet" })
    .release("cdce0", "ioctl", { kind: "usbnet" })
    .ifDetachBegin("cdce0")
    .drainBegin("cdce0", "ifnet")
    .release("cdce0", "sock7", { kind: "ifnet" })
    .drainEnd("cdce0", "ifnet")
    .ifDetachEnd("cdce0")
    .drainBegin("cdce0", "device")
    .drainEnd("cdce0", "device")
    .free("cdce0")
    .detachEnd("cdce0");
  assertClean(t, run(b), ["no-ref-after-detach-begin"]);
});

test("1 bug: a psref taken after if_deactivate breaks no-ref-after-detach-begin", (t) => {
  const b = usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").acquire("cdce0", "sock7", { kind: "ifnet" });
  assertFirst(t, run(b), "no-ref-after-detach-begin", { device: "cdce0", holders: ["sock7"] });
  const ifa = usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").acquire("cdce0", "ifa0", { kind: "ifaddr", object: "cdce0" });
  assertFirst(t, run(ifa), "no-ref-after-detach-begin", { device: "cdce0", holders: ["ifa0"] });
});

// ---------------------------------------------------------------- point 2: device refs until the commit

function pcmciaRemoval(between: (b: TraceBuilder) => TraceBuilder, inDrain: (b: TraceBuilder) => TraceBuilder): TraceBuilder {
  let b = pcmcia().hostRemove("nic3").deactivate("ne0", { bus: "pcmcia" }).ifDeactivate("ne0");
  b = between(b);
  b = b.detachBegin("ne0", { force: true, thread: "pcic0,0,0", bus: "pcmcia" }).ifDetachBegin("ne0").ifDetachEnd("ne0").commit("ne0", { thread: "pcic0,0,0" }).drainBegin("ne0", "device");
  b = inDrain(b);
  return b.drainEnd("ne0", "device").free("ne0").detachEnd("ne0", { thread: "pcic0,0,0" });
}

test("2 legal: device_lookup_acquire between the PCMCIA deactivate and the commit is drained by config_detach", (t) => {
  const b = pcmciaRemoval(
    (x) => x.acquire("ne0", "drvctl-p", { kind: "device", desc: "device_lookup_acquire" }),
    (x) => x.release("ne0", "drvctl-p", { kind: "device" }),
  );
  assertClean(t, run(b), ["no-ref-after-detach-begin", "pcmcia-deactivate-before-detach", "detach-drains-refs"]);
});

test("2 bug: device_lookup_acquire succeeding after config_detach_commit breaks no-ref-after-detach-begin", (t) => {
  const b = pcmcia()
    .hostRemove("nic3")
    .deactivate("ne0", { bus: "pcmcia" })
    .detachBegin("ne0", { force: true, thread: "pcic0,0,0", bus: "pcmcia" })
    .ifDetachBegin("ne0")
    .ifDetachEnd("ne0")
    .commit("ne0")
    .acquire("ne0", "late", { kind: "device" });
  assertFirst(t, run(b), "no-ref-after-detach-begin", { device: "ne0", holders: ["late"] });
  // Without COMMIT the localcount drain is the latest commit point.
  const old = pcmcia().hello({ caps: BASE_CAPS }).hostRemove("nic3").deactivate("ne0", { bus: "pcmcia" }).detachBegin("ne0", { bus: "pcmcia" }).ifDetachBegin("ne0").ifDetachEnd("ne0").drainBegin("ne0", "device").acquire("ne0", "late", { kind: "device" });
  assertFirst(t, run(old), "no-ref-after-detach-begin", { device: "ne0", holders: ["late"] });
});

// ---------------------------------------------------------------- point 3: a waiter vs two detaches

test("3 legal: a second config_detach sleeps in config_detach_enter, then gets ENOENT; its deviter defers the free", (t) => {
  const b = usb()
    .hostRemove("nic1")
    .detachBegin("cdce0", { thread: "usb0" })
    .detachWait("cdce0", { thread: "drvctl" })
    .ifDetachBegin("cdce0")
    .ifDetachEnd("cdce0")
    .commit("cdce0")
    .drainBegin("cdce0", "device")
    .drainEnd("cdce0", "device")
    .detachEnd("cdce0", { thread: "usb0", deferred: true })
    .detachEnd("cdce0", { thread: "drvctl", error: ENOENT })
    .free("cdce0");
  assertClean(t, run(b), ["single-detach-in-progress", "detach-once"]);
});

test("3 legal: a sleeper waiting for attach to finish runs the detach itself, and one after a veto does too", (t) => {
  const b = trace()
    .hello()
    .hostAdd("nic1")
    .attachBegin("cdce0", { serial: "nic1" })
    .detachWait("cdce0", { thread: "drvctl" })
    .ifAttach("cdce0")
    .attachEnd("cdce0")
    .detachBegin("cdce0", { thread: "drvctl", force: false })
    .detachEnd("cdce0", { thread: "drvctl", error: EBUSY })
    .hostRemove("nic1")
    .netbsdDetachReal("cdce0");
  assertClean(t, run(b), ["detach-after-attach-done", "forced-detach-no-veto"]);
});

test("3 bug: two DETACH_BEGINs at once, or a second if_detach, break single-detach-in-progress", (t) => {
  const two = usb().hostRemove("nic1").detachBegin("cdce0", { thread: "usb0" }).detachBegin("cdce0", { thread: "drvctl", force: false });
  assertFirst(t, run(two), "single-detach-in-progress", { device: "cdce0" });
  const ifTwice = usb()
    .hostRemove("nic1")
    .detachBegin("cdce0", { thread: "usb0" })
    .detachWait("cdce0", { thread: "drvctl" })
    .ifDetachBegin("cdce0")
    .ifDetachEnd("cdce0")
    .ifDetachBegin("cdce0");
  assertFirst(t, run(ifTwice), "single-detach-in-progress", { device: "cdce0" });
});

test("3 bug: the winner frees the device under the sleeper, which wakes on freed memory", (t) => {
  const b = usb()
    .hostRemove("nic1")
    .detachBegin("cdce0", { thread: "usb0" })
    .detachWait("cdce0", { thread: "drvctl" })
    .ifDetachBegin("cdce0")
    .ifDetachEnd("cdce0")
    .commit("cdce0")
    .drainBegin("cdce0", "device")
    .drainEnd("cdce0", "device")
    .free("cdce0")
    .detachEnd("cdce0", { thread: "usb0" })
    .detachEnd("cdce0", { thread: "drvctl", error: ENOENT });
  assertFirst(t, run(b), "no-event-after-free", { device: "cdce0" });
  t.regex(run(b).verdicts[0]!.message, /sleeping in config_detach_enter/);
});

// ---------------------------------------------------------------- point 4: FREE inside config_detach

test("4 legal: NetBSD frees inside config_detach (FREE before DETACH_END(0)), or later when an iterator defers it", (t) => {
  assertClean(t, run(usb().hostRemove("nic1").netbsdDetachReal("cdce0")), ["free-after-drain", "no-event-after-free", "free-once", "host-remove-frees"]);
  assertClean(t, run(usb(true).hostRemove("nic1").netbsdDetach("cdce0")), ["free-after-drain"]);
  const deferred = usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").commit("cdce0").detachEnd("cdce0", { deferred: true }).free("cdce0");
  assertClean(t, run(deferred), ["free-after-drain"]);
});

test("4 bug: a free before the localcount drain or during if_detach breaks free-after-drain; a second return after the free is use after free", (t) => {
  const early = usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").commit("cdce0").drainBegin("cdce0", "device").free("cdce0");
  assertFirst(t, run(early), "free-after-drain", { device: "cdce0" });
  const inIf = usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").free("cdce0");
  assertFirst(t, run(inIf), "free-after-drain", { device: "cdce0" });
  const twice = usb().hostRemove("nic1").netbsdDetachReal("cdce0").detachEnd("cdce0");
  assertFirst(t, run(twice), "no-event-after-free", { device: "cdce0" });
});

test("4 legacy softc refcount: a leak is judged by detach-drains-refs and free-with-zero-refs", (t) => {
  const atEnd = usb()
    .acquire("cdce0", "sc_refcnt:ioctl", { kind: "softc-refcnt" })
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .ifDetachBegin("cdce0")
    .ifDetachEnd("cdce0")
    .detachEnd("cdce0");
  assertFirst(t, run(atEnd), "detach-drains-refs", { device: "cdce0", holders: ["sc_refcnt:ioctl"] });
  const atFree = usb()
    .acquire("cdce0", "sc_refcnt:ioctl", { kind: "softc-refcnt" })
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .ifDetachBegin("cdce0")
    .ifDetachEnd("cdce0")
    .free("cdce0");
  assertFirst(t, run(atFree), "free-with-zero-refs", { device: "cdce0", holders: ["sc_refcnt:ioctl"] });
});

test("devmon's device-detach report before the localcount drain ended breaks detach-drains-refs", (t) => {
  const b = usb()
    .acquire("cdce0", "open", { kind: "device" })
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .ifDetachBegin("cdce0")
    .ifDetachEnd("cdce0")
    .commit("cdce0")
    .drainBegin("cdce0", "device")
    .detachReported("cdce0");
  assertFirst(t, run(b), "detach-drains-refs", { device: "cdce0", holders: ["open"] });
});

// ---------------------------------------------------------------- point 5: built-in modules

test("5 legal: unloading a built-in driver detaches nothing and cdce0 keeps running; the agent's empty list is trusted", (t) => {
  const b = usb()
    .unloadBegin("if_cdce", [], { builtin: true })
    .unloadEnd("if_cdce", 0, { builtin: true })
    .unloadBegin("if_cdce", [])
    .unloadEnd("if_cdce", 0)
    .acquire("cdce0", "sock", { kind: "ifnet" })
    .release("cdce0", "sock", { kind: "ifnet" })
    .hostRemove("nic1")
    .netbsdDetachReal("cdce0");
  assertClean(t, run(b), ["unload-frees-instances", "unload-completes", "no-ref-after-detach-begin"]);
});

test("5 veto reasons are told apart; a listed instance left attached by a successful unload is caught", (t) => {
  const dep = usb().unloadBegin("if_cdce", ["cdce0"]).unloadEnd("if_cdce", EBUSY, { veto: "dependents" });
  const res = run(dep);
  assertClean(t, res, ["unload-completes"]);
  const recs = dep.records();
  const last = recordToEvent(recs[recs.length - 1]!, recs.length - 1)!;
  t.regex(describeEvent(last), /error 16 \(dependents\)/);
  const refused = usb().unloadBegin("if_cdce", ["cdce0"]).detachBegin("cdce0", { force: false, thread: "modunload" }).detachEnd("cdce0", { thread: "modunload", error: EBUSY }).unloadEnd("if_cdce", EBUSY, { veto: "detach-refused" });
  assertClean(t, run(refused), ["veto-before-teardown"]);
  const bad = usb().unloadBegin("if_cdce", ["cdce0"]).unloadEnd("if_cdce", 0);
  assertFirst(t, run(bad), "unload-frees-instances", { device: "cdce0" });
});

// ---------------------------------------------------------------- point 6: d_close twice

test("6 legal: the revoke's forced close is the one d_close; the process's close then goes to deadfs", (t) => {
  const b = usb()
    .vnodeOpen(UGEN, "cdce0", "fd3")
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .methodCall(UGEN, "cdce0", "close", "", { forced: true })
    .revoke(UGEN, "cdce0")
    .deadfsCall(UGEN, "cdce0", "close", 0, "fd3")
    .vnodeClose(UGEN, "cdce0", "fd3")
    .netbsdDetachReal("cdce0", { skipBegin: true });
  assertClean(t, run(b), ["close-once", "no-method-after-revoke"]);
  // An agent without vnode flags reporting the forced close after REVOKE.
  const noFlags = usb(true)
    .vnodeOpen(UGEN, "cdce0", "fd3")
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .revoke(UGEN, "cdce0")
    .methodCall(UGEN, "cdce0", "close")
    .vnodeClose(UGEN, "cdce0", "fd3")
    .netbsdDetach("cdce0", { skipBegin: true });
  assertClean(t, run(noFlags), ["close-once", "no-method-after-revoke"]);
  const lastCloseFirst = usb().vnodeOpen(UGEN, "cdce0", "fd3").methodCall(UGEN, "cdce0", "close", "fd3").vnodeClose(UGEN, "cdce0", "fd3").hostRemove("nic1").detachBegin("cdce0").revoke(UGEN, "cdce0").netbsdDetachReal("cdce0", { skipBegin: true });
  assertClean(t, run(lastCloseFirst), ["close-once"]);
});

test("6 bug: the last close and the revoke both reach d_close breaks close-once", (t) => {
  const b = usb()
    .vnodeOpen(UGEN, "cdce0", "fd3")
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .methodCall(UGEN, "cdce0", "close", "fd3")
    .methodCall(UGEN, "cdce0", "close", "", { forced: true })
    .revoke(UGEN, "cdce0");
  assertFirst(t, run(b), "close-once", { device: "cdce0" });
});

test("deadfs read: 0 on a tty, EIO otherwise, strict only when the agent reports the tty flag", (t) => {
  const revoked = (b: TraceBuilder): TraceBuilder => b.vnodeOpen(UGEN, "cdce0", "fd3").hostRemove("nic1").detachBegin("cdce0").methodCall(UGEN, "cdce0", "close", "", { forced: true }).revoke(UGEN, "cdce0");
  assertClean(t, run(revoked(usb()).deadfsCall(UGEN, "cdce0", "read", 0, "fd3", { tty: true }).vnodeClose(UGEN, "cdce0", "fd3").netbsdDetachReal("cdce0", { skipBegin: true })), ["deadfs-answers"]);
  assertFirst(t, run(revoked(usb()).deadfsCall(UGEN, "cdce0", "read", 0, "fd3")), "deadfs-answers", { device: "cdce0" });
  assertFirst(t, run(revoked(usb()).deadfsCall(UGEN, "cdce0", "read", 5, "fd3", { tty: true })), "deadfs-answers", { device: "cdce0" });
  assertClean(t, run(revoked(usb(true)).deadfsCall(UGEN, "cdce0", "read", 0, "fd3").vnodeClose(UGEN, "cdce0", "fd3").netbsdDetach("cdce0", { skipBegin: true })), ["deadfs-answers"]);
});

// ---------------------------------------------------------------- point 7: the routing socket's departure

test("7 legal: the departure before the drain ends while a psref keeps config_detach waiting (7.x), and after it (10.x)", (t) => {
  const held = usb()
    .acquire("cdce0", "sock7", { kind: "ifnet" })
    .hostRemove("nic1")
    .netbsdDetachReal("cdce0", { inDrain: (x) => x.wait(0.98 * S).release("cdce0", "sock7", { kind: "ifnet" }) });
  assertClean(t, run(held), ["if-detach-waits-for-psrefs", "detach-completes"]);
  assertClean(t, run(usb().hostRemove("nic1").netbsdDetachReal("cdce0", { departureAfterDrain: true })), ["host-remove-frees"]);
});

test("7 legal: a departure the agent reads after the free, or none at all, is no lost detach", (t) => {
  const late = usb().hostRemove("nic1").netbsdDetach("cdce0").departure("cdce0").wait(31 * S).log("tick");
  assertClean(t, run(late), ["host-remove-detaches", "no-event-after-free"]);
  const none = usb(true).hostRemove("nic1").netbsdDetach("cdce0").wait(31 * S).log("tick");
  assertClean(t, run(none), ["host-remove-detaches"]);
});

test("7 bug: a departure does not stand for a detach: a device never detached is still a lost detach", (t) => {
  const b = usb().hostRemove("nic1").departure("cdce0").wait(31 * S).log("tick");
  const res = run(b);
  assertFirst(t, res, "host-remove-detaches", { device: "cdce0", nicId: "nic1" });
  t.true(res.verdicts.length >= 1, dump(res));
});

test("a veto after config_detach_commit breaks veto-before-teardown; one before it leaves the device running", (t) => {
  const late = usb().detachBegin("cdce0", { force: false, thread: "drvctl" }).commit("cdce0", { thread: "drvctl" }).detachEnd("cdce0", { thread: "drvctl", error: EBUSY });
  assertFirst(t, run(late), "veto-before-teardown", { device: "cdce0" });
  const early = usb()
    .detachBegin("cdce0", { force: false, thread: "drvctl" })
    .detachEnd("cdce0", { thread: "drvctl", error: EBUSY })
    .acquire("cdce0", "sock", { kind: "ifnet" })
    .release("cdce0", "sock", { kind: "ifnet" })
    .hostRemove("nic1")
    .netbsdDetachReal("cdce0");
  assertClean(t, run(early), ["veto-before-teardown", "no-ref-after-detach-begin"]);
});

test("3 an agent without DETACH_WAIT reporting both callers at config_detach's entry: legal until the work is done twice", (t) => {
  const waiter = (b: TraceBuilder): TraceBuilder =>
    b.hostRemove("nic1").detachBegin("cdce0", { thread: "usb0" }).detachBegin("cdce0", { thread: "drvctl", force: false }).ifDetachBegin("cdce0").ifDetachEnd("cdce0");
  const clean = waiter(usb(true)).drainBegin("cdce0", "device").drainEnd("cdce0", "device").detachEnd("cdce0", { thread: "usb0" }).detachEnd("cdce0", { thread: "drvctl", error: ENOENT }).free("cdce0");
  assertClean(t, run(clean), ["single-detach-in-progress", "detach-once"]);
  assertFirst(t, run(waiter(usb(true)).ifDetachBegin("cdce0")), "single-detach-in-progress", { device: "cdce0" });
  const twice = waiter(usb(true)).detachEnd("cdce0", { thread: "usb0" }).detachEnd("cdce0", { thread: "drvctl" });
  assertFirst(t, run(twice), "detach-once", { device: "cdce0" });
  // The sleeper's report may come before the winner's begin; the winner then defers the free.
  const early = usb()
    .hostRemove("nic1")
    .detachWait("cdce0", { thread: "drvctl" })
    .detachBegin("cdce0", { thread: "usb0" })
    .ifDetachBegin("cdce0")
    .ifDetachEnd("cdce0")
    .commit("cdce0")
    .drainBegin("cdce0", "device")
    .drainEnd("cdce0", "device")
    .detachEnd("cdce0", { thread: "usb0", deferred: true })
    .detachEnd("cdce0", { thread: "drvctl", error: ENOENT })
    .free("cdce0");
  assertClean(t, run(early), ["single-detach-in-progress"]);
});

test("a trace that begins in the middle of a detach adopts the device at its commit or step quietly", (t) => {
  const b = trace().hello().step("cdce0", "task-wait-again").commit("cdce0").drainBegin("cdce0", "device").drainEnd("cdce0", "device").detachReported("cdce0").free("cdce0").detachEnd("cdce0");
  assertClean(t, run(b));
});
