// Cascades (docs/cascades.md): consequence verdicts are grouped under their
// first cause, and a cause is never grouped under anything.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkRecords, formatVerdict, type CheckedVerdict } from "../../src/check/index.js";
import { BUG_RULES, CascadeTracker, groupCascades, RULE_BY_ID } from "../../src/model/index.js";
import { BUG_NAMES } from "../../src/sim/index.js";
import { renderHtml, renderJson, renderJunit, renderText, type RunReport } from "../../src/report/index.js";
import { run, tempDir } from "../cli/helpers.js";
import { trace } from "./builder.js";

const S = 1e9;
import { runBugScenario } from "../sim/scenarios.js";

const v = (rule: string, device: string, nicId: string, recordIndex: number) => ({ rule, severity: "error" as const, device, nicId, recordIndex });

/** Two USB NICs attached in usb0, a PCMCIA one in socket 1's thread; a third socket thread seen. */
function tracker(): CascadeTracker {
  const c = new CascadeTracker();
  c.hostAdd("nic1", "usb");
  c.activity({ thread: "usb0", device: "cdce0", nicId: "nic1", kind: "other", index: 1 });
  c.hostAdd("nic2", "usb");
  c.activity({ thread: "usb0", device: "cdce1", nicId: "nic2", kind: "other", index: 3 });
  c.hostAdd("nic3", "pcmcia");
  c.activity({ thread: "pcic0,0,1", device: "ne0", nicId: "nic3", kind: "other", index: 5 });
  c.hostAdd("nic4", "pcmcia");
  c.activity({ thread: "pcic0,0,0", device: "ne1", nicId: "nic4", kind: "other", index: 6 });
  return c;
}

test("a detach stuck in usb0 is the cause; later liveness verdicts that need usb0 are its consequences", (t) => {
  const c = tracker();
  c.activity({ thread: "usb0", device: "cdce0", nicId: "nic1", kind: "detach-begin", index: 10 });
  c.hostAdd("nic9", "usb");
  t.is(c.verdict(v("host-remove-frees", "cdce0", "nic1", 9)), null, "the first verdict on the stuck device is the cause");
  const add = c.verdict(v("host-add-attaches", "", "nic9", 12));
  t.like(add, { ordinal: 0, rule: "host-remove-frees", device: "cdce0", thread: "usb0" });
  t.like(c.verdict(v("host-remove-detaches", "cdce1", "nic2", 13)), { ordinal: 0 });
  t.like(c.verdict(v("detach-completes", "cdce0", "nic1", 10)), { ordinal: 0 }, "the same stuck device, another liveness rule");
  // A rule broken by an event is its own finding, even on a blocked bus.
  t.is(c.verdict(v("no-ref-after-detach-begin", "cdce1", "nic2", 14)), null);
  // A deadline started before the thread was blocked is not explained by it.
  t.is(c.verdict(v("host-remove-detaches", "cdce1", "nic2", 8)), null);
  // Another bus is not blocked.
  t.is(c.verdict(v("host-remove-detaches", "ne0", "nic3", 15)), null);
  // Warnings are never grouped.
  t.is(c.verdict({ ...v("host-add-attaches", "", "nic9", 16), severity: "warning" }), null);
  // The thread moves on: the episode is over.
  c.activity({ thread: "usb0", device: "cdce0", nicId: "nic1", kind: "free", index: 20 });
  c.hostAdd("nic10", "usb");
  t.is(c.verdict(v("host-add-attaches", "", "nic10", 21)), null);
});

test("a NIC that never attached is a consequence only when every thread of its bus is blocked", (t) => {
  const c = tracker();
  c.activity({ thread: "pcic0,0,1", device: "ne0", nicId: "nic3", kind: "detach-begin", index: 10 });
  c.hostAdd("nic11", "pcmcia");
  t.is(c.verdict(v("host-remove-frees", "ne0", "nic3", 9)), null);
  t.is(c.verdict(v("host-add-attaches", "", "nic11", 12)), null, "socket 0's thread is free: the add may have failed on its own");
  c.activity({ thread: "pcic0,0,0", device: "ne1", nicId: "nic4", kind: "detach-begin", index: 13 });
  t.is(c.verdict(v("host-remove-frees", "ne1", "nic4", 12)), null, "second cause");
  c.hostAdd("nic12", "pcmcia");
  t.like(c.verdict(v("host-add-attaches", "", "nic12", 14)), { ordinal: 0 }, "both blocked: the earliest cause");
});

