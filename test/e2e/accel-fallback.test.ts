// --accel auto when KVM opens but cannot run the guest: QEMU is restarted
// under TCG once the guest stays silent past the deadline, and the started
// event says why. On these build machines /dev/kvm opens but is the kvm_pvm
// software back-end (README.md, "QEMU facts"); the probe is pointed at an empty
// /sys/module so auto takes KVM at its word, as it would on a host whose
// broken KVM is not recognisable. Run under `flock /tmp/plugstorm-qemu.lock`.
import test from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { MachineObservation } from "../../src/hotplug/index.js";
import { QemuMachine } from "../../src/qemu/index.js";
import { chooseAccel, kvmDoubt, kvmDoubtWarning, kvmSilentWarning, linuxGuestImage, linuxGuestProfile } from "../../src/qemu/index.js";
import { GuestStreamDecoder } from "../../src/telemetry/index.js";
import { start } from "../cli/helpers.js";
import { alive, childrenOf } from "../helpers/process.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

test.before(() => {
  execFileSync(join(root, "scripts/build-linux-guest"), ["--quiet"], { stdio: "pipe", timeout: 300_000 });
});

test("auto: a KVM that opens but runs no guest is given up for TCG after the sign-of-life deadline, and the run says so", async (t) => {
  const sysModule = mkdtempSync(join(tmpdir(), "plugstorm-nomodules-"));
  t.teardown(() => rmSync(sysModule, { recursive: true, force: true }));
  const choice = chooseAccel("auto", { sysModule });
  if (choice.accel !== "kvm") {
    // No /dev/kvm to open (a CI container): nothing here can be given up.
    t.log(`auto picks TCG outright here: ${choice.reason}`);
    t.is(choice.unproven, undefined);
    return;
  }
  const lifeTimeoutMs = 10_000;
  const machine = new QemuMachine({ profile: linuxGuestProfile(linuxGuestImage(root)), accel: "auto", accelProbe: { sysModule }, lifeTimeoutMs, startTimeoutMs: 30_000 });
  t.teardown(() => machine.stop());
  const seen: MachineObservation[] = [];
  const decoder = new GuestStreamDecoder();
  let hello: (() => void) | undefined;
  const helloSeen = new Promise<void>((r) => (hello = r));
  machine.observe((o) => {
    seen.push(o);
    if (o.type === "telemetry-bytes" && decoder.push(o.bytes).some((x) => x.type === "session-start")) hello!();
  });
  const pids: number[] = [];
  const poll = setInterval(() => {
    const pid = machine.qemu.pid;
    if (pid !== undefined && !pids.includes(pid)) pids.push(pid);
  }, 20);
  t.teardown(() => clearInterval(poll));

  const t0 = Date.now();
  await machine.start();
  const accel = machine.qemu.accel!;
  const started = seen.find((o) => o.type === "started");
  t.truthy(started, "a started event");
  if (accel.accel === "kvm") {
    // A host whose KVM works: the guest spoke in time and nothing was restarted.
    t.log(`KVM ran the guest (${Date.now() - t0} ms to start)`);
    t.is(pids.length, 1);
  } else {
    t.log(`fell back: ${accel.reason}`);
    t.true(Date.now() - t0 >= lifeTimeoutMs, "the restart came only after the deadline");
    t.regex(accel.reason, /KVM chosen \(\/dev\/kvm opens\) but the guest showed no sign of life \(no console or telemetry output\) within 10 s: restarted under TCG/);
    t.like(started, { type: "started", accel: "tcg" });
    t.true(started!.type === "started" && started!.description.includes("restarted under TCG"), "the run's started record carries the reason");
    t.true(pids.length === 2 && !alive(pids[0]!), `the silent QEMU (${pids[0]}) is gone, the TCG one (${pids[1]}) runs`);
  }
  // Either way the guest really runs: its agent says Hello.
  const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no Hello within 90 s of the restart")), 90_000).unref());
  await Promise.race([helloSeen, deadline]);
  t.false(seen.some((o) => o.type === "exited"), "the machine did not report the abandoned QEMU's exit as its own");
});

test("vm linux-guest --accel kvm where auto would not take KVM: a warning at start, one when the guest stays silent, and it keeps running", async (t) => {
  const doubt = kvmDoubt();
  if (doubt === undefined || !existsSync("/dev/kvm")) {
    // A KVM that runs guests (no warning due), or none to start QEMU under.
    t.log(`not a host whose KVM opens but is doubted: ${doubt ?? "auto takes KVM"}`);
    t.pass();
    return;
  }
  const vm = start(t, ["vm", "linux-guest", "--accel", "kvm"], { timeoutMs: 60_000 });
  // QEMU is the vm process's child: ended here even when the test fails (the helper SIGKILLs the vm process, which cannot then stop it).
  const qemu: number[] = [];
  t.teardown(() => {
    for (const pid of qemu) if (alive(pid)) process.kill(pid, "SIGKILL");
  });
  await vm.waitFor(/^machine linux-guest running/m, 30_000);
  qemu.push(...childrenOf(vm.child.pid!));
  const t0 = Date.now();
  await vm.waitFor(/^warning: the guest has printed nothing under KVM/m, 25_000);
  t.log(`silent warning ${Date.now() - t0} ms after "running"`);
  vm.child.kill("SIGINT");
  const r = await vm.done;
  t.is(r.code, 0, r.stderr);
  const lines = r.stderr.split("\n");
  t.is(lines[0], `warning: ${kvmDoubtWarning(doubt)}`, "the first line, before QEMU starts");
  t.is(lines[1], "[qemu] started: accel kvm", "KVM as asked: no fallback");
  t.true(lines.includes(`warning: ${kvmSilentWarning(15_000)}`), r.stderr);
  t.false(lines.some((l) => /restarted under TCG/.test(l)));
  for (const pid of qemu) t.false(alive(pid), `QEMU ${pid} stopped with the vm`);
});
