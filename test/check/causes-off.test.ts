// A checker told not to mark causes (the shrinker's judged runs) judges
// exactly as one that does: the same verdicts, in the same order, only
// without their cause.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkRecords, type CheckedVerdict } from "../../src/check/index.js";
import { BUG_NAMES } from "../../src/sim/index.js";
import { DEFAULT_STORM, runStorm, validateStorm } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";
import { runBugScenario } from "../sim/scenarios.js";

/** A leaky storm's records: the leak's stuck detach makes later adds and removes its consequences. */
async function leakyStormRecords(): Promise<Parameters<typeof checkRecords>[0]> {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-causes-"));
  try {
    const spec = { ...validateStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule, cycles: 40 } }), machine: { type: "sim" as const, bugs: ["leak-ref"] } };
    const r = await runStorm(spec, { out: dir, reports: false, seed: 1 });
    return parseTrace(readFileSync(r.traceFile!)).records;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("every simulated bug and a leaky storm give the same verdicts and summary with causes off, and some verdicts had a cause to leave out", async (t) => {
  let marked = 0;
  const traces: [string, Parameters<typeof checkRecords>[0]][] = [["leaky storm", await leakyStormRecords()]];
  for (const bug of BUG_NAMES) traces.push([bug, (await runBugScenario(bug, bug)).records]);
  for (const [bug, records] of traces) {
    const full = checkRecords(records, { profile: "netbsd" });
    const bare = checkRecords(records, { profile: "netbsd", causes: false });
    const withoutCause = (full.verdicts as CheckedVerdict[]).map((v) => {
      if (v.cause === undefined) return v;
      marked++;
      const { cause: _cause, ...rest } = v;
      return rest;
    });
    t.deepEqual(bare.verdicts, withoutCause, bug);
    t.true((bare.verdicts as CheckedVerdict[]).every((v) => v.cause === undefined), bug);
    t.deepEqual(bare.summary, full.summary, bug);
  }
  t.true(marked > 0, "the bugs' traces have consequences, so leaving causes out was exercised");
});
