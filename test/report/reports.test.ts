import test from "ava";
import fc from "fast-check";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderHtml, renderJunit, renderText, writeReports, type RunReport } from "../../src/report/index.js";
import { formatNs } from "../../src/report/index.js";
import { f as svgCoordinate } from "../../src/report/html.js";
import { NASTY, RULES, syntheticReport } from "./fixture.js";
import { findAll, parseXml } from "./xml.js";

async function written(t: import("ava").ExecutionContext, report: RunReport = syntheticReport()) {
  const dir = await mkdtemp(join(tmpdir(), "plugstorm-report-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = await writeReports(join(dir, "run"), report);
  return { dir: join(dir, "run"), ...out };
}

test("writeReports writes the four files and returns the summary it wrote", async (t) => {
  const { dir, text, files } = await written(t);
  t.deepEqual(files.map((f) => f.slice(dir.length + 1)).sort(), ["junit.xml", "report.html", "report.json", "summary.txt"]);
  t.is(await readFile(join(dir, "summary.txt"), "utf8"), text);
});

test("text summary names the broken rule, its count, the seed and how to reproduce", async (t) => {
  const { text } = await written(t);
  t.regex(text, /VIOLATIONS/);
  t.regex(text, new RegExp(`FATAL\\s+${RULES[0]}\\s+1×\\s+nic2/cdce1: free with <refs>`));
  t.regex(text, /^Seed: 424242$/m);
  t.regex(text, /^Reproduce: plugstorm storm scenarios\/two-nics\.yaml --seed 424242$/m);
  t.regex(text, /frames lost 2/);
  // Latency rows come from the trace: cdce attach took 4 ms in both cycles.
  t.regex(text, /cdce\s+attach\s+2\s+4 ms\s+4 ms\s+4 ms\s+4 ms/);
  t.regex(text, /usb-net\s+removal\s+2\s+49\.9 ms/);
  t.notRegex(text, /no-ref-after-detach\s+\d+×/, "rules that held are not listed as broken");
});

test("a clean run says so and lists no broken rule", async (t) => {
  const base = syntheticReport();
  const { text } = await written(t, { ...base, verdicts: [], exit: { status: "clean" } });
  t.regex(text, /· PASS/);
  t.regex(text, /Rules broken: none \(3 checked\)/);
});

test("report.json parses and carries the verdicts, per-rule results and the timeline", async (t) => {
  const { dir } = await written(t);
  const json = JSON.parse(await readFile(join(dir, "report.json"), "utf8"));
  t.is(json.schema, "plugstorm.report.v1");
  t.is(json.seed, 424242);
  t.is(json.verdicts.length, 1);
  t.like(json.verdicts[0], { rule: RULES[0], severity: "fatal", side: "guest", nicId: "nic2", device: "cdce1", message: NASTY, holders: ["bpf5"] });
  t.deepEqual(
    json.rules.map((r: { id: string; status: string }) => [r.id, r.status]),
    [[RULES[0], "failed"], [RULES[1], "passed"], [RULES[2], "passed"]],
  );
  t.is(json.timeline.lanes.length, 2);
});

test("junit.xml is well-formed, has one testcase per rule and a failure with the escaped violation", async (t) => {
  const { dir } = await written(t);
  const xml = await readFile(join(dir, "junit.xml"), "utf8");
  const root = parseXml(xml);
  t.is(root.name, "testsuites");
  const suites = findAll(root, "testsuite");
  t.is(suites.length, 1);
  const cases = findAll(root, "testcase").filter((c) => c.attrs.classname === "plugstorm.rules");
  t.deepEqual(cases.map((c) => c.attrs.name), RULES);
  const failed = cases.filter((c) => c.children.some((ch) => ch.name === "failure"));
  t.is(failed.length, 1);
  const failure = failed[0]!.children.find((ch) => ch.name === "failure")!;
  t.is(failed[0]!.attrs.name, RULES[0]);
  t.true(failure.attrs.message!.includes(NASTY), "the message attribute round-trips <&\"'");
  t.true(failure.text.includes(NASTY), "the failure text round-trips <&\"'");
  t.true(failure.text.includes("holders: bpf5"));
  t.is(failure.attrs.type, "FATAL");
  t.is(suites[0]!.attrs.tests, String(RULES.length + 1));
  t.is(suites[0]!.attrs.failures, "1");
  t.is(suites[0]!.attrs.errors, "0");
  const props = Object.fromEntries(findAll(root, "property").map((p) => [p.attrs.name, p.attrs.value]));
  t.is(props.seed, "424242");
  // The raw text must not carry the message unescaped anywhere.
  t.false(xml.includes("<refs>"));
});

test("junit.xml stays well-formed with control characters and an aborted run", (t) => {
  const base = syntheticReport();
  const report: RunReport = {
    ...base,
    exit: { status: "aborted", reason: "QEMU exited: signal SIGSEGV <core> & \u0007bell" },
    verdicts: [{ rule: "x&y<z>", severity: "error", message: "bytes \u0000\u001b[31m ]]> \uD800 end" }],
  };
  const root = parseXml(renderJunit(report));
  const run = findAll(root, "testcase").find((c) => c.attrs.classname === "plugstorm.run")!;
  const error = run.children.find((c) => c.name === "error")!;
  t.true(error.text.includes("signal SIGSEGV <core> & "));
  const odd = findAll(root, "testcase").find((c) => c.attrs.name === "x&y<z>");
  t.truthy(odd, "a rule id with markup characters survives as a testcase name");
  t.is(findAll(root, "testsuite")[0]!.attrs.errors, "1");
});

test("a run stopped at its time limit is no failure in any report: its own status, no junit error, a pass-coloured badge", (t) => {
  const report: RunReport = { ...syntheticReport(), exit: { status: "time-limit" }, verdicts: [] };
  t.regex(renderText(report).split("\n")[0]!, / · TIME LIMIT, no violations$/);
  const root = parseXml(renderJunit(report));
  t.is(findAll(root, "testsuite")[0]!.attrs.errors, "0");
  t.is(findAll(root, "error").length, 0);
  const html = renderHtml(report);
  t.true(html.includes(`<span class="badge pass">TIME LIMIT</span>`));
  t.false(html.includes("Run aborted"));
});

test("a run stopped from the live view or at its trace size limit is no failure either: its own status, why in the HTML, no junit error", (t) => {
  for (const [exit, line, badge] of [
    [{ status: "stopped", reason: "stopped from the live view" }, "STOPPED from the live view, no violations", "STOPPED"],
    [{ status: "trace-limit", reason: "trace size limit: the trace reached 4096 bytes (--max-trace-bytes)" }, "TRACE LIMIT, no violations", "TRACE LIMIT"],
  ] as const) {
    const report: RunReport = { ...syntheticReport(), exit, verdicts: [] };
    t.is(renderText(report).split("\n")[0]!.split(" · ").at(-1), line);
    const root = parseXml(renderJunit(report));
    t.is(findAll(root, "testsuite")[0]!.attrs.errors, "0");
    t.is(findAll(root, "error").length, 0);
    const html = renderHtml(report);
    t.true(html.includes(`<span class="badge pass">${badge}</span>`), exit.status);
    t.true(html.includes(`<p class="stop-reason">Stopped early: ${exit.reason}</p>`), exit.status);
    t.false(html.includes("Run aborted"));
  }
});

test("a run the time limit ended before its first cycle completed says so, not just 'none broken'", (t) => {
  const base = syntheticReport();
  const report: RunReport = { ...base, counts: { ...base.counts, cycles: 0 }, exit: { status: "time-limit" }, verdicts: [] };
  const text = renderText(report);
  t.regex(text.split("\n")[0]!, / · TIME LIMIT before the first cycle completed, no violations$/);
  t.regex(text, /^Rules broken: none \(\d+ checked, but no cycle completed\)$/m);
  // The reports are named within the output folder, as the trace is (they were absolute, the trace bare).
  t.regex(renderText(report, ["/x/run/summary.txt", "/x/run/report.json"]), /^Reports: summary\.txt, report\.json$/m);
  // With cycles done, the plain line.
  t.regex(renderText({ ...report, counts: base.counts }), /^Rules broken: none \(\d+ checked\)$/m);
});

test("the XML checker used above rejects what is not well-formed", (t) => {
  t.throws(() => parseXml(`<a><b></a></b>`), { message: /closes/ });
  t.throws(() => parseXml(`<a x="1 < 2"/>`), { message: /'<' in attribute/ });
  t.throws(() => parseXml(`<a>fish & chips</a>`), { message: /bare '&'/ });
  t.throws(() => parseXml(`<a>&nbsp;</a>`), { message: /unknown entity/ });
  t.throws(() => parseXml(`<a x='1' x='2'/>`), { message: /duplicate attribute/ });
  t.throws(() => parseXml(`<a/><b/>`), { message: /after the root/ });
  t.throws(() => parseXml(`<a>\u0001</a>`), { message: /not allowed/ });
  t.is(parseXml(`<?xml version="1.0"?><a t="&lt;&amp;&quot;&#65;"><b/>x&gt;</a>`).attrs.t, `<&"A`);
});

test("report.html is self-contained and draws one lane per device", async (t) => {
  const { dir } = await written(t);
  const html = await readFile(join(dir, "report.html"), "utf8");
  t.regex(html, /^<!DOCTYPE html>/);
  const refs = [...html.matchAll(/\b(?:src|href|xlink:href|action|srcset)\s*=\s*["']?([^"'\s>]*)/gi)].map((m) => m[1]!);
  t.deepEqual(refs.filter((r) => /^(?:https?:)?\/\//i.test(r) || /^[a-z]+:/i.test(r)), [], "no external src/href");
  t.notRegex(html, /url\(\s*["']?(?:https?:)?\/\//i, "no external CSS urls");
  t.notRegex(html, /<script|<link|@import|<iframe|<img/i, "no scripts, linked styles or images");
  const lanes = [...html.matchAll(/<g class="lane[^"]*" data-lane="([^"]+)"/g)].map((m) => m[1]);
  t.deepEqual(lanes, ["nic1", "nic2"]);
  t.regex(html, /data-rule="free-requires-zero-refs"/);
  t.regex(html, /free with &lt;refs&gt; &amp; &quot;quotes&quot;/);
  t.regex(html, /time \((?:ms|s)\)/, "the time axis names its unit");
});

test("report.html caps the lanes it draws, violating lanes first, and says so", async (t) => {
  const { renderHtml } = await import("../../src/report/index.js");
  const base = syntheticReport();
  const lanes = Array.from({ length: 300 }, (_, i) => ({
    ...base.timeline.lanes[0]!,
    key: `nic${i + 10}`,
    nicId: `nic${i + 10}`,
    firstNs: i,
    violations: i === 299 ? base.timeline.lanes[1]!.violations : [],
  }));
  const html = renderHtml({ ...base, timeline: { ...base.timeline, lanes, devicesSeen: 300 } }, { maxLanes: 50 });
  const drawn = [...html.matchAll(/<g class="lane[^"]*" data-lane="([^"]+)"/g)].map((m) => m[1]);
  t.is(drawn.length, 50);
  t.true(drawn.includes("nic309"), "the one lane with a violation is drawn although it is the last");
  t.regex(html, /Showing 50 of 300 devices kept in detail/);
});

test("the checker's own verdicts and summary are taken as they are", async (t) => {
  const { checkRecords } = await import("../../src/check/index.js");
  const { syntheticRecords } = await import("./fixture.js");
  const records = syntheticRecords();
  const checked = checkRecords(records, { profile: "netbsd" });
  const report: RunReport = { ...syntheticReport(), verdicts: checked.verdicts, summary: checked.summary, rules: [] };
  const root = parseXml(renderJunit(report));
  const inProfile = checked.summary.rules.filter((r) => r.status !== "not-in-profile");
  const cases = findAll(root, "testcase").filter((c) => c.attrs.classname === "plugstorm.rules");
  t.is(cases.length, inProfile.length, "one testcase per rule of the profile");
  const failing = new Set(checked.verdicts.filter((v) => v.severity !== "warning").map((v) => v.rule));
  t.true(failing.size > 0, "the leak in the fixture breaks at least one rule");
  const failedCases = cases.filter((c) => c.children.some((ch) => ch.name === "failure")).map((c) => c.attrs.name!.split(":")[0]);
  t.deepEqual(new Set(failedCases), failing);
  const unjudged = inProfile.filter((r) => r.status === "not-exercised" || r.status === "not-observed").length;
  t.is(findAll(root, "skipped").length, unjudged);
  t.is(findAll(root, "testsuite")[0]!.attrs.skipped, String(unjudged));
  for (const v of checked.verdicts.filter((v) => v.severity === "warning")) {
    const c = cases.find((c) => c.attrs.name!.startsWith(`${v.rule}:`))!;
    t.false(c.children.some((ch) => ch.name === "failure"), `${v.rule} is a warning, not a failure`);
    t.true(c.children.some((ch) => ch.name === "system-out" && ch.text.includes(v.message)));
  }
  // The events that led to a violation travel with it into the failure text and the HTML.
  const withHistory = checked.verdicts.find((v) => v.severity !== "warning" && v.history.length > 0);
  t.truthy(withHistory, "the checker gives the events that led to a violation");
  if (withHistory) {
    const c = cases.find((c) => c.attrs.name!.startsWith(`${withHistory.rule}:`))!;
    const failure = c.children.find((ch) => ch.name === "failure")!;
    t.true(failure.text.includes(withHistory.history[withHistory.history.length - 1]!.text));
    const { renderHtml } = await import("../../src/report/index.js");
    t.regex(renderHtml(report), /<details><summary>\d+ events? that led there<\/summary>/);
  }
  const { renderText } = await import("../../src/report/index.js");
  t.regex(renderText(report), new RegExp(`Rules broken: ${failing.size} of ${inProfile.length} checked`));
});

test("rules are listed in the order they first broke, with counts beside, not by count (#16)", (t) => {
  const base = syntheticReport();
  const cause = { rule: "host-remove-frees", severity: "error", nicId: "nic1", device: "cdce0", message: "cdce0 leaked", tNs: 1 };
  const many = Array.from({ length: 30 }, (_, i) => ({ rule: "host-add-attaches", severity: "error", nicId: `nic${i + 2}`, message: "no attach", tNs: 10 + i, cause: { ordinal: 0, rule: "host-remove-frees" } }));
  const report: RunReport = { ...base, verdicts: [cause, ...many], rules: [] };
  const text = renderText(report);
  const lines = text.split("\n");
  const frees = lines.findIndex((l) => /ERROR\s+host-remove-frees\s+1×/.test(l));
  const adds = lines.findIndex((l) => /ERROR\s+host-add-attaches\s+30×.*\(30 consequences\)/.test(l));
  t.true(frees > 0 && adds > frees, text);
  const html = renderHtml(report);
  t.true(html.indexOf(">host-remove-frees<") < html.indexOf(">host-add-attaches<"));
  const junit = renderJunit(report);
  t.true(junit.indexOf('name="host-remove-frees') < junit.indexOf('name="host-add-attaches'));
});

test("a report made from a damaged trace says how much was not checked, in all four formats", async (t) => {
  const report: RunReport = {
    ...syntheticReport(),
    traceDamage: { bytes: 95, regions: [{ offset: 10118, bytes: 95, kind: "corrupt", detail: "CRC mismatch", atRecord: 121, recordsLost: 1 }] },
  };
  const { dir, text } = await written(t, report);
  t.regex(text, /NOT CHECKED: 95 bytes of the trace in 1 damaged region \(1 record\(s\) lost\); first at byte 10118, before record #121: corrupt, CRC mismatch/);
  const json = JSON.parse(await readFile(join(dir, "report.json"), "utf8")) as RunReport;
  t.deepEqual(json.traceDamage, report.traceDamage);
  const junit = await readFile(join(dir, "junit.xml"), "utf8");
  parseXml(junit);
  t.regex(junit, /<property name="trace_bytes_not_checked" value="95"\/>/);
  t.regex(junit, /NOT CHECKED: 95 bytes/);
  t.regex(await readFile(join(dir, "report.html"), "utf8"), /class="abort-reason trace-damage">Not checked: 95 bytes/);
});

test("the summary shows the machine whole, compactly, with what was injected into it first (#16 item 12)", (t) => {
  const longPath = `/home/dev/src/netbsd/obj/${"sys/arch/amd64/compile/".repeat(4)}PLUGSTORM/netbsd`;
  const qemu = syntheticReport();
  qemu.profiles.machine = JSON.stringify({ type: "qemu", profile: "netbsd-guest", kernel: longPath, accel: "tcg", usbController: "qemu-xhci", usbPorts: 4, telemetry: { kind: "virtio-serial" }, memoryMb: 512, bootTimeoutNs: 120e9 });
  const line = renderText(qemu).split("\n").find((l) => l.startsWith("  machine: "))!;
  t.truthy(line);
  t.true(line.includes(longPath), "nothing cut off");
  t.false(line.includes("…"));
  t.regex(line, /^ {2}machine: qemu · profile netbsd-guest · kernel /);
  t.true(line.includes(` · bootTimeout ${formatNs(120e9)}`), "durations with their unit, under the storm file's name (machine.bootTimeout)");
  t.false(line.includes("bootTimeoutNs"), line);
  t.regex(line, /telemetry \{kind virtio-serial\}/);
  const sim = syntheticReport();
  sim.profiles.machine = JSON.stringify({ type: "sim", bugs: ["leak-ref", "free-before-drain"] });
  t.true(renderText(sim).includes("  machine: sim · bugs: leak-ref, free-before-drain\n"));
  sim.profiles.machine = JSON.stringify({ type: "sim", bugs: [] });
  t.true(renderText(sim).includes("  machine: sim · bugs: none\n"), "a clean machine says so");
});

test("what the guest agent cannot observe is said in the summary and report.html as 'not observed: WHAT (why)'", (t) => {
  const r = syntheticReport();
  t.false(renderText(r).includes("not observed"), "nothing said when the agent sees everything");
  r.notObserved = ["DETACH_PHASES: fbt::config_detach:entry missing", "/dev/drvctl: no device node (MAKEDEV drvctl)"];
  t.true(renderText(r).includes("  not observed: DETACH_PHASES (fbt::config_detach:entry missing); /dev/drvctl (no device node (MAKEDEV drvctl))\n"));
  const html = renderHtml(r);
  t.regex(html, /<div class="wide"><dt>Not observed<\/dt><dd[^>]*>DETACH_PHASES \(fbt::config_detach:entry missing\); \/dev\/drvctl/);
  // The machine too takes a whole row, wrapped, not an ellipsis.
  t.regex(html, /<div class="wide"><dt>Machine<\/dt><dd[^>]*>q35-xhci<\/dd>/);
});

test("SVG coordinates are written to a tenth exactly as the shortest-double printer writes them", (t) => {
  const old = (v: number) => (Math.round(v * 10) / 10).toString();
  for (const v of [0, -0, 0.04, -0.04, -0.05, 0.05, -0.15, 1.25, -1.25, 99_999_999.95, -99_999_999.95, 1e9, 1e15, NaN, Infinity, -Infinity, 1216.04]) t.is(svgCoordinate(v), old(v), String(v));
  fc.assert(
    fc.property(fc.double({ min: -1e10, max: 1e10, noNaN: true }), (v) => svgCoordinate(v) === old(v)),
    { numRuns: 20000, seed: 20261204 },
  );
});
