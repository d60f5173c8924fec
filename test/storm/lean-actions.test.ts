import test from "ava";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { LiveChecker } from "../../src/storm/checking.js";
import { loadStorm, runStorm, type StormSpec } from "../../src/storm/index.js";
import { everyStepStorm } from "../helpers/storms.js";

type IRecord = plugstorm.trace.v1.IRecord;

/** A judged run's checker over the records, as the run feeds it (index = position); its verdicts as the run keeps them. */
function judged(spec: StormSpec, records: IRecord[], endNs: number): unknown[] {
  const c = new LiveChecker(spec, true);
  const out: unknown[] = [];
  records.forEach((r, i) => out.push(...c.push(r, i)));
  out.push(...c.finish(endNs));
  return out;
}
const ADD = plugstorm.trace.v1.HostAction.Kind.ADD_NIC;

// A judged run (the shrinker's) records an action other than an add without
// the machine's fields of its NIC (kind, bus, port, MAC): the checker must
// judge its records as it judges runStorm's, which have them.
for (const bugs of [[], ["leak-ref"], ["lost-detach", "forced-detach-veto"], ["sleep-in-interrupt", "skip-deactivate"]]) {
  test(`the checker judges actions alike without their NIC's machine fields: ${bugs.join(", ") || "no bug"}`, async (t) => {
    const records: IRecord[] = [];
    const spec = loadStorm({ ...everyStepStorm("lean"), machine: { type: "sim", bugs } });
    const run = await runStorm(spec, { out: null, live: { header() {}, record: (r) => void records.push(r) } });
    let stripped = 0;
    const lean = records.map((r) => {
      const a = r.action;
      if (!a || a.kind === ADD || (a.nicKind == null && a.mac == null)) return r;
      stripped++;
      return { ...r, action: { id: a.id, kind: a.kind, nicId: a.nicId, ...(a.args != null ? { args: a.args } : {}) } };
    });
    t.true(stripped > 0);
    const full = judged(spec, records, run.machineEndNs);
    t.deepEqual(judged(spec, lean, run.machineEndNs), full);
    // A storm with a bug breaks rules, so the verdicts compared are not all empty.
    if (bugs.length > 0) t.true(full.length > 0);
  });
}
