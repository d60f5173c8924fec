// TraceChecker routes each event by the type and time adaptRecord leaves in
// its `out` (read from events of a dozen shapes they would be megamorphic
// loads). A branch that made an event without setting them would route it
// by the previous record's type: these tests hold `out` to the event on every
// kind of record a run writes and on every wire value of each kind's enum.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { adaptRecord, recordToEvent, type Adapted } from "../../src/check/adapter.js";
import type { plugstorm } from "../../src/gen/plugstorm.js";
import { BUG_NAMES } from "../../src/sim/index.js";
import { loadStorm, runStorm, type StormInput } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";
import { everyStepStorm } from "../helpers/storms.js";

type IRecord = plugstorm.trace.v1.IRecord;

const STORM: StormInput = everyStepStorm("adapted");

/** Checks every record; returns how many events of each type it saw. */
function check(t: { is(a: unknown, b: unknown, m?: string): void }, records: readonly IRecord[], where: string): Map<string, number> {
  const seen = new Map<string, number>();
  const out = { type: "poisoned", t: -1 } as unknown as Adapted;
  records.forEach((r, i) => {
    // What a previous record left must never pass for this one's.
    out.type = "poisoned" as Adapted["type"];
    out.t = -1;
    const e = adaptRecord(r, i, out);
    if (e === null) return;
    t.is(out.type, e.type, `${where}, record ${i}: type`);
    t.is(out.t, e.t, `${where}, record ${i} (${e.type}): time`);
    seen.set(e.type, (seen.get(e.type) ?? 0) + 1);
  });
  return seen;
}

test("on every record of sim runs, clean and with each injectable bug, out holds the event's type and time", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-adapted-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const types = new Set<string>();
  for (const bug of [null, ...BUG_NAMES]) {
    const out = join(dir, bug ?? "clean");
    await runStorm(loadStorm({ ...STORM, machine: { type: "sim", bugs: bug ? [bug] : [] } }), { out, reports: false });
    const { records } = parseTrace(readFileSync(join(out, "trace.pstrace")));
    for (const type of check(t, records, bug ?? "clean").keys()) types.add(type);
  }
  // The runs reached the common kinds (else the test above checked little).
  for (const type of ["device", "ref", "ifnet", "host-add", "host-remove", "host-result", "hello", "machine"]) t.true(types.has(type), `no ${type} event in the runs`);
});

test("on every wire value of each record kind's enum, out holds the event's type and time, and recordToEvent agrees", (t) => {
  const records: IRecord[] = [];
  for (let kind = 0; kind < 40; kind++) {
    const tNs = 1000 + kind;
    records.push(
      { tNs, guest: { seq: 1, device: { kind, name: "cdce0" } } },
      { tNs, guest: { seq: 1, ref: { kind, objectKind: 1, object: "cdce0", holder: "h" } } },
      { tNs, guest: { seq: 1, ifnet: { kind, ifname: "cdce0" } } },
      { tNs, guest: { seq: 1, vnode: { kind } } },
      { tNs, guest: { seq: 1, module: { kind, name: "if_cdce" } } },
      { tNs, action: { id: kind, kind, nicId: "nic1" } },
      { tNs, action: { id: kind, kind, nicId: "nic1", port: "1.2" } },
      { tNs, result: { actionId: 1, outcome: kind } },
      { tNs, channel: { kind, expectedSeq: 3, gotSeq: 7 } },
      { tNs, machine: { kind, exitCode: 1 } },
      { tNs, device: { kind, nicId: "nic1" } },
    );
  }
  records.push(
    { tNs: 7, guest: { seq: 1, hello: {} } },
    { tNs: 8, guest: { seq: 1, panic: { message: "panic: x" } } },
    { tNs: 9, guest: { seq: 1, heartbeat: {} } },
    { tNs: 10, guest: { seq: 1 } },
    { tNs: 11, qmpEvent: { event: "DEVICE_DELETED", data: JSON.stringify({ device: "nic1" }) } },
    { tNs: 12, qmpEvent: { event: "DEVICE_DELETED", data: "{}" } },
    { tNs: 13, qmpEvent: { event: "RESET" } },
    {},
  );
  const seen = check(t, records, "enums");
  t.true(seen.size >= 12, `only ${[...seen.keys()].join(", ")}`);
  // recordToEvent is adaptRecord with a scratch out: the same events.
  records.forEach((r, i) => t.deepEqual(recordToEvent(r, i), adaptRecord(r, i, { type: "guest-other", t: 0 })));
});

test("DEVICE_DELETED names the NIC its data names, by the compact fast path or through JSON.parse alike", (t) => {
  const id = (data: string): string | null => {
    const e = recordToEvent({ tNs: 1, qmpEvent: { event: "DEVICE_DELETED", data } }, 0);
    return e === null ? null : (e as { nicId: string }).nicId;
  };
  t.is(id('{"device":"nic7","path":"/machine/peripheral/nic7"}'), "nic7");
  t.is(id('{"path":"/machine/peripheral/nic8","device":"nic8"}'), "nic8");
  // A backslash anywhere after the key sends the data through JSON.parse, which unescapes.
  t.is(id('{"device":"nic\\"9","path":"/p"}'), 'nic"9');
  t.is(id('{"device":"nic10","path":"/machine/peripheral/n\\u0069c10"}'), "nic10");
  t.is(id('{ "device" : "nic11" }'), "nic11");
  // No id: the path's last element names it; nothing named: no event.
  t.is(id('{"device":"","path":"/machine/peripheral/nic12"}'), "nic12");
  t.is(id('{"path":"/machine/peripheral/nic13"}'), "nic13");
  t.is(id('{"device":"nic14'), null);
  t.is(id("not json"), null);
});
