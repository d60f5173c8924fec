import test from "ava";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { execFileSync } from "node:child_process";
import { ROOT, run, start, tempDir } from "../cli/helpers.js";
import { alive } from "../helpers/process.js";
import type { CampaignReport, JobResult } from "../../src/campaign/index.js";

const TWO_GUESTS = join(ROOT, "scripts/campaigns/two-guests.yaml");

function report(out: string): CampaignReport {
  return JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as CampaignReport;
}

function results(out: string): Map<string, JobResult> {
  const dir = join(out, "results");
  return new Map(readdirSync(dir).map((f) => [f.replace(/\.json$/, ""), JSON.parse(readFileSync(join(dir, f), "utf8")) as JobResult]));
}

test("a two-guest campaign: the injected leak is one signature, on the leaky guest only, with reports, traces and a minimal storm", async (t) => {
  const d = tempDir(t);
  // The example campaign, with a shorter shrink (the best storm found so far is kept when the runs are spent).
  const file = join(d, "two-guests.yaml");
  writeFileSync(file, readFileSync(TWO_GUESTS, "utf8").replaceAll("../storms/", `${ROOT}/scripts/storms/`).replace("maxRuns: 100", "maxRuns: 25"));
  const out = join(d, "c");
  const r = await run(t, ["campaign", file, "--out", out, "--parallelism", "2"]);
  t.is(r.code, 1, r.stderr);
  const rep = report(out);
  t.is(rep.status, "complete");
  t.is(rep.jobs.total, 12);
  t.is(rep.jobs.finished, 12);
  t.is(rep.jobs.clean, 6, "every job on the clean guest is clean");
  // One finding per storm's NIC kind, both only on the leaky guest.
  const usb = rep.findings.filter((f) => f.storms.includes("usb-yank"));
  t.is(usb.length, 1, JSON.stringify(rep.findings.map((f) => f.signature.title)));
  t.deepEqual(usb[0]!.guests, ["leaky"]);
  t.is(usb[0]!.jobs, 4);
  t.is(usb[0]!.signature.rule, "host-remove-frees");
  t.true(usb[0]!.consequences.some((c) => c.signature.rule === "host-add-attaches"), "later adds the stuck thread starves are consequences");
  for (const f of rep.findings) t.deepEqual(f.guests, ["leaky"]);
  t.true(usb[0]!.firstSeen.at <= usb[0]!.lastSeen.at);
  // Links point at files that exist; the trace replays to the same rule offline.
  for (const e of usb[0]!.examples) {
    t.true(existsSync(join(out, e.trace)), e.trace);
    t.true(existsSync(join(out, e.report)), e.report);
  }
  const check = await run(t, ["check", join(out, usb[0]!.examples[0]!.trace), "--json"]);
  t.regex(check.stdout, /host-remove-frees/);
  // The minimal storm is attached and still breaks the rule.
  t.truthy(usb[0]!.shrunk);
  const shrunk = await run(t, ["storm", join(out, usb[0]!.shrunk!), "--json", "--out", join(dirname(out), "shrunk-run")]);
  t.is(shrunk.code, 1);
  t.true((JSON.parse(shrunk.stdout) as { failedRules: string[] }).failedRules.includes("host-remove-frees"));
  // JUnit: one failing test case per signature; HTML: a row per signature with links.
  const junit = readFileSync(join(out, "junit.xml"), "utf8");
  t.is(junit.match(/<failure /g)?.length, rep.findings.length);
  const html = readFileSync(join(out, "report.html"), "utf8");
  for (const f of rep.findings) t.true(html.includes(f.signature.id));
  t.true(html.includes(`href="${usb[0]!.examples[0]!.trace}"`));
  // The PC Card leak: one signature, the leak itself; the adds into the socket
  // whose event thread it hangs are its consequences, not a finding of their own.
  const pcmcia = rep.findings.filter((f) => f.storms.includes("pcmcia-eject-sick"));
  t.is(pcmcia.length, 1, JSON.stringify(pcmcia.map((f) => f.signature.title)));
  t.is(pcmcia[0]!.signature.rule, "host-remove-frees");
  t.deepEqual(pcmcia[0]!.guests, ["leaky"]);
  t.true(pcmcia[0]!.consequences.some((c) => c.signature.rule === "host-add-attaches" && c.signature.nicKind === "pcmcia-ne2000"), JSON.stringify(pcmcia[0]!.consequences));
  t.is(rep.findings.length, 2, "one signature per leaking storm");
  t.true(readFileSync(join(out, "summary.txt"), "utf8").includes(`${rep.findings.length} signatures`));
  t.regex(r.stderr, /12 jobs, 2 at a time \(--parallelism\)/);
  t.regex(r.stderr, /new signature \[[0-9a-f]{12}\] host-remove-frees/);
});

