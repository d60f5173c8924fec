// Legal NetBSD interleavings the model once flagged (each beside a close
// variant that still breaks the rule): a card pulled during an unforced
// detach, files closed on deadfs after the device was freed, and opens that
// fail between the detach commit and the free.

import test from "ava";
import { trace, type TraceBuilder } from "./builder.js";
import { assertClean, assertFirst, dump, run } from "./helpers.js";

const UGEN = "/dev/ugen0.00";
const ENXIO = 6;
const EBUSY = 16;

/** ne0 on a PCMCIA card, with a socket holding an ifnet psref, and modunload detaching it with flags 0. */
function unloadDetachingNe0(): TraceBuilder {
  return trace()
    .hello()
    .hostAdd("nic3", "pcmcia-ne2000")
    .attachBegin("ne0", { serial: "nic3", bus: "pcmcia", driver: "ne", thread: "pcic0,0,0" })
    .ifAttach("ne0")
    .attachEnd("ne0", { bus: "pcmcia" })
    .acquire("ne0", "sock-ne0", { kind: "ifnet", desc: "socket" })
    .unloadBegin("if_ne", ["ne0"])
    .detachBegin("ne0", { force: false, thread: "modunload", bus: "pcmcia" });
}

test("a card pulled while modunload's detach waits in if_detach: deactivate mid-detach is legal, the event thread's detach sees ENOENT", (t) => {
  const b = unloadDetachingNe0()
    .ifDetachBegin("ne0")
    .drainBegin("ne0", "ifnet", { thread: "modunload" })
    .hostRemove("nic3")
    // DVF_ACTIVE is still set (cleared only after ca_detach returns): config_deactivate runs.
    .deactivate("ne0", { context: "interrupt", bus: "pcmcia" })
    .ifDeactivate("ne0")
    .release("ne0", "sock-ne0", { kind: "ifnet" })
    .drainEnd("ne0", "ifnet", { thread: "modunload" })
    .ifDetachEnd("ne0")
    .drainBegin("ne0", "device", { thread: "modunload" })
    .drainEnd("ne0", "device", { thread: "modunload" })
    .detachEnd("ne0", { thread: "modunload" })
    .detachBegin("ne0", { force: true, thread: "pcic0,0,0", bus: "pcmcia" })
    .detachEnd("ne0", { thread: "pcic0,0,0", error: 2 })
    .free("ne0")
    .unloadEnd("if_ne", 0);
  const res = run(b);
  assertClean(t, res, ["lifecycle-order", "single-detach-in-progress", "detach-once", "free-once", "unload-frees-instances"]);
  t.is(res.summary.cycles, 1);
  t.is(res.summary.liveDevices, 0);
});

test("a deactivate after the detach returned (DVF_ACTIVE already cleared) still breaks lifecycle-order", (t) => {
  const b = unloadDetachingNe0()
    .ifDetachBegin("ne0")
    .release("ne0", "sock-ne0", { kind: "ifnet" })
    .ifDetachEnd("ne0")
    .detachEnd("ne0", { thread: "modunload" })
    .hostRemove("nic3")
    .deactivate("ne0", { context: "interrupt", bus: "pcmcia" });
  const res = run(b);
  assertFirst(t, res, "lifecycle-order", { device: "ne0", nicId: "nic3" });
  t.regex(res.verdicts[0]!.message, /deactivate while ne0 is detached/, dump(res));
});

test("a card pulled during an unforced detach that then vetoes: the device stays deactivated and the forced detach is clean", (t) => {
  const b = unloadDetachingNe0()
    .hostRemove("nic3")
    .deactivate("ne0", { context: "interrupt", bus: "pcmcia" })
    .ifDeactivate("ne0")
    .detachEnd("ne0", { thread: "modunload", error: EBUSY })
    .unloadEnd("if_ne", EBUSY)
    .release("ne0", "sock-ne0", { kind: "ifnet" });
  const res = run(pcmciaForcedDetach(b));
  assertClean(t, res, ["pcmcia-deactivate-before-detach", "veto-before-teardown", "lifecycle-order"]);
  t.is(res.summary.vetoes, 1);
  t.is(res.summary.cycles, 1);
});

test("a mid-detach deactivate outside the interrupt is still caught once the vetoed device is force-detached", (t) => {
  const b = unloadDetachingNe0()
    .hostRemove("nic3")
    .deactivate("ne0", { context: "thread", bus: "pcmcia" })
    .detachEnd("ne0", { thread: "modunload", error: EBUSY })
    .unloadEnd("if_ne", EBUSY)
    .release("ne0", "sock-ne0", { kind: "ifnet" });
  const res = run(pcmciaForcedDetach(b));
  assertFirst(t, res, "pcmcia-deactivate-before-detach", { device: "ne0", nicId: "nic3" });
  t.regex(res.verdicts[0]!.message, /thread context/, dump(res));
});