test("a PC Card the guest never showed is keyed by its socket: a stuck socket thread explains adds into that socket only", (t) => {
  const c = new CascadeTracker();
  c.hostAdd("nic3", "pcmcia", "pcic0:1");
  c.activity({ thread: "pcic0,0,1", device: "ne0", nicId: "nic3", kind: "other", index: 1 });
  c.hostAdd("nic4", "pcmcia", "pcic0:0");
  c.activity({ thread: "pcic0,0,0", device: "ne1", nicId: "nic4", kind: "other", index: 2 });
  c.activity({ thread: "pcic0,0,1", device: "ne0", nicId: "nic3", kind: "detach-begin", index: 10 });
  t.is(c.verdict(v("host-remove-frees", "ne0", "nic3", 9)), null, "the leak is the cause");
  c.hostAdd("nic5", "pcmcia", "pcic0:1");
  t.like(c.verdict(v("host-add-attaches", "", "nic5", 11)), { ordinal: 0, device: "ne0", thread: "pcic0,0,1" }, "socket 1's only thread is stuck");
  c.hostAdd("nic6", "pcmcia", "pcic0:0");
  t.is(c.verdict(v("host-add-attaches", "", "nic6", 12)), null, "socket 0's thread is free: the add failed on its own");
  c.hostAdd("nic7", "pcmcia", "pcic0:2");
  t.is(c.verdict(v("host-add-attaches", "", "nic7", 13)), null, "a socket no thread has served yet is not known to be stuck");
});

test("PC Card, the legal NetBSD order: deactivate in the interrupt, a forced detach stuck in the socket's thread, then adds into both sockets", (t) => {
  // One card per socket attaches in its socket's thread; the card in socket 1
  // leaks a device reference and is pulled: pcic_intr_socket deactivates it,
  // pcic_event_thread (pcic0,0,1) begins config_detach(DETACH_FORCE) and
  // waits in the device drain for good (netbsd.md#pcmcia, #pcmcia-threads).
  const b = trace()
    .machineStarted()
    .hello()
    .hostAdd("nic1", "pcmcia-ne2000", { port: "pcic0:0" })
    .attachBegin("ne0", { serial: "nic1", bus: "pcmcia", driver: "ne", thread: "pcic0,0,0" })
    .ifAttach("ne0")
    .attachEnd("ne0", { bus: "pcmcia", thread: "pcic0,0,0" })
    .hostAdd("nic2", "pcmcia-ne2000", { port: "pcic0:1" })
    .attachBegin("ne1", { serial: "nic2", bus: "pcmcia", driver: "ne", thread: "pcic0,0,1" })
    .ifAttach("ne1")
    .attachEnd("ne1", { bus: "pcmcia", thread: "pcic0,0,1" })
    .acquire("ne1", "h-leak", { kind: "device" })
    .hostRemove("nic2")
    .deactivate("ne1", { context: "interrupt", bus: "pcmcia" })
    .ifDeactivate("ne1")
    .detachBegin("ne1", { force: true, thread: "pcic0,0,1", bus: "pcmcia" })
    .ifDetachBegin("ne1")
    .ifDetachEnd("ne1")
    .commit("ne1", { thread: "pcic0,0,1", bus: "pcmcia" })
    .drainBegin("ne1", "device", { thread: "pcic0,0,1", bus: "pcmcia" })
    .wait(2 * S)
    // A card into the stuck socket never attaches; socket 0's card is pulled and a new one put in, and that one fails on its own.
    .hostAdd("nic3", "pcmcia-ne2000", { port: "pcic0:1" })
    .hostRemove("nic1")
    .deactivate("ne0", { context: "interrupt", bus: "pcmcia" })
    .ifDeactivate("ne0")
    .netbsdDetach("ne0", { thread: "pcic0,0,0", bus: "pcmcia" })
    .hostAdd("nic4", "pcmcia-ne2000", { port: "pcic0:0" })
    .wait(31 * S)
    .log("tick");
  const vs = checkRecords(b.records(), { profile: "netbsd" }).verdicts as CheckedVerdict[];
  const leak = vs.findIndex((x) => x.rule === "host-remove-frees" && x.nicId === "nic2");
  t.true(leak >= 0, vs.map((x) => `${x.rule} ${x.nicId}`).join("; "));
  t.is(vs[leak]!.cause, undefined, "the leak heads its finding");
  const stuck = vs.find((x) => x.rule === "host-add-attaches" && x.nicId === "nic3");
  t.like(stuck?.cause, { ordinal: leak, rule: "host-remove-frees", thread: "pcic0,0,1" }, "the add into the stuck socket is the leak's consequence");
  const own = vs.find((x) => x.rule === "host-add-attaches" && x.nicId === "nic4");
  t.truthy(own, "the add into socket 0 missed its deadline");
  t.is(own!.cause, undefined, "socket 0's thread was free: its own finding");
});

