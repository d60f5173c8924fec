import test from "ava";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseTrace } from "../../src/trace/index.js";
import { ROOT, run, start, tempDir } from "./helpers.js";

const SMALL = `name: small
machine:
  type: sim
nics:
  mix:
    - { kind: usb-net, count: 2 }
    - { kind: pcmcia-ne2000, count: 1 }
schedule:
  cycles: 40
  maxInFlight: 3
  dwell: { uniform: { min: 1ms, max: 5ms } }
  seed: 5
holders:
  - { kind: ifnet, count: 2, probability: 0.5, hold: { uniform: { min: 1ms, max: 10ms } } }
sick:
  probability: 0.2
`;

const LONG = SMALL.replace("cycles: 40", "cycles: 1000000");

function writeStorm(dir: string, name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

interface Verdictish {
  rule: string;
  recordIndex: number;
}

function key(v: Verdictish): string {
  return `${v.rule}@${v.recordIndex}`;
}

test("--help works for every command and exits 0", async (t) => {
  for (const cmd of ["storm", "check", "shrink", "trace", "model", "vm", "qmp", "image", "serve"]) {
    const r = await run(t, [cmd, "--help"]);
    t.is(r.code, 0, cmd);
    t.regex(r.stdout, new RegExp(`usage: plugstorm ${cmd}`), cmd);
  }
  const top = await run(t, ["--help"]);
  t.is(top.code, 0);
  t.regex(top.stdout, /storm \[FILE\]/);
});

test("usage errors exit 2 with what was wrong", async (t) => {
  const unknown = await run(t, ["stormm"]);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown command "stormm"/);
  const badOpt = await run(t, ["storm", "--sed", "3"]);
  t.is(badOpt.code, 2);
  t.regex(badOpt.stderr, /--sed/);
  const serve = await run(t, ["serve"]);
  t.is(serve.code, 2);
  t.regex(serve.stderr, /serve: expected a trace file/);
  // A missing local input fails before any download (nanopb sources are checked first).
  const netbsd = await run(t, ["image", "netbsd", "--release", "/nonexistent/release"]);
  t.is(netbsd.code, 2);
  t.regex(netbsd.stderr, /plugstorm image netbsd: (nanopb runtime sources .* not found|\/nonexistent\/release: no SHA512 file)/);
  const qmp = await run(t, ["qmp", "/nonexistent/qmp.sock", "query-status"]);
  t.is(qmp.code, 2);
  t.regex(qmp.stderr, /cannot talk to QMP at \/nonexistent\/qmp.sock/);
});

test("a bad storm file exits 2 naming every problem with file, line and field", async (t) => {
  const dir = tempDir(t);
  const file = writeStorm(dir, "bad.yaml", "machine:\n  type: qemu\n  profile: bare\nnics:\n  mix:\n    - { kind: pcmcia-ne2000 }\nschedule:\n  cycels: 3\n");
  const r = await run(t, ["storm", file, "--out", join(dir, "out")]);
  t.is(r.code, 2);
  t.regex(r.stderr, /2 problems/);
  t.true(r.stderr.includes(`${file}:6:`), r.stderr);
  t.regex(r.stderr, /nics\.mix\[0\]\.kind: pcmcia-ne2000 is a PCMCIA card/);
  t.true(r.stderr.includes(`${file}:8:3: schedule.cycels: unknown key`), r.stderr);
  t.false(existsSync(join(dir, "out")), "nothing runs half-configured");
  const missing = await run(t, ["storm", join(dir, "nope.yaml")]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /nope\.yaml: .*no such file/);
});

test("storm on a sim storm writes trace and reports, exits 0; check agrees", async (t) => {
  const dir = tempDir(t);
  const file = writeStorm(dir, "small.yaml", SMALL);
  const out = join(dir, "out");
  const r = await run(t, ["storm", file, "--out", out]);
  t.is(r.code, 0, r.stderr + r.stdout);
  for (const f of ["trace.pstrace", "summary.txt", "report.json", "junit.xml", "report.html"]) t.true(existsSync(join(out, f)), f);
  t.regex(r.stderr, /seed 5/);
  t.true(r.stdout.includes(`plugstorm storm ${file} --seed 5`), r.stdout);
  const trace = parseTrace(readFileSync(join(out, "trace.pstrace")));
  t.is(trace.status.tail, "clean");
  t.is(trace.header.seed, 5);
  t.is(trace.header.scenarioText, SMALL);
  const check = await run(t, ["check", join(out, "trace.pstrace")]);
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, /no violations/);
});

test("storm with an injected bug exits 1; check on its trace gives the same verdicts", async (t) => {
  const dir = tempDir(t);
  const file = writeStorm(dir, "small.yaml", SMALL);
  const out = join(dir, "out");
  const r = await run(t, ["storm", file, "--out", out, "--bug", "leak-ref", "--json"]);
  t.is(r.code, 1, r.stderr);
  const live = JSON.parse(r.stdout) as { status: string; failedRules: string[]; verdicts: Verdictish[] };
  t.is(live.status, "violations");
  t.true(live.failedRules.length > 0);
  const check = await run(t, ["check", join(out, "trace.pstrace"), "--json"]);
  t.is(check.code, 1);
  const offline = JSON.parse(check.stdout) as { verdicts: Verdictish[] };
  t.deepEqual(offline.verdicts.map(key).sort(), live.verdicts.map(key).sort());
});

