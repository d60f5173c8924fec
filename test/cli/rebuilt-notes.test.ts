// The reports `check --report` rebuilds from a trace say what the storm's own
// reports said of its injected bugs, of the guest commands the guest refused,
// of what the guest cannot observe and of why the run ended; every report
// (JSON, text, HTML, JUnit) shows the bugs' strikes; `check --json` says the
// strikes, the refusals and the end as the storm's --json does, and check's
// last line says a stop before the end.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import type { RunReport } from "../../src/report/index.js";
import { LIVE_STOP_REASON } from "../../src/storm/index.js";
import { TraceWriter } from "../../src/trace/index.js";
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

const reportOf = (dir: string): RunReport => JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as RunReport;

function notesOf(dir: string): Pick<RunReport, "bugStrikes" | "rejectedCommands"> {
  const r = reportOf(dir);
  return { bugStrikes: r.bugStrikes, rejectedCommands: r.rejectedCommands };
}

/** The fields storm --json and check --json both have, of what the run said of itself. */
const RUN_FIELDS = ["status", "abortReason", "stop", "rejectedCommands", "bugStrikes", "notObserved"] as const;
const runFields = (json: string): Record<string, unknown> => {
  const j = JSON.parse(json) as Record<string, unknown>;
  return Object.fromEntries(RUN_FIELDS.map((k) => [k, j[k]]));
};

test("check --report rebuilds report.json's bugStrikes and rejectedCommands from the trace; each report shows the strikes; check --json says them as storm --json does", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "s.yaml");
  writeFileSync(file, STORM);
  const out = join(dir, "run");
  const ran = await run(t, ["storm", file, "--out", out, "--json"]);
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

  const json = await run(t, ["check", join(out, "trace.pstrace"), "--json"]);
  t.is(json.code, 1, json.stderr);
  const stormSaid = runFields(ran.stdout);
  t.like(stormSaid, { status: "violations", abortReason: null, stop: { kind: "completed" } });
  t.deepEqual(runFields(json.stdout), stormSaid);
});

// A sim guest reports once a second of machine time: a day-long dwell is a flood of records in one wait.
const FLOOD = "name: flood\nmachine: { type: sim }\nschedule:\n  cycles: 10000\n  dwell: 86400s\n";

/** The status line every report heads with, the HTML's badge and stop note, and whether junit.xml has an error case. */
function wording(folder: string): { line: string; badge: string; note: string; junitError: boolean } {
  const text = readFileSync(join(folder, "summary.txt"), "utf8");
  const html = readFileSync(join(folder, "report.html"), "utf8");
  return {
    line: /^plugstorm .* · (.*)$/m.exec(text)?.[1] ?? "",
    badge: /<span class="badge [^"]*">[^<]*<\/span>/.exec(html)?.[0] ?? "",
    note: /<p class="(?:stop|abort)-reason">[^<]*<\/p>/.exec(html)?.[0] ?? "",
    junitError: readFileSync(join(folder, "junit.xml"), "utf8").includes("<error"),
  };
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

for (const [limit, status, option] of [
  ["--time-limit", "time-limit", ["--time-limit", "1s"]],
  ["--max-trace-bytes", "trace-limit", ["--max-trace-bytes", "64K"]],
] as const) {
  test(`a storm stopped at ${limit}: check --report's reports have its status and reason, check --json and check's last line say it`, async (t) => {
    const dir = tempDir(t);
    const file = join(dir, "flood.yaml");
    writeFileSync(file, FLOOD);
    const out = join(dir, "run");
    const ran = await run(t, ["storm", file, "--out", out, "--json", ...option]);
    t.is(ran.code, 0, ran.stderr);
    const stormSaid = runFields(ran.stdout);
    t.is(stormSaid["status"], status);
    const own = reportOf(out);
    t.is(own.exit.status, status);
    const trace = join(out, "trace.pstrace");

    const rebuilt = join(dir, "rebuilt");
    const checked = await run(t, ["check", trace, "--report", rebuilt, "-q"]);
    t.is(checked.code, 0, checked.stderr);
    t.deepEqual(reportOf(rebuilt).exit, own.exit);
    t.deepEqual(wording(rebuilt), wording(out));
    // -q: the last line alone, saying the stop as the storm printed it.
    t.regex(checked.stdout, new RegExp(`^${escape(trace)}: \\d+ records, profile netbsd: no violations; stopped early: ${escape(stormSaid["abortReason"] as string)}(?:, before the first cycle completed)?\n$`));

    const json = await run(t, ["check", trace, "--json"]);
    t.is(json.code, 0, json.stderr);
    t.deepEqual(runFields(json.stdout), stormSaid);
  });
}

