// What a guest agent says it cannot observe (Hello.unavailable) reaches the
// run's result and its report, so the summary can say "not observed: ...".
import test from "ava";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { GuestState } from "../../src/storm/guest-state.js";
import { buildRunReport } from "../../src/storm/reporting.js";
import { TimelineCollector, renderText } from "../../src/report/index.js";
import type { RunResult } from "../../src/storm/result.js";
import { validateStorm } from "../../src/storm/index.js";

const UNAVAILABLE = ["DETACH_PHASES: fbt::config_detach:entry missing", "/dev/drvctl: no device node (MAKEDEV drvctl)"];

test("the guest's Hello.unavailable is kept, replaced by a later Hello, and the summary says it as 'not observed'", (t) => {
  const g = new GuestState();
  t.deepEqual(g.unavailable, []);
  g.onFrame(plugstorm.telemetry.v1.Frame.create({ seq: 1, hello: { agentVersion: "plugstorm-agent 0.1.0", unavailable: UNAVAILABLE } }));
  t.deepEqual(g.unavailable, UNAVAILABLE);
  const spec = validateStorm({ name: "n", machine: { type: "sim" }, schedule: { cycles: 1 } });
  const result = { spec, seed: 1, status: "clean", verdicts: [], cyclesDone: 1, frames: 1, framesLost: 0, corrupt: 0, durationMs: 1, reproduce: "plugstorm storm", traceFile: null, summary: null, notObserved: [...g.unavailable], rejectedCommands: [], bugStrikes: [] } as unknown as RunResult;
  const report = buildRunReport(result, 0, new TimelineCollector().timeline());
  t.deepEqual(report.notObserved, UNAVAILABLE);
  t.regex(renderText(report), /not observed: DETACH_PHASES \(fbt::config_detach:entry missing\); \/dev\/drvctl \(no device node \(MAKEDEV drvctl\)\)/);
  // A reconnecting agent that now sees everything clears the list.
  g.onFrame(plugstorm.telemetry.v1.Frame.create({ seq: 1, hello: { agentVersion: "plugstorm-agent 0.1.0" } }));
  t.deepEqual(g.unavailable, []);
});
