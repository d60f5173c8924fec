// #16 items 8 and 9: check prints a per-rule summary first, takes --rule,
// --examples and --quiet; trace cat filters by NIC and time window; the
// verdict header names the record's time and the deadline's, each named.
import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPORT_FILES } from "../../src/report/index.js";
import { ROOT, run, tempDir } from "./helpers.js";

/** A storm with a leaked reference: a few causes and many consequences. */
async function leakTrace(t: import("ava").ExecutionContext): Promise<string> {
  const dir = tempDir(t);
  const r = await run(t, ["storm", "--bug", "leak-ref", "--seed", "1", "--out", dir]);
  t.is(r.code, 1, r.stderr);
  return join(dir, "trace.pstrace");
}

test("check: per-rule summary first, in first-occurrence order, then findings with a per-rule example limit", async (t) => {
  const trace = await leakTrace(t);
  const r = await run(t, ["check", trace, "--examples", "1"]);
  t.is(r.code, 1);
  const lines = r.stdout.split("\n");
  t.is(lines[0], "rules broken, in the order they first broke:");
  // The leak first, whatever the counts; its header names the record's time and the deadline's.
  const m = /^\s+ERROR\s+host-remove-frees\s+\d+×\s+cdce0 \(nic7\) at record #\d+ \(t=(\d+\.\d{6}) s\); deadline ran out at t=(\d+\.\d{6}) s$/.exec(lines[2]!);
  t.truthy(m, lines[2]);
  t.true(Number(m![2]) > Number(m![1]), "the deadline ran out after the record that started it");
  // One full verdict per rule at most.
  const full = lines.filter((l) => /^\d+\. (ERROR|FATAL|WARNING) \[/.test(l));
  const rules = new Set(full.map((l) => /\] ([a-z-]+):/.exec(l)![1]));
  t.is(full.length, rules.size);
  t.regex(r.stdout, /not shown \(limit 1 per rule; --examples 0 shows all, --rule ID one rule\): /);
  // A cause whose consequences are all past the limit says so, rather than a heading with nothing under it.
  lines.forEach((l, i) => {
    if (/^\s+\d+ consequences? of it.*:$/.test(l)) t.regex(lines[i + 1] ?? "", /^\s+\d+\. (ERROR|FATAL|WARNING) /, `"${l}" has nothing under it`);
  });
  t.regex(r.stdout, /^\s+\d+ consequences? of it, none shown \(limit 1 per rule reached\)$/m);
  t.regex(lines.at(-2)!, /: \d+ violations of \d+ rule\(s\) \(\d+ causes, \d+ consequences\)$/);
  const all = await run(t, ["check", trace, "--examples", "0"]);
  t.notRegex(all.stdout, /not shown/);
  t.true(all.stdout.length > r.stdout.length);
});

test("check --rule shows one rule's verdicts; --quiet prints only the last line; bad values exit 2", async (t) => {
  const trace = await leakTrace(t);
  const one = await run(t, ["check", trace, "--rule", "host-add-attaches", "--examples", "0"]);
  t.is(one.code, 1);
  const ruled = one.stdout.split("\n").filter((l) => /\b(host-[a-z-]+|[a-z]+-[a-z-]+):/.test(l) && /^\s*\d+\. /.test(l));
  t.true(ruled.length > 0);
  for (const l of ruled) t.true(/host-add-attaches|cause not shown/.test(l), l);
  t.regex(one.stdout, /^\s+ERROR\s+host-add-attaches\s+/m);
  t.notRegex(one.stdout, /^\s+ERROR\s+host-remove-frees\s+\d+×/m, "the summary is of that rule only");
  const q = await run(t, ["check", trace, "-q"]);
  t.is(q.code, 1);
  t.is(q.stdout.trimEnd().split("\n").length, 1, q.stdout);
  t.regex(q.stdout, /violations of/);
  const bad = await run(t, ["check", trace, "--rule", "no-such-rule"]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--rule: no rule "no-such-rule"/);
  const badN = await run(t, ["check", trace, "--examples", "many"]);
  t.is(badN.code, 2);
  t.regex(badN.stderr, /--examples expects a whole number/);
});