const UNAVAILABLE = ["DETACH_PHASES: fbt::config_detach:entry missing", "/dev/drvctl: no device node (MAKEDEV drvctl)"];

/** A trace as a guest that cannot observe everything makes it: its Hello (said twice: the last one counts), and, unless cut short, the storm's end. */
function helloTrace(path: string, end: string | null): void {
  const w = TraceWriter.create(path, { toolVersion: "plugstorm 0.1.0", scenarioName: "blind", seed: 1, machineProfile: JSON.stringify({ type: "sim" }), guestProfile: "sim", modelProfile: "netbsd" });
  const hello = (unavailable: string[]): plugstorm.trace.v1.IRecord => ({ tNs: 1_000_000, guest: { seq: 0, guestTimeNs: 1_000_000, hello: { agentVersion: "plugstorm-agent 0.1.0", unavailable } } });
  w.append({ tNs: 0, mark: { name: "storm-begin", detail: JSON.stringify({ seed: 1, cycles: 1 }) } });
  w.append(hello(["KERNEL_REFS: fbt::if_get:entry missing"]));
  w.append(hello(UNAVAILABLE));
  // A storm-end mark as traces written before it held the stop itself have it: its words only.
  if (end !== null) w.append({ tNs: 2_000_000, mark: { name: "storm-end", detail: end } });
  w.close();
}

test("check --report's report.json has notObserved from the guest's last Hello, and the status of a storm-end mark that has only its words; a trace cut before it stays clean", async (t) => {
  const dir = tempDir(t);
  const stopped = join(dir, "stopped.pstrace");
  helloTrace(stopped, JSON.stringify({ cycles: 0, reason: LIVE_STOP_REASON }));
  const checked = await run(t, ["check", stopped, "--report", join(dir, "a"), "-q"]);
  t.is(checked.code, 0, checked.stderr);
  t.is(checked.stdout, `${stopped}: 4 records, profile netbsd: no violations; stopped early: ${LIVE_STOP_REASON}, before the first cycle completed\n`);
  const report = reportOf(join(dir, "a"));
  t.deepEqual(report.notObserved, UNAVAILABLE);
  t.deepEqual(report.exit, { status: "stopped", reason: LIVE_STOP_REASON });
  const text = readFileSync(join(dir, "a", "summary.txt"), "utf8");
  t.regex(text, / · STOPPED from the live view before the first cycle completed, no violations$/m);
  t.regex(text, /^ {2}not observed: DETACH_PHASES \(fbt::config_detach:entry missing\); \/dev\/drvctl \(no device node \(MAKEDEV drvctl\)\)$/m);
  t.regex(readFileSync(join(dir, "a", "report.html"), "utf8"), /<dt>Not observed<\/dt>/);
  const json = await run(t, ["check", stopped, "--json"]);
  t.like(JSON.parse(json.stdout), { status: "stopped", abortReason: LIVE_STOP_REASON, stop: { kind: "live-stop" } });

  const cut = join(dir, "cut.pstrace");
  helloTrace(cut, null);
  const cutChecked = await run(t, ["check", cut, "--report", join(dir, "b"), "-q"]);
  t.is(cutChecked.code, 0, cutChecked.stderr);
  t.is(cutChecked.stdout, `${cut}: 3 records, profile netbsd: no violations\n`);
  t.deepEqual(reportOf(join(dir, "b")).exit, { status: "clean" });
  t.deepEqual(reportOf(join(dir, "b")).notObserved, UNAVAILABLE);
  const cutJson = await run(t, ["check", cut, "--json"]);
  t.like(JSON.parse(cutJson.stdout), { status: "clean", abortReason: null, stop: null, rejectedCommands: [], bugStrikes: [] });
});