function pcmciaForcedDetach(b: TraceBuilder): TraceBuilder {
  return b
    .detachBegin("ne0", { force: true, thread: "pcic0,0,0", bus: "pcmcia" })
    .ifDetachBegin("ne0")
    .ifDetachEnd("ne0")
    .drainBegin("ne0", "device", { thread: "pcic0,0,0" })
    .drainEnd("ne0", "device", { thread: "pcic0,0,0" })
    .detachEnd("ne0", { thread: "pcic0,0,0" })
    .free("ne0");
}

/** cdce0 with UGEN open by fd3, unplugged: vdevgone forces one d_close, revokes, and the device is freed. */
function revokedThenFreed(): TraceBuilder {
  return trace()
    .machineStarted()
    .hello()
    .hostAdd("nic1")
    .netbsdAttach("cdce0", "nic1")
    .vnodeOpen(UGEN, "cdce0", "fd3")
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .methodCall(UGEN, "cdce0", "close")
    .revoke(UGEN, "cdce0")
    .netbsdDetach("cdce0", { skipBegin: true });
}

test("a file left on deadfs closes after the device was freed: close 0, no close-once verdict", (t) => {
  const b = revokedThenFreed()
    .deadfsCall(UGEN, "", "read", 5, "fd3")
    .deadfsCall(UGEN, "", "close", 0, "fd3")
    .vnodeClose(UGEN, "", "fd3");
  const res = run(b);
  assertClean(t, res, ["close-once", "deadfs-answers", "no-method-after-revoke"]);
  t.is(res.summary.liveDevices, 0);
});

test("a deadfs call proves the revoke even when the revoke was not reported", (t) => {
  const b = trace()
    .hello()
    .hostAdd("nic1")
    .netbsdAttach("cdce0", "nic1")
    .vnodeOpen(UGEN, "cdce0", "fd3")
    .hostRemove("nic1")
    .netbsdDetach("cdce0")
    .deadfsCall(UGEN, "cdce0", "ioctl", 9, "fd3")
    .vnodeClose(UGEN, "cdce0", "fd3");
  assertClean(t, run(b), ["close-once", "deadfs-answers"]);
});

test("closing a deadfs file twice still breaks close-once", (t) => {
  const b = trace()
    .hello()
    .hostAdd("nic1")
    .netbsdAttach("cdce0", "nic1")
    .vnodeOpen(UGEN, "cdce0", "fd3")
    .vnodeOpen(UGEN, "cdce0", "fd5")
    .hostRemove("nic1")
    .detachBegin("cdce0")
    .methodCall(UGEN, "cdce0", "close")
    .revoke(UGEN, "cdce0")
    .vnodeClose(UGEN, "", "fd3")
    .vnodeClose(UGEN, "cdce0", "fd3");
  const res = run(b);
  assertFirst(t, res, "close-once", { device: "cdce0", holders: ["fd3"] });
  t.is(res.verdicts.length, 1, dump(res));
});

test("failed opens between the detach commit and the free are neither driver calls after revoke nor open files", (t) => {
  const build = (failedOpens: boolean): TraceBuilder => {
    const b = trace()
      .hello()
      .hostAdd("nic1")
      .netbsdAttach("cdce0", "nic1")
      .vnodeOpen(UGEN, "cdce0", "fd3")
      .hostRemove("nic1")
      .detachBegin("cdce0")
      .methodCall(UGEN, "cdce0", "close")
      .revoke(UGEN, "cdce0");
    if (failedOpens) b.vnodeOpen(UGEN, "cdce0", "fd4", ENXIO);
    b.netbsdDetach("cdce0", { skipBegin: true, free: false });
    if (failedOpens) b.vnodeOpen(UGEN, "cdce0", "fd6", ENXIO).vnodeOpen(UGEN, "", "fd7", ENXIO);
    return b.free("cdce0").vnodeClose(UGEN, "", "fd3");
  };
  const res = run(build(true));
  assertClean(t, res, ["no-method-after-revoke", "close-once"]);
  const judged = (r: typeof res): number | undefined => r.summary.rules.find((x) => x.id === "no-method-after-revoke")?.checks;
  t.is(judged(res), judged(run(build(false))), "a failed open is not judged as a call reaching the driver");
});

test("an open that succeeds after revoke is still caught, and a failed open's fd cannot be closed", (t) => {
  const revoked = (): TraceBuilder =>
    trace()
      .hello()
      .hostAdd("nic1")
      .netbsdAttach("cdce0", "nic1")
      .vnodeOpen(UGEN, "cdce0", "fd3")
      .hostRemove("nic1")
      .detachBegin("cdce0")
      .revoke(UGEN, "cdce0");
  assertFirst(t, run(revoked().vnodeOpen(UGEN, "cdce0", "fd4")), "no-method-after-revoke", { device: "cdce0", holders: ["fd4"] });
  const failedThenClosed = trace()
    .hello()
    .hostAdd("nic1")
    .netbsdAttach("cdce0", "nic1")
    .vnodeOpen(UGEN, "cdce0", "fd4", ENXIO)
    .vnodeClose(UGEN, "cdce0", "fd4");
  assertFirst(t, run(failedThenClosed), "close-once", { device: "cdce0", holders: ["fd4"] });
});