test("SIGINT mid-storm leaves a complete trace and a report", async (t) => {
  const dir = tempDir(t);
  const file = writeStorm(dir, "long.yaml", LONG);
  const out = join(dir, "out");
  const s = start(t, ["storm", file, "--out", out]);
  await s.waitFor(/started: /, 30_000);
  s.child.kill("SIGINT");
  const r = await s.done;
  t.is(r.code, 130, r.stderr);
  // A million cycles is a count like any other: only a storm bounded by its duration alone is "time-limited".
  t.regex(r.stderr, /started: 1000000 cycles, output in/);
  const trace = parseTrace(readFileSync(join(out, "trace.pstrace")));
  t.is(trace.status.tail, "clean", "readable to its end");
  const marks = trace.records.filter((x) => x.mark).map((x) => x.mark!.name);
  t.is(marks.at(-1), "storm-end");
  t.true(existsSync(join(out, "summary.txt")));
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as { exit: { status: string; reason?: string } };
  t.deepEqual(report.exit, { status: "aborted", reason: "interrupted" });
});

test("shrink returns a smaller storm that still breaks the same rule", async (t) => {
  const dir = tempDir(t);
  const file = writeStorm(dir, "small.yaml", SMALL.replace("machine:\n  type: sim\n", "machine:\n  type: sim\n  bugs: [leak-ref]\n"));
  const out = join(dir, "out");
  const first = await run(t, ["storm", file, "--out", out, "--json", "--stop-on-first"]);
  t.is(first.code, 1);
  const rule = (JSON.parse(first.stdout) as { failedRules: string[] }).failedRules[0]!;
  const shrunkFile = join(dir, "min.yaml");
  const sh = await run(t, ["shrink", join(out, "trace.pstrace"), "--out", shrunkFile]);
  t.is(sh.code, 1, sh.stderr);
  t.regex(sh.stdout, new RegExp(`rule ${rule}: (\\d+) steps -> (\\d+)`));
  const [, before, after] = /(\d+) steps -> (\d+)/.exec(sh.stdout)!;
  t.true(Number(after) < Number(before));
  const again = await run(t, ["storm", shrunkFile, "--out", join(dir, "out2"), "--json"]);
  t.is(again.code, 1);
  t.true((JSON.parse(again.stdout) as { failedRules: string[] }).failedRules.includes(rule));
});

test("model and trace commands read what storm wrote", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "out");
  const r = await run(t, ["storm", writeStorm(dir, "s.yaml", SMALL), "--out", out, "--quiet"]);
  t.is(r.code, 0);
  t.is(r.stdout.trim(), out);
  const cat = await run(t, ["trace", "cat", join(out, "trace.pstrace")]);
  t.is(cat.code, 0);
  t.regex(cat.stdout, /storm-begin/);
  const notTrace = await run(t, ["check", join(out, "summary.txt")]);
  t.is(notTrace.code, 2);
  t.regex(notTrace.stderr, /cannot read trace/);
  // Every command that reads a trace says what and where once (#16 item 12: a prefix was repeated).
  const summary = join(out, "summary.txt");
  for (const args of [["check", summary], ["trace", "cat", summary], ["trace", "export", summary], ["shrink", summary]]) {
    const e = await run(t, args);
    t.is(e.code, 2, args.join(" "));
    const first = e.stderr.split("\n")[0]!;
    t.is(first.split(summary).length - 1, 1, `the path once: ${first}`);
    t.regex(first, new RegExp(`^plugstorm ${args[0] === "trace" ? `trace ${args[1]}` : args[0]}: cannot read trace .*summary\\.txt: not a plugstorm trace: `));
  }
  const rules = await run(t, ["model", "rules"]);
  t.is(rules.code, 0);
  t.regex(rules.stdout, /free-with-zero-refs/);
  const dot = await run(t, ["model", "diagram", "--profile", "linux"]);
  t.is(dot.code, 0);
  t.regex(dot.stdout, /^digraph/);
});

test("the default storm runs without a file, in its own runs/ folder", async (t) => {
  const dir = tempDir(t);
  const r = await run(t, ["storm", "--json"], { cwd: dir });
  t.is(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { cycles: number; outDir: string };
  t.is(res.cycles, 2000);
  t.true(res.outDir.startsWith(join(dir, "runs")));
  t.regex(readdirSync(join(dir, "runs"))[0]!, /^\d{8}T\d{6}Z-seed1$/);
});

test("qemu-usb-bare.yaml against real QEMU ends with the no-guest-telemetry verdict", async (t) => {
  const dir = tempDir(t);
  const r = await run(t, ["storm", join(ROOT, "scripts/storms/qemu-usb-bare.yaml"), "--out", join(dir, "out"), "--json"], {
    timeoutMs: 60_000,
  });
  t.is(r.code, 1, r.stderr);
  const res = JSON.parse(r.stdout) as { failedRules: string[]; cycles: number; verdicts: Array<{ rule: string; side: string }> };
  t.deepEqual(res.failedRules, ["guest-telemetry-present"]);
  t.is(res.verdicts[0]!.side, "channel");
  t.is(res.cycles, 4);
});

test("a QEMU storm without QEMU installed exits 2 and says how to install it", async (t) => {
  const dir = tempDir(t);
  const r = await run(t, ["storm", join(ROOT, "scripts/storms/qemu-usb-bare.yaml"), "--out", join(dir, "out")], {
    env: { ...process.env, PATH: "/nonexistent" },
  });
  t.is(r.code, 2);
  t.regex(r.stderr, /qemu-system-x86_64" not found on PATH: run scripts\/setup-host/);
});
