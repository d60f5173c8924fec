// The reports `check --report` rebuilds from a trace say what the storm's own
// reports said of its injected bugs and of the guest commands the guest
// refused; and every report (JSON, text, HTML, JUnit) shows the bugs' strikes.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RunReport } from "../../src/report/index.js";
import { findAll, parseXml } from "../report/xml.js";
import { run, tempDir } from "./helpers.js";

// leak-ref strikes on the hold let go of on nic1; skip-deactivate (a PC Card's) never does; the hold on nic0 after its drvctl -d is refused.
const STORM = `machine: { type: sim, bugs: [leak-ref, skip-deactivate] }
schedule:
  steps:
    - add: { nic: nic0, kind: usb-net }
    - add: { nic: nic1, kind: usb-net }
    - hold: { nic: nic1, kind: ifnet, count: 1 }
    - release: { nic: nic1, kind: ifnet }
    - detach: nic0
    - hold: { nic: nic0, kind: ifnet, count: 1 }
    - remove: nic0
    - remove: nic1
`;

function notesOf(dir: string): Pick<RunReport, "bugStrikes" | "rejectedCommands"> {
  const r = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as RunReport;
  return { bugStrikes: r.bugStrikes, rejectedCommands: r.rejectedCommands };
}

test("check --report rebuilds report.json's bugStrikes and rejectedCommands from the trace; each report shows the strikes", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "s.yaml");
  writeFileSync(file, STORM);
  const out = join(dir, "run");
  const ran = await run(t, ["storm", file, "--out", out, "-q"]);
  t.is(ran.code, 1, ran.stderr);
  const own = notesOf(out);
  t.like(own.bugStrikes, [{ bug: "leak-ref" }, { bug: "skip-deactivate", strikes: 0 }]);
  t.true(own.bugStrikes![0]!.strikes > 0, JSON.stringify(own.bugStrikes));
  t.regex(own.bugStrikes![1]!.needs ?? "", /PC Card/);
  t.like(own.rejectedCommands, [{ command: "holdRefs", nic: "nic0", error: 6 }]);

  const rebuilt = join(dir, "rebuilt");
  const checked = await run(t, ["check", join(out, "trace.pstrace"), "--report", rebuilt, "-q"]);
  t.is(checked.code, 1, checked.stderr);
  t.deepEqual(notesOf(rebuilt), own);
  const text = readFileSync(join(rebuilt, "summary.txt"), "utf8");
  t.regex(text, /^ {2}bug leak-ref struck \d+ times?$/m);
  t.regex(text, /^Guest commands rejected: 1 /m);

  for (const folder of [out, rebuilt]) {
    const junit = parseXml(readFileSync(join(folder, "junit.xml"), "utf8"));
    const props = new Map(findAll(junit, "property").map((p) => [p.attrs.name, p.attrs.value]));
    t.is(props.get("bug_strikes.leak-ref"), String(own.bugStrikes![0]!.strikes), folder);
    t.is(props.get("bug_strikes.skip-deactivate"), "0", folder);
    const suiteOut = findAll(junit, "system-out").at(-1)!.text;
    t.regex(suiteOut, /^warning: bug skip-deactivate never struck: its trigger needs a PC Card/m, folder);
    const html = readFileSync(join(folder, "report.html"), "utf8");
    t.regex(html, /<dt>Bug strikes<\/dt><dd [^>]*>bug leak-ref struck \d+ times?; warning: bug skip-deactivate never struck/, folder);
  }
});
