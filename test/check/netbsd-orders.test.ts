// Issue #11 points 1-7 as a table: each order NetBSD's code really produces
// is clean, and the bug next to it is caught first by its rule. Each row names
// the fact in docs/netbsd.md its orders come from ("measured" there: recorded
// on real NetBSD kernel code).

import { readFileSync } from "node:fs";
import test, { type ExecutionContext } from "ava";
import { describeEvent, type CheckResult, type RuleId } from "../../src/model/index.js";
import { recordToEvent } from "../../src/check/index.js";
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

/** An order NetBSD produces: no verdict, and the rules named were judged and passed. */
interface Legal {
  trace: () => TraceBuilder;
  passes: readonly RuleId[];
  /** What else the run must show. */
  also?: (t: ExecutionContext, res: CheckResult, b: TraceBuilder) => void;
}

/** The bug beside it: its rule is the first verdict, on the device (and holders) named. */
interface Buggy {
  trace: () => TraceBuilder;
  first: RuleId;
  who: { device?: string; nicId?: string; holders?: readonly string[] };
  also?: (t: ExecutionContext, res: CheckResult) => void;
}

interface Row {
  /** Issue #11's point, or "-" for an order that point's neighbours share. */
  point: string;
  /** The anchor in docs/netbsd.md holding the fact. */
  anchor: string;
  what: string;
  legal: readonly Legal[];
  buggy: readonly Buggy[];
}

function pcmciaRemoval(between: (b: TraceBuilder) => TraceBuilder, inDrain: (b: TraceBuilder) => TraceBuilder): TraceBuilder {
  let b = pcmcia().hostRemove("nic3").deactivate("ne0", { bus: "pcmcia" }).ifDeactivate("ne0");
  b = between(b);
  b = b.detachBegin("ne0", { force: true, thread: "pcic0,0,0", bus: "pcmcia" }).ifDetachBegin("ne0").ifDetachEnd("ne0").commit("ne0", { thread: "pcic0,0,0" }).drainBegin("ne0", "device");
  b = inDrain(b);
  return b.drainEnd("ne0", "device").free("ne0").detachEnd("ne0", { thread: "pcic0,0,0" });
}

/** A node open on cdce0, revoked by its detach (the revoke's forced close was the one d_close). */
const revoked = (b: TraceBuilder): TraceBuilder =>
  b.vnodeOpen(UGEN, "cdce0", "fd3").hostRemove("nic1").detachBegin("cdce0").methodCall(UGEN, "cdce0", "close", "", { forced: true }).revoke(UGEN, "cdce0");

/** usb0's detach runs to its return while drvctl sleeps; the sleeper's deviter defers the free past both returns. */
const winnerDefersFree = (b: TraceBuilder): TraceBuilder =>
  b
    .ifDetachBegin("cdce0")
    .ifDetachEnd("cdce0")
    .commit("cdce0")
    .drainBegin("cdce0", "device")
    .drainEnd("cdce0", "device")
    .detachEnd("cdce0", { thread: "usb0", deferred: true })
    .detachEnd("cdce0", { thread: "drvctl", error: ENOENT })
    .free("cdce0");

/** Both callers reported at config_detach's entry by an agent without DETACH_WAIT. */
const bothAtEntry = (b: TraceBuilder): TraceBuilder =>
  b.hostRemove("nic1").detachBegin("cdce0", { thread: "usb0" }).detachBegin("cdce0", { thread: "drvctl", force: false }).ifDetachBegin("cdce0").ifDetachEnd("cdce0");