const SHORT = `name: short
machine: { type: sim }
nics: { mix: [ { kind: usb-net, count: 2 } ] }
schedule: { cycles: 20, maxInFlight: 2, dwell: 2ms }
`;
const LONG = `name: long
machine: { type: sim }
nics: { mix: [ { kind: usb-net, count: 2 } ] }
schedule: { cycles: 5000000, maxInFlight: 2, dwell: 2ms }
`;

test("--resume skips finished jobs and reruns only what is missing; without it an existing campaign is refused", async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "short.yaml"), SHORT);
  writeFileSync(join(d, "c.yaml"), "name: resumable\nstorms: [short.yaml]\nseeds: 1..4\nshrink: false\n");
  const out = join(d, "out");
  t.is((await run(t, ["campaign", join(d, "c.yaml"), "--out", out, "--parallelism", "2", "-q"])).code, 0);
  const first = results(out);
  t.is(first.size, 4);
  const refused = await run(t, ["campaign", join(d, "c.yaml"), "--out", out]);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /holds campaign "resumable" already: give --resume/);
  t.is(results(out).size, 4, "refusing lost nothing");
  rmSync(join(out, "results", "short.as-written.s2.r1.json"));
  rmSync(join(out, "results", "short.as-written.s4.r1.json"));
  const mtimes = new Map([...first.keys()].map((id) => [id, existsSync(join(out, "results", `${id}.json`)) ? statSync(join(out, "results", `${id}.json`)).mtimeMs : 0]));
  const again = await run(t, ["campaign", join(d, "c.yaml"), "--out", out, "--resume", "--parallelism", "2"]);
  t.is(again.code, 0, again.stderr);
  const second = results(out);
  t.is(second.size, 4);
  for (const [id, m] of mtimes) if (m > 0) t.is(statSync(join(out, "results", `${id}.json`)).mtimeMs, m, `${id} was not rerun`);
  t.not(second.get("short.as-written.s2.r1")!.finishedAt, first.get("short.as-written.s2.r1")!.finishedAt);
  t.is(report(out).jobs.finished, 4);
});

function childrenOf(pid: number): number[] {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" }).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test("Ctrl-C stops every running storm and worker, keeps finished results; --resume finishes the rest", async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "short.yaml"), SHORT);
  writeFileSync(join(d, "long.yaml"), LONG);
  writeFileSync(join(d, "c.yaml"), "name: interruptible\nstorms: [short.yaml, long.yaml]\nseeds: [1, 2]\nshrink: false\n");
  const out = join(d, "out");
  const c = start(t, ["campaign", join(d, "c.yaml"), "--out", out, "--parallelism", "2", "-v"]);
  await c.waitFor(/job short\.as-written\.s1\.r1: clean/, 60_000);
  await c.waitFor(/job short\.as-written\.s2\.r1: clean/, 60_000);
  await c.waitFor(/job long\.as-written\.s1\.r1: started/, 60_000);
  await c.waitFor(/job long\.as-written\.s2\.r1: started/, 60_000);
  const workers = childrenOf(c.child.pid!);
  t.is(workers.length, 2);
  c.child.kill("SIGINT");
  const r = await c.done;
  t.is(r.code, 130, r.stderr);
  for (const p of workers) t.false(alive(p), `worker ${p} is gone`);
  const kept = results(out);
  t.deepEqual([...kept.keys()].sort(), ["short.as-written.s1.r1", "short.as-written.s2.r1"]);
  const rep = report(out);
  t.is(rep.status, "interrupted");
  t.is(rep.jobs.notRun, 2);
  // The interrupted storms wrote their traces (stopped cleanly), but are not results.
  t.true(existsSync(join(out, "jobs", "long.as-written.s1.r1", "trace.pstrace")));
  // Resume the rest with a short storm in place of the long one: only the missing jobs run.
  writeFileSync(join(d, "long.yaml"), LONG.replace("5000000", "10"));
  const again = await run(t, ["campaign", join(d, "c.yaml"), "--out", out, "--resume", "--parallelism", "2"]);
  t.is(again.code, 0, again.stderr);
  t.is(results(out).size, 4);
  t.is(results(out).get("short.as-written.s1.r1")!.finishedAt, kept.get("short.as-written.s1.r1")!.finishedAt);
});