test("trace cat --nic shows one NIC's records (host, QMP, guest, verdicts); --from/--to a window of trace time", async (t) => {
  const trace = await leakTrace(t);
  const all = await run(t, ["trace", "cat", trace, "--json"]);
  const recs = all.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; index?: number; tNs?: number; action?: { nicId?: string } });
  const nic = await run(t, ["trace", "cat", trace, "--json", "--nic", "nic7"]);
  t.is(nic.code, 0);
  const mine = nic.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, any>).filter((o) => o["type"] === "record");
  t.true(mine.length > 5);
  const bodies = new Set(mine.map((o) => o["body"]));
  for (const b of ["action", "qmpCommand", "guest"]) t.true(bodies.has(b), `${b} in ${[...bodies].join(",")}`);
  for (const o of mine) {
    const s = JSON.stringify(o);
    t.true(s.includes("nic7") || s.includes("cdce0") || o["body"] === "qmpReply", s);
  }
  t.false(mine.some((o) => o["action"] && o["action"].nicId !== "nic7"));
  // A window: only records inside it, and the status line says how many were shown.
  const win = await run(t, ["trace", "cat", trace, "--from", "1.5", "--to", "1600ms"]);
  t.is(win.code, 0);
  const times = win.stdout.split("\n").filter((l) => l.startsWith("+")).map((l) => Number(/^\+\s*([\d.]+)/.exec(l)![1]));
  t.true(times.length > 0);
  for (const x of times) t.true(x >= 1.5 && x <= 1.6, String(x));
  const inWindow = recs.filter((o) => o.type === "record" && o.tNs! >= 1.5e9 && o.tNs! <= 1.6e9).length;
  t.regex(win.stdout, new RegExp(`^# ${inWindow} of \\d+ records shown$`, "m"));
  const bad = await run(t, ["trace", "cat", trace, "--from", "soon"]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--from expects a trace time/);
});

test("check --report into a folder holding reports (a run's own folder) is refused, nothing touched; --overwrite replaces them", async (t) => {
  const dir = tempDir(t);
  const runDir = join(dir, "run");
  t.is((await run(t, ["storm", join(ROOT, "scripts/storms/usb-yank.yaml"), "--out", runDir, "-q"])).code, 0);
  const trace = join(runDir, "trace.pstrace");
  const bytes = (d: string): string[] => REPORT_FILES.map((f) => readFileSync(join(d, f), "latin1"));
  const runReports = bytes(runDir);
  const refused = await run(t, ["check", trace, "--report", runDir]);
  t.is(refused.code, 2, refused.stderr);
  t.is(refused.stderr.split("\n")[0], `plugstorm check: the report folder ${runDir} (--report) holds reports already (summary.txt, report.json, junit.xml and 1 more): give --overwrite to replace them, or another --report`);
  t.is(refused.stdout, "");
  t.deepEqual(bytes(runDir), runReports, "the run's reports are untouched");
  const other = join(dir, "checked");
  t.is((await run(t, ["check", trace, "--report", other, "-q"])).code, 0);
  writeFileSync(join(other, "junit.xml"), "an older report");
  t.is((await run(t, ["check", trace, "--report", other, "-q"])).code, 2);
  const replaced = await run(t, ["check", trace, "--report", other, "--overwrite", "-q"]);
  t.is(replaced.code, 0, replaced.stderr);
  t.regex(readFileSync(join(other, "junit.xml"), "utf8"), /^<\?xml/);
  const alone = await run(t, ["check", trace, "--overwrite"]);
  t.is(alone.code, 2);
  t.is(alone.stderr.split("\n")[0], "plugstorm check: --overwrite replaces the reports in the --report folder: give --report too");
});