const ROWS: readonly Row[] = [
  {
    point: "1",
    anchor: "if-get",
    what: "ifnet psrefs may be taken until if_deactivate (if_detach's begin), not only until the device's detach began",
    legal: [
      {
        trace: () =>
          usb()
            .hostRemove("nic1")
            .netbsdDetachReal("cdce0", {
              between: (x) => x.acquire("cdce0", "sock7", { kind: "ifnet", desc: "socket (if_get)" }),
              inDrain: (x) => x.wait(S).release("cdce0", "sock7", { kind: "ifnet" }),
            }),
        passes: ["no-ref-after-detach-begin", "if-detach-waits-for-psrefs", "free-after-drain"],
      },
      {
        // Without steps or commit: psrefs and usbnet refs during the detach's early steps.
        trace: () =>
          usb(true)
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
            .detachEnd("cdce0"),
        passes: ["no-ref-after-detach-begin"],
      },
    ],
    buggy: [
      {
        trace: () => usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").acquire("cdce0", "sock7", { kind: "ifnet" }),
        first: "no-ref-after-detach-begin",
        who: { device: "cdce0", holders: ["sock7"] },
      },
      {
        trace: () => usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").acquire("cdce0", "ifa0", { kind: "ifaddr", object: "cdce0" }),
        first: "no-ref-after-detach-begin",
        who: { device: "cdce0", holders: ["ifa0"] },
      },
    ],
  },
  {
    point: "2",
    anchor: "commit-point",
    what: "device_lookup_acquire succeeds until config_detach_commit, also after a PCMCIA deactivate; the localcount drain waits for it",
    legal: [
      {
        trace: () =>
          pcmciaRemoval(
            (x) => x.acquire("ne0", "drvctl-p", { kind: "device", desc: "device_lookup_acquire" }),
            (x) => x.release("ne0", "drvctl-p", { kind: "device" }),
          ),
        passes: ["no-ref-after-detach-begin", "pcmcia-deactivate-before-detach", "detach-drains-refs"],
      },
    ],
    buggy: [
      {
        trace: () =>
          pcmcia()
            .hostRemove("nic3")
            .deactivate("ne0", { bus: "pcmcia" })
            .detachBegin("ne0", { force: true, thread: "pcic0,0,0", bus: "pcmcia" })
            .ifDetachBegin("ne0")
            .ifDetachEnd("ne0")
            .commit("ne0")
            .acquire("ne0", "late", { kind: "device" }),
        first: "no-ref-after-detach-begin",
        who: { device: "ne0", holders: ["late"] },
      },
      {
        // Without COMMIT the localcount drain is the latest commit point.
        trace: () =>
          pcmcia()
            .hello({ caps: BASE_CAPS })
            .hostRemove("nic3")
            .deactivate("ne0", { bus: "pcmcia" })
            .detachBegin("ne0", { bus: "pcmcia" })
            .ifDetachBegin("ne0")
            .ifDetachEnd("ne0")
            .drainBegin("ne0", "device")
            .acquire("ne0", "late", { kind: "device" }),
        first: "no-ref-after-detach-begin",
        who: { device: "ne0", holders: ["late"] },
      },
    ],
  },
  {
    point: "3",
    anchor: "config-detach-enter",
    what: "a second config_detach sleeps in config_detach_enter and gets ENOENT; two detaches doing the work, or a free under the sleeper, are bugs",
    legal: [
      {
        // The sleeper's deviter defers the free.
        trace: () =>
          winnerDefersFree(usb().hostRemove("nic1").detachBegin("cdce0", { thread: "usb0" }).detachWait("cdce0", { thread: "drvctl" })),
        passes: ["single-detach-in-progress", "detach-once"],
      },
      {
        // A sleeper waiting for attach to finish runs the detach itself, and one after a veto does too.
        trace: () =>
          trace()
            .hello()
            .hostAdd("nic1")
            .attachBegin("cdce0", { serial: "nic1" })
            .detachWait("cdce0", { thread: "drvctl" })
            .ifAttach("cdce0")
            .attachEnd("cdce0")
            .detachBegin("cdce0", { thread: "drvctl", force: false })
            .detachEnd("cdce0", { thread: "drvctl", error: EBUSY })
            .hostRemove("nic1")
            .netbsdDetachReal("cdce0"),
        passes: ["detach-after-attach-done", "forced-detach-no-veto"],
      },
      {
        // The sleeper's report may come before the winner's begin; the winner then defers the free.
        trace: () =>
          winnerDefersFree(usb().hostRemove("nic1").detachWait("cdce0", { thread: "drvctl" }).detachBegin("cdce0", { thread: "usb0" })),
        passes: ["single-detach-in-progress"],
      },
    ],
    buggy: [
      {
        trace: () => usb().hostRemove("nic1").detachBegin("cdce0", { thread: "usb0" }).detachBegin("cdce0", { thread: "drvctl", force: false }),
        first: "single-detach-in-progress",
        who: { device: "cdce0" },
      },
      {
        trace: () =>
          usb().hostRemove("nic1").detachBegin("cdce0", { thread: "usb0" }).detachWait("cdce0", { thread: "drvctl" }).ifDetachBegin("cdce0").ifDetachEnd("cdce0").ifDetachBegin("cdce0"),
        first: "single-detach-in-progress",
        who: { device: "cdce0" },
      },
      {
        // The winner frees the device under the sleeper, which wakes on freed memory.
        trace: () =>
          usb()
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
            .detachEnd("cdce0", { thread: "drvctl", error: ENOENT }),
        first: "no-event-after-free",
        who: { device: "cdce0" },
        also: (t, res) => t.regex(res.verdicts[0]!.message, /sleeping in config_detach_enter/),
      },
    ],
  },
  {
    point: "3",
    anchor: "measured",
    what: "an agent without DETACH_WAIT reports both callers at config_detach's entry: legal until the work is done twice",
    legal: [
      {
        trace: () =>
          bothAtEntry(usb(true)).drainBegin("cdce0", "device").drainEnd("cdce0", "device").detachEnd("cdce0", { thread: "usb0" }).detachEnd("cdce0", { thread: "drvctl", error: ENOENT }).free("cdce0"),
        passes: ["single-detach-in-progress", "detach-once"],
      },
    ],
    buggy: [
      { trace: () => bothAtEntry(usb(true)).ifDetachBegin("cdce0"), first: "single-detach-in-progress", who: { device: "cdce0" } },
      { trace: () => bothAtEntry(usb(true)).detachEnd("cdce0", { thread: "usb0" }).detachEnd("cdce0", { thread: "drvctl" }), first: "detach-once", who: { device: "cdce0" } },
    ],
  },
  {
    point: "4",
    anchor: "devfree",
    what: "NetBSD frees inside config_detach (FREE before DETACH_END(0)), or later when an iterator defers it; not before the drains",
    legal: [
      { trace: () => usb().hostRemove("nic1").netbsdDetachReal("cdce0"), passes: ["free-after-drain", "no-event-after-free", "free-once", "host-remove-frees"] },
      { trace: () => usb(true).hostRemove("nic1").netbsdDetach("cdce0"), passes: ["free-after-drain"] },
      {
        trace: () => usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").commit("cdce0").detachEnd("cdce0", { deferred: true }).free("cdce0"),
        passes: ["free-after-drain"],
      },
    ],
    buggy: [
      {
        // Freed before the localcount drain ended.
        trace: () => usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").commit("cdce0").drainBegin("cdce0", "device").free("cdce0"),
        first: "free-after-drain",
        who: { device: "cdce0" },
      },
      { trace: () => usb().hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").free("cdce0"), first: "free-after-drain", who: { device: "cdce0" } },
      // A second return after the free is use after free.
      { trace: () => usb().hostRemove("nic1").netbsdDetachReal("cdce0").detachEnd("cdce0"), first: "no-event-after-free", who: { device: "cdce0" } },
    ],
  },
  {
    point: "4",
    anchor: "usb-detach-wait",
    what: "a legacy softc refcount (sc_refcnt) is drained like any reference: a leak is judged at the detach's end and at the free",
    legal: [
      {
        trace: () =>
          usb().acquire("cdce0", "sc_refcnt:ioctl", { kind: "softc-refcnt" }).release("cdce0", "sc_refcnt:ioctl", { kind: "softc-refcnt" }).hostRemove("nic1").netbsdDetachReal("cdce0"),
        passes: ["detach-drains-refs", "free-with-zero-refs", "release-only-held"],
      },
    ],
    buggy: [
      {
        trace: () =>
          usb().acquire("cdce0", "sc_refcnt:ioctl", { kind: "softc-refcnt" }).hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").detachEnd("cdce0"),
        first: "detach-drains-refs",
        who: { device: "cdce0", holders: ["sc_refcnt:ioctl"] },
      },
      {
        trace: () =>
          usb().acquire("cdce0", "sc_refcnt:ioctl", { kind: "softc-refcnt" }).hostRemove("nic1").detachBegin("cdce0").ifDetachBegin("cdce0").ifDetachEnd("cdce0").free("cdce0"),
        first: "free-with-zero-refs",
        who: { device: "cdce0", holders: ["sc_refcnt:ioctl"] },
      },
    ],
  },
  {
    point: "-",
    anchor: "devmon",
    what: "devmon reports device-detach after the localcount drain",
    legal: [
      {
        trace: () =>
          usb()
            .acquire("cdce0", "open", { kind: "device" })
            .hostRemove("nic1")
            .netbsdDetachReal("cdce0", { inDeviceDrain: (x) => x.release("cdce0", "open", { kind: "device" }) }),
        passes: ["detach-drains-refs", "no-ref-after-detach-begin"],
      },
    ],
    buggy: [
      {
        trace: () =>
          usb()
            .acquire("cdce0", "open", { kind: "device" })
            .hostRemove("nic1")
            .detachBegin("cdce0")
            .ifDetachBegin("cdce0")
            .ifDetachEnd("cdce0")
            .commit("cdce0")
            .drainBegin("cdce0", "device")
            .detachReported("cdce0"),
        first: "detach-drains-refs",
        who: { device: "cdce0", holders: ["open"] },
      },
    ],
  },
  {
    point: "5",
    anchor: "modules",
    what: "unloading a built-in driver detaches nothing; the agent's list is trusted and veto reasons are told apart",
    legal: [
      {
        trace: () =>
          usb()
            .unloadBegin("if_cdce", [], { builtin: true })
            .unloadEnd("if_cdce", 0, { builtin: true })
            .unloadBegin("if_cdce", [])
            .unloadEnd("if_cdce", 0)
            .acquire("cdce0", "sock", { kind: "ifnet" })
            .release("cdce0", "sock", { kind: "ifnet" })
            .hostRemove("nic1")
            .netbsdDetachReal("cdce0"),
        passes: ["unload-frees-instances", "unload-completes", "no-ref-after-detach-begin"],
      },
      {
        trace: () => usb().unloadBegin("if_cdce", ["cdce0"]).unloadEnd("if_cdce", EBUSY, { veto: "dependents" }),
        passes: ["unload-completes"],
        also: (t, _res, b) => {
          const recs = b.records();
          const last = recordToEvent(recs[recs.length - 1]!, recs.length - 1)!;
          t.regex(describeEvent(last), /error 16 \(dependents\)/);
        },
      },
      {
        trace: () =>
          usb()
            .unloadBegin("if_cdce", ["cdce0"])
            .detachBegin("cdce0", { force: false, thread: "modunload" })
            .detachEnd("cdce0", { thread: "modunload", error: EBUSY })
            .unloadEnd("if_cdce", EBUSY, { veto: "detach-refused" }),
        passes: ["veto-before-teardown"],
      },
    ],
    buggy: [{ trace: () => usb().unloadBegin("if_cdce", ["cdce0"]).unloadEnd("if_cdce", 0), first: "unload-frees-instances", who: { device: "cdce0" } }],
  },
  {
    point: "6",
    anchor: "bug-revoke-close",
    what: "d_close runs once: the revoke's forced close, or the process's last close, never both",
    legal: [
      {
        // The process's close then goes to deadfs.
        trace: () =>
          usb()
            .vnodeOpen(UGEN, "cdce0", "fd3")
            .hostRemove("nic1")
            .detachBegin("cdce0")
            .methodCall(UGEN, "cdce0", "close", "", { forced: true })
            .revoke(UGEN, "cdce0")
            .deadfsCall(UGEN, "cdce0", "close", 0, "fd3")
            .vnodeClose(UGEN, "cdce0", "fd3")
            .netbsdDetachReal("cdce0", { skipBegin: true }),
        passes: ["close-once", "no-method-after-revoke"],
      },
      {
        // An agent without vnode flags reporting the forced close after REVOKE.
        trace: () =>
          usb(true)
            .vnodeOpen(UGEN, "cdce0", "fd3")
            .hostRemove("nic1")
            .detachBegin("cdce0")
            .revoke(UGEN, "cdce0")
            .methodCall(UGEN, "cdce0", "close")
            .vnodeClose(UGEN, "cdce0", "fd3")
            .netbsdDetach("cdce0", { skipBegin: true }),
        passes: ["close-once", "no-method-after-revoke"],
      },
      {
        trace: () =>
          usb()
            .vnodeOpen(UGEN, "cdce0", "fd3")
            .methodCall(UGEN, "cdce0", "close", "fd3")
            .vnodeClose(UGEN, "cdce0", "fd3")
            .hostRemove("nic1")
            .detachBegin("cdce0")
            .revoke(UGEN, "cdce0")
            .netbsdDetachReal("cdce0", { skipBegin: true }),
        passes: ["close-once"],
      },
    ],
    buggy: [
      {
        trace: () =>
          usb()
            .vnodeOpen(UGEN, "cdce0", "fd3")
            .hostRemove("nic1")
            .detachBegin("cdce0")
            .methodCall(UGEN, "cdce0", "close", "fd3")
            .methodCall(UGEN, "cdce0", "close", "", { forced: true })
            .revoke(UGEN, "cdce0"),
        first: "close-once",
        who: { device: "cdce0" },
      },
    ],
  },
  {
    point: "-",
    anchor: "deadfs",
    what: "a deadfs read answers 0 on a tty and EIO otherwise, judged strictly only when the agent reports the tty flag",
    legal: [
      {
        trace: () => revoked(usb()).deadfsCall(UGEN, "cdce0", "read", 0, "fd3", { tty: true }).vnodeClose(UGEN, "cdce0", "fd3").netbsdDetachReal("cdce0", { skipBegin: true }),
        passes: ["deadfs-answers"],
      },
      {
        trace: () => revoked(usb(true)).deadfsCall(UGEN, "cdce0", "read", 0, "fd3").vnodeClose(UGEN, "cdce0", "fd3").netbsdDetach("cdce0", { skipBegin: true }),
        passes: ["deadfs-answers"],
      },
    ],
    buggy: [
      { trace: () => revoked(usb()).deadfsCall(UGEN, "cdce0", "read", 0, "fd3"), first: "deadfs-answers", who: { device: "cdce0" } },
      { trace: () => revoked(usb()).deadfsCall(UGEN, "cdce0", "read", 5, "fd3", { tty: true }), first: "deadfs-answers", who: { device: "cdce0" } },
    ],
  },
  {
    point: "7",
    anchor: "routing-socket",
    what: "the departure goes out before if_detach's drain ends (7.x) or after it (10.x), may be read late or dropped: it stands for no detach",
    legal: [
      {
        // A psref keeps config_detach waiting after the departure is out.
        trace: () =>
          usb()
            .acquire("cdce0", "sock7", { kind: "ifnet" })
            .hostRemove("nic1")
            .netbsdDetachReal("cdce0", { inDrain: (x) => x.wait(0.98 * S).release("cdce0", "sock7", { kind: "ifnet" }) }),
        passes: ["if-detach-waits-for-psrefs", "detach-completes"],
      },
      { trace: () => usb().hostRemove("nic1").netbsdDetachReal("cdce0", { departureAfterDrain: true }), passes: ["host-remove-frees"] },
      { trace: () => usb().hostRemove("nic1").netbsdDetach("cdce0").departure("cdce0").wait(31 * S).log("tick"), passes: ["host-remove-detaches", "no-event-after-free"] },
      { trace: () => usb(true).hostRemove("nic1").netbsdDetach("cdce0").wait(31 * S).log("tick"), passes: ["host-remove-detaches"] },
    ],
    buggy: [
      {
        // A device never detached is still a lost detach, departure or not.
        trace: () => usb().hostRemove("nic1").departure("cdce0").wait(31 * S).log("tick"),
        first: "host-remove-detaches",
        who: { device: "cdce0", nicId: "nic1" },
      },
    ],
  },
  {
    point: "-",
    anchor: "config-detach",
    what: "a veto before config_detach_commit leaves the device running; one after it is a bug",
    legal: [
      {
        trace: () =>
          usb()
            .detachBegin("cdce0", { force: false, thread: "drvctl" })
            .detachEnd("cdce0", { thread: "drvctl", error: EBUSY })
            .acquire("cdce0", "sock", { kind: "ifnet" })
            .release("cdce0", "sock", { kind: "ifnet" })
            .hostRemove("nic1")
            .netbsdDetachReal("cdce0"),
        passes: ["veto-before-teardown", "no-ref-after-detach-begin"],
      },
    ],
    buggy: [
      {
        trace: () => usb().detachBegin("cdce0", { force: false, thread: "drvctl" }).commit("cdce0", { thread: "drvctl" }).detachEnd("cdce0", { thread: "drvctl", error: EBUSY }),
        first: "veto-before-teardown",
        who: { device: "cdce0" },
      },
    ],
  },
];

const NETBSD_MD = readFileSync(new URL("../../../docs/netbsd.md", import.meta.url), "utf8");

for (const row of ROWS) {
  const name = `${row.point === "-" ? "" : `${row.point} `}#${row.anchor}: ${row.what}`;
  test(`${name} (legal)`, (t) => {
    t.true(NETBSD_MD.includes(`<a id="${row.anchor}"></a>`), `docs/netbsd.md has no anchor ${row.anchor}`);
    for (const l of row.legal) {
      const b = l.trace();
      const res = run(b);
      assertClean(t, res, l.passes);
      l.also?.(t, res, b);
    }
  });
  test(`${name} (bug)`, (t) => {
    for (const x of row.buggy) {
      const res = run(x.trace());
      assertFirst(t, res, x.first, x.who);
      t.true(res.verdicts.length >= 1, dump(res));
      x.also?.(t, res);
    }
  });
}

test("a trace that begins in the middle of a detach adopts the device at its commit or step quietly", (t) => {
  const b = trace().hello().step("cdce0", "task-wait-again").commit("cdce0").drainBegin("cdce0", "device").drainEnd("cdce0", "device").detachReported("cdce0").free("cdce0").detachEnd("cdce0");
  assertClean(t, run(b));
});