test("a NIC id added again is a new plug: the device that named the earlier one is not taken for it", (t) => {
  const c = new CascadeTracker();
  c.hostAdd("nic1", "usb");
  c.activity({ thread: "usb0", device: "cdce0", nicId: "nic1", kind: "detach-begin", index: 2 });
  t.is(c.verdict(v("host-remove-frees", "cdce0", "nic1", 1)), null, "the leak is the cause");
  t.like(c.verdict(v("host-remove-detaches", "", "nic1", 3)), { ordinal: 0, device: "cdce0" }, "before the id is added again, it names cdce0");
  c.hostAdd("nic1", "pcmcia", "pcic0:0");
  t.is(c.verdict(v("host-add-attaches", "", "nic1", 5)), null, "the new plug waits on a socket no stuck thread serves");
  c.activity({ thread: "pcic0,0,0", device: "ne0", nicId: "nic1", kind: "detach-begin", index: 6 });
  t.is(c.verdict(v("host-remove-frees", "", "nic1", 7)), null, "the device that names it now is joined: its first verdict is its cause");
  t.like(c.verdict(v("detach-completes", "", "nic1", 8)), { ordinal: 3, device: "ne0", thread: "pcic0,0,0" });
});

test("NICs joined to the same device name in turn keep their own joins: naming one again changes no other", (t) => {
  const c = new CascadeTracker();
  c.hostAdd("nic1", "usb");
  c.activity({ thread: "usb0", device: "cdce0", nicId: "nic1", kind: "other", index: 1 });
  c.hostAdd("nic2", "usb");
  c.activity({ thread: "usb0", device: "cdce0", nicId: "nic2", kind: "other", index: 2 }); // the same unit and name: one shared join
  c.activity({ thread: "usb1", device: "cdce1", nicId: "nic1", kind: "other", index: 3 }); // nic1 is named by cdce1 now
  c.activity({ thread: "usb0", device: "cdce0", nicId: "nic2", kind: "detach-begin", index: 4 });
  c.activity({ thread: "usb1", device: "cdce1", nicId: "nic1", kind: "detach-begin", index: 5 });
  t.is(c.verdict(v("host-remove-frees", "", "nic2", 6)), null, "nic2 still names cdce0: the first verdict on it is cdce0's cause");
  t.is(c.verdict(v("host-remove-frees", "", "nic1", 7)), null, "nic1 names cdce1, a device of its own: its own cause");
  t.like(c.verdict(v("detach-completes", "", "nic2", 8)), { ordinal: 0, device: "cdce0", thread: "usb0" });
  t.like(c.verdict(v("detach-completes", "", "nic1", 9)), { ordinal: 1, device: "cdce1", thread: "usb1" });
});

