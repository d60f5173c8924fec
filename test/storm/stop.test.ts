// Every run ends when told: whatever the storm's shape, an abort (Ctrl-C,
// SIGTERM, --time-limit all abort the run's signal) takes effect within a
// second of wall time, and the trace ends with the storm's end mark.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadStorm, parseStorm, runStorm, ScenarioError, type StormInput, type StormSpec } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";
import { start } from "../cli/helpers.js";

function temp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), "plugstorm-stop-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const DAY_NS = 24 * 3600e9;

/** A validated storm with one field set past what validation allows (the API takes a StormSpec as is). */
function withDwell(input: StormInput, ns: number): StormSpec {
  const spec = loadStorm(input);
  return { ...spec, schedule: { ...spec.schedule, dwell: { type: "fixed", ns } } };
}

const SHAPES: Array<[string, () => StormSpec]> = [
  // The sim guest reports once a second of machine time: a month-long dwell is millions of records in one wait.
  ["a month-long dwell", () => withDwell({ machine: { type: "sim" }, schedule: { cycles: 3 } }, 30 * DAY_NS)],
  ["back-to-back short cycles", () => loadStorm({ machine: { type: "sim" }, nics: { mix: [{ kind: "usb-net", count: 3 }] }, schedule: { cycles: 10_000_000, maxInFlight: 3, dwell: "1ms" }, holders: [{ kind: "ifnet", count: 2, probability: 0.5, hold: "2ms" }] })],
  [
    "an explicit step list with a day-long sleep",
    () =>
      loadStorm({
        machine: { type: "sim" },
        schedule: { steps: [{ add: { nic: "a", kind: "usb-net" } }, { traffic: { nic: "a", pps: 100000 } }, { sleep: "86400s" }, { remove: "a" }] },
      }),
  ],
];

for (const [shape, make] of SHAPES) {
  test(`an aborted run stops within 1 s of wall time: ${shape}`, async (t) => {
    const dir = temp(t);
    const ac = new AbortController();
    let records = 0;
    let abortedAt = 0;
    let finishingAt = 0;
    const live = {
      header() {},
      record() {
        // From a timer, as Ctrl-C and --time-limit come: it fires only when the run lets the event loop in.
        if (++records === 20_000) {
          abortedAt = performance.now();
          setTimeout(() => ac.abort("interrupted"), 0);
        }
      },
    };
    const r = await runStorm(make(), {
      out: join(dir, "out"),
      signal: ac.signal,
      live,
      onProgress: (p) => {
        if (p.phase === "finishing") finishingAt = performance.now();
      },
    });
    t.true(abortedAt > 0, `the storm made ${records} records before it ended on its own`);
    const took = finishingAt - abortedAt;
    t.log(`${records} records; stopped ${took.toFixed(0)} ms after the abort was asked for`);
    t.true(took < 1000, `stopped ${took.toFixed(0)} ms after the abort was asked for`);
    t.is(r.abortReason, "interrupted");
    const trace = parseTrace(readFileSync(r.traceFile!));
    t.is(trace.records.filter((x) => x.mark).at(-1)?.mark?.name, "storm-end");
  });
}

test("a duration over 24 hours is refused with its line and column", (t) => {
  const text = "machine: { type: sim }\nschedule:\n  cycles: 2\n  dwell: 90000s\ndeadlines:\n  attach: 1e30\n";
  const e = t.throws(() => parseStorm(text, "long.yaml"), { instanceOf: ScenarioError });
  t.regex(e!.message, /long\.yaml:4:10: schedule\.dwell: expected a duration of at most 86400s \(24 hours\); got "90000s"/);
  t.regex(e!.message, /long\.yaml:6:11: deadlines\.attach: expected a duration of at most 86400s/);
});

const FLOOD = "name: flood\nmachine: { type: sim }\nschedule:\n  cycles: 10000\n  dwell: 86400s\n";

test("--time-limit and SIGTERM end a long-dwell storm; --max-trace-bytes ends it with its own reason", async (t) => {
  const dir = temp(t);
  const file = join(dir, "flood.yaml");
  writeFileSync(file, FLOOD);

  const limited = await start(t, ["storm", file, "--out", join(dir, "a"), "--time-limit", "1s"]).done;
  t.is(limited.code, 0, limited.stderr);
  t.regex(limited.stderr, /started: 10000 cycles, output in/);
  t.regex(limited.stdout, /stopped early: time limit/);
  // The storm's own limit, not a model deadline, heads the summary too: a planned end, not an abort.
  t.regex(limited.stdout, /^plugstorm .* · TIME LIMIT(?: before the first cycle completed)?, no violations$/m);
  const a = join(dir, "a");
  t.deepEqual((JSON.parse(readFileSync(join(a, "report.json"), "utf8")) as { exit: unknown }).exit, { status: "time-limit" });
  const junit = readFileSync(join(a, "junit.xml"), "utf8");
  t.regex(junit, /<testsuites [^>]*errors="0"/, "no <error> case for a time limit");
  t.false(junit.includes("<error"));
  t.regex(readFileSync(join(a, "report.html"), "utf8"), /<span class="badge pass">TIME LIMIT<\/span>/);
  const limitedJson = await start(t, ["storm", file, "--out", join(dir, "a2"), "--time-limit", "1s", "--json"]).done;
  t.is(limitedJson.code, 0, limitedJson.stderr);
  t.like(JSON.parse(limitedJson.stdout), { status: "time-limit", exitCode: 0, abortReason: "time limit", stop: { kind: "time-limit" } });

  const s = start(t, ["storm", file, "--out", join(dir, "b")]);
  await s.waitFor(/started: /, 30_000);
  s.child.kill("SIGTERM");
  const termed = await s.done;
  t.is(termed.code, 143, termed.stderr);
  t.is(parseTrace(readFileSync(join(dir, "b", "trace.pstrace"))).records.filter((x) => x.mark).at(-1)?.mark?.name, "storm-end");

  const capped = await start(t, ["storm", file, "--out", join(dir, "c"), "--max-trace-bytes", "1M", "--json"]).done;
  t.is(capped.code, 0, capped.stderr);
  const j = JSON.parse(capped.stdout) as { abortReason: string; status: string; stop: unknown };
  t.is(j.status, "trace-limit");
  t.deepEqual(j.stop, { kind: "max-trace-bytes", bytes: 1 << 20 });
  t.regex(j.abortReason, /^trace size limit: the trace reached 1048576 bytes/);
  const size = statSync(join(dir, "c", "trace.pstrace")).size;
  t.true(size >= 1 << 20 && size < (1 << 20) + 64 * 1024, `trace of ${size} bytes`);
  const report = JSON.parse(readFileSync(join(dir, "c", "report.json"), "utf8")) as { exit: { status: string; reason: string } };
  t.is(report.exit.status, "trace-limit");
  t.regex(report.exit.reason, /trace size limit/);
  t.regex(readFileSync(join(dir, "c", "summary.txt"), "utf8"), /^plugstorm .* · TRACE LIMIT(?: before the first cycle completed)?, no violations$/m);
  t.false(readFileSync(join(dir, "c", "junit.xml"), "utf8").includes("<error"), "no <error> case for a trace size limit");
  const cappedHtml = readFileSync(join(dir, "c", "report.html"), "utf8");
  t.regex(cappedHtml, /<span class="badge pass">TRACE LIMIT<\/span>/);
  t.regex(cappedHtml, /<p class="stop-reason">Stopped early: trace size limit: the trace reached 1048576 bytes/);
});
