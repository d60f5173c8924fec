// A guest command the guest refuses is never silent: the console warns once
// per reason, the summary and report.json count them, the trace marks each;
// and a fault the sim would refuse is refused at load time, at its field.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ScenarioError, parseStorm, runStorm, type ScenarioIssue } from "../../src/storm/index.js";
import { BUG_NAMES } from "../../src/sim/index.js";
import { run, tempDir } from "../cli/helpers.js";
import { stormIssues } from "../helpers/storms.js";

const issues = (text: string): ScenarioIssue[] => stormIssues(text);

const stormWith = (machine: string[], step: string): string =>
  ["machine:", ...machine, "schedule:", "  steps:", "    - add: { nic: nic0, kind: usb-net }", `    - ${step}`, "    - remove: nic0", ""].join("\n");

test("a sim storm's fault arg is the chance the bug strikes: anything else is refused at its line and column", (t) => {
  const sim = ["  type: sim"];
  const colOf = (text: string, what: string): number => text.split("\n")[5]!.indexOf(what) + 1;
  const badText = stormWith(sim, "fault: { name: leak-ref, nic: nic0, arg: netdev }");
  const bad = issues(badText);
  t.is(bad.length, 1);
  t.like(bad[0], { file: "s.yaml", line: 6, col: colOf(badText, "netdev"), path: "schedule.steps[1].fault.arg" });
  t.regex(bad[0]!.message, /chance the fault strikes, a number in \[0, 1\].*got "netdev"/);
  const unknownText = stormWith(sim, "fault: { name: leak-everything, nic: nic0 }");
  const unknown = issues(unknownText);
  t.like(unknown[0], { line: 6, col: colOf(unknownText, "leak-everything"), path: "schedule.steps[1].fault.name" });
  t.true(unknown[0]!.message.includes(BUG_NAMES.join(", ")), unknown[0]!.message);
  t.deepEqual(issues(stormWith(sim, "fault: { name: leak-ref, nic: nic0, arg: 0.5 }")), []);
  t.deepEqual(issues(stormWith(sim, "fault: { name: leak-ref, nic: nic0 }")), []);
  // The Linux agent's arg names the object leaked: not the sim's to judge.
  t.deepEqual(issues(stormWith(["  type: qemu", "  profile: linux-guest"], "fault: { name: leak-ref, nic: nic0, arg: netdev }")), []);
});

test("runStorm: a fault the sim refuses is in the result, the summary, report.json and the trace's marks", async (t) => {
  const spec = parseStorm(stormWith(["  type: sim"], "fault: { name: leak-ref, nic: nic0 }"), "s.yaml");
  // Past validation, as a storm for another guest or a library caller's spec may be.
  const steps = spec.schedule.steps!.map((s) => (s.op === "fault" ? { ...s, arg: "netdev" } : s));
  const out = join(tempDir(t), "run");
  const r = await runStorm({ ...spec, schedule: { ...spec.schedule, steps } }, { out });
  t.is(r.status, "clean");
  t.is(r.rejectedCommands.length, 1);
  t.like(r.rejectedCommands[0], { command: "injectFault", nic: "nic0", error: 22, message: "fault probability must be in [0, 1], got netdev" });
  t.regex(r.reportText!, /^Guest commands rejected: 1 .*\n +1× +action #\d+ injectFault on nic0 \(fault leak-ref, arg netdev\): fault probability must be in \[0, 1\], got netdev \(error 22\)$/m);
  const json = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as { rejectedCommands: unknown[] };
  t.deepEqual(json.rejectedCommands, JSON.parse(JSON.stringify(r.rejectedCommands)));
  const cat = await run(t, ["trace", "cat", join(out, "trace.pstrace")]);
  t.regex(cat.stdout, /mark name=guest-command-rejected detail="action #\d+ injectFault on nic0/);
});

test("storm: the sim refusing every hold on a NIC it detached warns once on the console and counts them all in the summary", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "holds.yaml");
  // After drvctl -d the sim has no such device: it refuses each hold on it with ENXIO, one reason for both.
  const holds = ["hold: { nic: nic0, kind: ifnet, count: 1 }", "hold: { nic: nic0, kind: device, count: 2 }"];
  writeFileSync(file, ["machine: { type: sim }", "schedule:", "  steps:", "    - add: { nic: nic0, kind: usb-net }", "    - detach: nic0", ...holds.map((h) => `    - ${h}`), "    - remove: nic0", ""].join("\n"));
  const r = await run(t, ["storm", file, "--out", join(dir, "out")]);
  t.is(r.code, 0, r.stderr);
  const warnings = r.stderr.split("\n").filter((l) => l.startsWith("warning: "));
  t.deepEqual(warnings.length, 1, r.stderr);
  t.regex(warnings[0]!, /^warning: the guest rejected action #\d+ holdRefs on nic0 \(kind ifnet, count 1.*\): no such device \(error 6\)$/);
  t.regex(r.stdout, new RegExp(`^Guest commands rejected: ${holds.length} .*\\n +${holds.length}× +first action #`, "m"));
});

test("a sim storm asking the sim to hold what it cannot (vnode, devsw, netdev) is refused at the field's line and column", (t) => {
  for (const kind of ["vnode", "devsw", "netdev"]) {
    const holders = `machine: { type: sim }\nholders:\n  - kind: ${kind}\n    probability: 0.5\n`;
    const e = t.throws(() => parseStorm(holders, "h.yaml"), { instanceOf: ScenarioError })!;
    t.is(e.message, `h.yaml:3:11: holders[0].kind: the sim guest cannot hold ${kind} references; it holds device, ifnet, usbnet`);
    const step = `machine: { type: sim }\nschedule:\n  steps:\n    - add: { nic: nic0, kind: usb-net }\n    - hold: { nic: nic0, kind: ${kind} }\n    - remove: nic0\n`;
    const e2 = t.throws(() => parseStorm(step, "s.yaml"), { instanceOf: ScenarioError })!;
    t.regex(e2.message, new RegExp(`^s\\.yaml:5:\\d+: schedule\\.steps\\[1\\]\\.hold\\.kind: the sim guest cannot hold ${kind} references`));
  }
  // The same holders on a QEMU guest are the Linux agent's to hold: accepted.
  t.notThrows(() => parseStorm("machine: { type: qemu, profile: linux-guest }\nholders:\n  - kind: netdev\n", "q.yaml"));
});