test("a verdict before any cause, or with no device, heads its own finding", (t) => {
  const c = tracker();
  c.hostAdd("nic9", "usb");
  t.is(c.verdict(v("host-add-attaches", "", "nic9", 12)), null);
  t.is(c.verdict(v("guest-telemetry-present", "", "", 13)), null);
});

test("groupCascades: causes in order, consequences under them; a consequence whose cause is missing stands alone", (t) => {
  const list = [{}, { cause: { ordinal: 0 } }, {}, { cause: { ordinal: 0 } }, { cause: { ordinal: 2 } }, { cause: { ordinal: 7 } }];
  t.deepEqual(groupCascades(list), [
    { cause: 0, consequences: [1, 3] },
    { cause: 2, consequences: [4] },
    { cause: 5, consequences: [] },
  ]);
});

for (const bug of BUG_NAMES) {
  test(`the first verdict of bug ${bug} is a cause, and every consequence hangs from an earlier cause`, async (t) => {
    const h = await runBugScenario(bug, bug);
    const vs = checkRecords(h.records, { profile: "netbsd" }).verdicts as CheckedVerdict[];
    t.true(vs.length > 0);
    t.is(vs[0]!.rule, BUG_RULES[bug]!);
    t.is(vs[0]!.cause, undefined, formatVerdict(vs[0]!));
    vs.forEach((x, i) => {
      if (!x.cause) return;
      t.true(x.cause.ordinal < i);
      t.is(vs[x.cause.ordinal]!.cause, undefined, "a cause is not itself a consequence");
      t.true(RULE_BY_ID.get(x.rule)!.liveness, `${x.rule} is a liveness rule`);
    });
  });
}

test("storm --bug leak-ref: check groups the stuck adds and removes under the leak, in every format", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "out");
  const storm = await run(t, ["storm", "--bug", "leak-ref", "--seed", "1", "--out", out]);
  t.is(storm.code, 1, storm.stderr);
  const reportDir = join(dir, "check");
  const r = await run(t, ["check", join(out, "trace.pstrace"), "--json", "--report", reportDir]);
  t.is(r.code, 1, r.stderr);
  const json = JSON.parse(r.stdout) as { verdicts: (CheckedVerdict & { ordinal: number })[]; findings: { cause: number; consequences: number[] }[] };
  const vs = json.verdicts;
  t.is(vs[0]!.rule, "host-remove-frees");
  t.is(vs[0]!.cause, undefined);
  const withCons = json.findings.filter((f) => f.consequences.length > 0);
  t.true(withCons.length > 0, "the leak has consequences");
  t.is(json.findings.reduce((n, f) => n + 1 + f.consequences.length, 0), vs.length, "every verdict is in exactly one finding");
  const leak = withCons[0]!;
  t.is(vs[leak.cause]!.rule, "host-remove-frees");
  t.true(leak.consequences.some((i) => vs[i]!.rule === "host-add-attaches" || vs[i]!.rule === "host-remove-detaches"));
  // The same grouping in the live run's own reports (storm) and in check's.
  for (const d of [out, reportDir]) {
    const report = JSON.parse(readFileSync(join(d, "report.json"), "utf8")) as RunReport & { findings: { cause: number; consequences: number[] }[] };
    t.deepEqual(report.findings, json.findings, d);
    const text = renderText(report);
    t.regex(text, /Cascades: \d+ causes? with consequences/);
    t.regex(text, new RegExp(`#${leak.cause + 1} host-remove-frees: .*\\n\\s+→ ${leak.consequences.length} consequences?`));
    const junit = renderJunit(report);
    t.regex(junit, /<property name="cascade_causes" value="\d+"\/>/);
    t.regex(junit, new RegExp(`consequence of #${leak.cause + 1} host-remove-frees`));
    const html = renderHtml(report);
    t.regex(html, new RegExp(`<tr class="consequence" data-ordinal="${leak.consequences[0]! + 1}">.*↳ consequence of #${leak.cause + 1}`));
    t.regex(renderJson(report), /"findings"/);
  }
});