test("a job that cannot run is retried, then marked failed with its reason; the rest of the campaign goes on", async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "short.yaml"), SHORT);
  writeFileSync(join(d, "c.yaml"), `name: broken-host
storms: [short.yaml, ${join(ROOT, "scripts/storms/qemu-usb-bare.yaml")}]
attempts: 2
shrink: false
`);
  const out = join(d, "out");
  // A QEMU that is there but cannot start (a missing one is refused before the header): the QEMU job is a set-up error, not a finding.
  const bin = join(d, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "qemu-system-x86_64"), '#!/bin/sh\necho "qemu-system-x86_64: cannot start here" >&2\nexit 1\n', { mode: 0o755 });
  const r = await run(t, ["campaign", join(d, "c.yaml"), "--out", out, "--parallelism", "1"], { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` } });
  t.is(r.code, 2, r.stderr);
  const rep = report(out);
  t.is(rep.jobs.finished, 1);
  t.is(rep.failedJobs.length, 1);
  t.is(rep.failedJobs[0]!.jobId, "qemu-usb-bare.as-written.s1.r1");
  t.is(rep.failedJobs[0]!.attempts, 2);
  t.regex(rep.failedJobs[0]!.error, /QEMU failed to start.*cannot start here/s);
  t.is(rep.findings.length, 0);
  t.regex(readFileSync(join(out, "junit.xml"), "utf8"), /<error message="[^"]*QEMU failed to start/);
});

test("the time budget: no job starts after it; the report says so and --resume runs the rest", async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "short.yaml"), SHORT);
  writeFileSync(join(d, "c.yaml"), "name: budgeted\nstorms: [short.yaml]\nseeds: 1..3\nbudget: 1ms\nparallelism: 1\nshrink: false\n");
  const out = join(d, "out");
  const r = await run(t, ["campaign", join(d, "c.yaml"), "--out", out]);
  t.is(r.code, 0, r.stderr);
  const rep = report(out);
  t.is(rep.status, "budget");
  t.is(rep.jobs.finished, 1, "the job started before the budget ran out finished");
  t.is(rep.jobs.notRun, 2);
  t.regex(readFileSync(join(out, "junit.xml"), "utf8"), /<skipped message="2 jobs not run \(budget\)"/);
});

/** The README's campaign transcripts (```text blocks starting "$ npx plugstorm campaign scripts/campaigns/two-guests.yaml"). */
function readmeCampaignBlocks(): string[] {
  const text = readFileSync(join(ROOT, "README.md"), "utf8");
  return [...text.matchAll(/```text\n((?:\$ npx plugstorm worker[^\n]*\n)?\$ npx plugstorm campaign scripts\/campaigns\/two-guests\.yaml[^\n]*\n[\s\S]*?)```/g)].map((m) => m[1]!);
}

test("the README's local and queue campaign transcripts say what a real run of that campaign reports", async (t) => {
  const blocks = readmeCampaignBlocks();
  t.is(blocks.length, 2, "a local and a two-worker queue campaign");
  t.true(blocks.some((b) => b.includes("--queue redis://")));
  const d = tempDir(t);
  const file = join(d, "two-guests.yaml");
  writeFileSync(file, readFileSync(TWO_GUESTS, "utf8").replaceAll("../storms/", `${ROOT}/scripts/storms/`).replace(/shrink: .*/, "shrink: false"));
  const out = join(d, "c");
  const r = await run(t, ["campaign", file, "--out", out, "--parallelism", "2"]);
  t.is(r.code, 1, r.stderr);
  const rep = report(out);
  const byId = new Map(rep.findings.map((f) => [f.signature.id, f]));
  // The queue gives the same signatures as a local run (test/campaign/queue.test.ts), so both transcripts are held to this run.
  for (const block of blocks) {
    const lines = block.split("\n");
    let current: (typeof rep.findings)[number] | undefined;
    let checked = 0;
    for (const line of lines) {
      let m: RegExpExecArray | null;
      if ((m = /^(\d+) signatures:$/.exec(line))) t.is(Number(m[1]), rep.findings.length, line);
      else if ((m = /^campaign "two-guests" \(complete\): (\d+)\/(\d+) jobs finished · (\d+) clean · (\d+) with violations/.exec(line)))
        t.deepEqual(m.slice(1).map(Number), [rep.jobs.finished, rep.jobs.total, rep.jobs.clean, rep.jobs.violations], line);
      else if ((m = /^new signature \[([0-9a-f]{12})\] (.*) \(job \S+\)$/.exec(line))) t.is(byId.get(m[1]!)?.signature.title, m[2], line);
      else if ((m = /^\[([0-9a-f]{12})\] (.*)$/.exec(line))) {
        current = byId.get(m[1]!);
        t.is(current?.signature.title, m[2], line);
        checked++;
      } else if ((m = /^ {2}(\d+) verdicts in (\d+) jobs · guests: (.*) · storms: (.*)$/.exec(line))) {
        t.deepEqual([Number(m[1]), Number(m[2]), m[3], m[4]], [current!.count, current!.jobs, current!.guests.join(", "), current!.storms.join(", ")], line);
      } else if ((m = /^ {2}consequence: (.*) \((\d+) in (\d+) jobs\)$/.exec(line))) {
        const c = current!.consequences.find((x) => x.signature.title === m![1]);
        t.truthy(c, line);
        t.deepEqual([c!.count, c!.jobs], [Number(m[2]), Number(m[3])], line);
      }
    }
    t.is(checked, rep.findings.length, "every signature is shown");
  }
});
