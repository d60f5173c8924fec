// `storm` (and `vm`) on QEMU with accel auto says which accelerator it got and why, in the
// run header and in the summary (#14). A bare machine (no guest, CPUs stopped)
// starts in well under a second. Starts QEMU: run under
// `flock /tmp/plugstorm-qemu.lock`.

import test from "ava";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chooseAccel, kvmDoubt, kvmDoubtWarning } from "../../src/qemu/index.js";
import { accelText } from "../../src/report/index.js";
import { ROOT, run, start, tempDir } from "../cli/helpers.js";

test("storm --accel auto on QEMU: the header and the summary name the accelerator used and why auto chose it", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "bare-auto.yaml");
  writeFileSync(file, readFileSync(join(ROOT, "scripts/storms/qemu-usb-bare.yaml"), "utf8").replace(/^( *)accel: tcg$/m, "$1accel: auto"));
  // What auto picks on this host, probed as the machine probes it (a bare machine never falls back).
  const choice = chooseAccel("auto");
  const said = `accel ${accelText("auto", choice.accel, choice.reason)}`;
  const r = await run(t, ["storm", file, "--out", join(dir, "out")], { timeoutMs: 60_000 });
  t.is(r.code, 1, r.stderr);
  const header = r.stderr.split("\n").slice(0, 3);
  t.true(header.includes(`machine started: ${said}`), header.join("\n"));
  const machine = r.stdout.split("\n").find((l) => l.startsWith("  machine: "))!;
  t.true(machine.includes(` · ${said} · `), machine);
  t.false(machine.includes("accel auto"), machine);
  // check --report on the trace says the same: the trace keeps the accelerator and why.
  const checked = await run(t, ["check", join(dir, "out", "trace.pstrace"), "--report", join(dir, "checked")]);
  t.is(checked.code, 1, checked.stderr);
  t.is(readFileSync(join(dir, "checked", "summary.txt"), "utf8").split("\n").find((l) => l.startsWith("  machine: ")), machine);
});

test("vm bare: the first line names the accelerator used and why auto chose it", async (t) => {
  const choice = chooseAccel("auto");
  const vm = start(t, ["vm", "bare"], { timeoutMs: 60_000 });
  await vm.waitFor(/Ctrl-C stops the machine/, 30_000);
  vm.child.kill("SIGINT");
  const r = await vm.done;
  t.is(r.stderr.split("\n")[0], `[qemu] started: accel ${accelText("auto", choice.accel, choice.reason)}`);
});

test("storm with accel kvm where auto would not take KVM: a warning in the header, before the machine starts; KVM all the same", async (t) => {
  const doubt = kvmDoubt();
  if (!existsSync("/dev/kvm")) {
    t.log("no /dev/kvm: QEMU cannot start under KVM here");
    t.pass();
    return;
  }
  const dir = tempDir(t);
  const file = join(dir, "bare-kvm.yaml");
  writeFileSync(file, readFileSync(join(ROOT, "scripts/storms/qemu-usb-bare.yaml"), "utf8").replace(/^( *)accel: tcg$/m, "$1accel: kvm"));
  const r = await run(t, ["storm", file, "--out", join(dir, "out")], { timeoutMs: 60_000 });
  const lines = r.stderr.split("\n");
  const started = lines.indexOf("machine started: accel kvm");
  t.true(started > 0, r.stderr);
  const warned = lines.indexOf(`warning: ${doubt === undefined ? "" : kvmDoubtWarning(doubt)}`);
  if (doubt === undefined) t.is(warned, -1, "no warning where auto would take KVM");
  else t.true(warned >= 0 && warned < started, r.stderr);
});
