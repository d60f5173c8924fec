// A small QEMU campaign end to end: real Linux guests under QEMU as campaign
// jobs on the local worker pool, and Ctrl-C stopping every VM the campaign
// started. Starts QEMU: run under `flock /tmp/plugstorm-qemu.lock`.

import test from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, start, tempDir } from "../cli/helpers.js";
import { alive } from "../helpers/process.js";
import type { CampaignReport } from "../../src/campaign/index.js";

test.before(() => {
  execFileSync(join(ROOT, "scripts/build-linux-guest"), ["--quiet"], { stdio: "pipe", timeout: 300_000 });
});

const LINUX = (cycles: number): string => `name: linux-usb
machine: { type: qemu, profile: linux-guest, accel: auto, telemetry: virtio-serial, bootTimeout: 60s }
nics: { mix: [ { kind: usb-net, count: 2 } ] }
schedule: { cycles: ${cycles}, maxInFlight: 2, dwell: { uniform: { min: 100ms, max: 300ms } } }
deadlines: { attach: 5s, detach: 5s, removal: 2s, guest: 60s }
model: linux
`;

function childrenOf(pid: number): number[] {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" }).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

test.serial("a QEMU campaign: two seeds on the real Linux guest, clean, with traces", async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "linux.yaml"), LINUX(4));
  writeFileSync(join(d, "c.yaml"), "name: qemu-small\nstorms: [linux.yaml]\nseeds: [1, 2]\nparallelism: 1\n");
  const out = join(d, "out");
  const r = await run(t, ["campaign", join(d, "c.yaml"), "--out", out], { timeoutMs: 110_000 });
  t.is(r.code, 0, r.stderr + r.stdout);
  const rep = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as CampaignReport;
  t.is(rep.jobs.finished, 2);
  t.is(rep.jobs.clean, 2);
  t.is(rep.cycles, 8);
  t.deepEqual(rep.findings, []);
  for (const s of [1, 2]) t.true(existsSync(join(out, "jobs", `linux-usb.as-written.s${s}.r1`, "trace.pstrace")));
});

test.serial("Ctrl-C during a QEMU campaign stops every VM it started", async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "linux.yaml"), LINUX(100000));
  writeFileSync(join(d, "c.yaml"), "name: qemu-stop\nstorms: [linux.yaml]\nseeds: [1]\nparallelism: 1\n");
  const c = start(t, ["campaign", join(d, "c.yaml"), "--out", join(d, "out"), "-v"], { timeoutMs: 110_000 });
  await c.waitFor(/job linux-usb\.as-written\.s1\.r1: started/, 30_000);
  // The worker process, then its QEMU.
  const until = Date.now() + 30_000;
  let qemu: number[] = [];
  while (qemu.length === 0 && Date.now() < until) {
    qemu = childrenOf(c.child.pid!).flatMap(childrenOf).filter((p) => commOf(p).startsWith("qemu-system"));
    if (qemu.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  t.is(qemu.length, 1, "the job's VM is running");
  c.child.kill("SIGINT");
  const r = await c.done;
  t.is(r.code, 130, r.stderr);
  for (const p of qemu) t.false(alive(p), `QEMU ${p} stopped`);
});
