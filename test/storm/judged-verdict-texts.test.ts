// A judged run's checker (the shrinker's) builds no verdict text: no message
// and no holders' descriptions (CheckerOptions.texts false). Everything a run
// is judged by must be what a full checker gives over the same records.
import test from "ava";
import type { plugstorm } from "../../src/gen/plugstorm.js";
import { LiveChecker, type StormVerdict } from "../../src/storm/checking.js";
import { loadStorm, runStorm } from "../../src/storm/index.js";
import { everyStepStorm } from "../helpers/storms.js";

type IRecord = plugstorm.trace.v1.IRecord;

/** The checker's verdicts over a run's records (index = position), then its end. */
function verdicts(c: LiveChecker, records: readonly IRecord[], endNs: number): StormVerdict[] {
  const out: StormVerdict[] = [];
  records.forEach((r, i) => out.push(...c.push(r, i)));
  out.push(...c.finish(endNs));
  return out;
}

const judgedBy = (v: StormVerdict) => ({ rule: v.rule, side: v.side, severity: v.severity, failing: v.failing, device: v.device, nicId: v.nicId, holders: v.holders, recordIndex: v.recordIndex, tNs: v.tNs });

for (const bugs of [["leak-ref"], ["free-before-drain", "sleep-in-interrupt"], ["lost-detach", "forced-detach-veto"], ["task-after-if-detach", "skip-deactivate"]]) {
  test(`a judged checker's verdicts are the full checker's but their text: ${bugs.join(", ")}`, async (t) => {
    const spec = loadStorm({ ...everyStepStorm("texts"), machine: { type: "sim", bugs } });
    const records: IRecord[] = [];
    const run = await runStorm(spec, { out: null, live: { header() {}, record: (r) => void records.push(r) } });
    const inputs = records.filter((r) => !r.verdict);
    const full = verdicts(new LiveChecker(spec), inputs, run.machineEndNs);
    const judged = verdicts(new LiveChecker(spec, true), inputs, run.machineEndNs);
    t.true(full.length > 0);
    t.deepEqual(judged.map(judgedBy), full.map(judgedBy));
    // The full checker's messages are there, naming holders where a verdict has some; the judged one's are not built.
    t.true(full.every((v) => v.message.length > 0));
    t.true(judged.every((v) => v.message === "" && v.report.message === ""));
  });
}

test("the storms above name holders in some verdicts (what the judged checker leaves out of their text)", async (t) => {
  const spec = loadStorm({ ...everyStepStorm("texts"), machine: { type: "sim", bugs: ["leak-ref"] } });
  const records: IRecord[] = [];
  const run = await runStorm(spec, { out: null, live: { header() {}, record: (r) => void records.push(r) } });
  const full = verdicts(new LiveChecker(spec), records.filter((r) => !r.verdict), run.machineEndNs);
  t.true(full.some((v) => v.holders.length > 0 && v.holders.every((h) => v.message.includes(h))));
});
