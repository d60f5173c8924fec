// KVM asked for (accel kvm) is used as asked, with no fallback, but where
// auto would have picked TCG the machine warns first, with auto's reason.
// A fake /sys/module and /dev/kvm decide; no QEMU is started (the binary is
// one that does not exist, so start() stops right after the warning).

import test, { type ExecutionContext } from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { MachineObservation } from "../../src/hotplug/index.js";
import { QemuMachine, QemuNotFoundError, kvmDoubt, kvmDoubtWarning, type AccelProbe } from "../../src/qemu/index.js";

/** A fake host: an openable /dev/kvm, and kvm_pvm loaded or not. */
function host(t: ExecutionContext, pvm: boolean): AccelProbe {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "plugstorm-kvm-"));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const sysModule = path.join(root, "module");
  fs.mkdirSync(sysModule);
  if (pvm) fs.mkdirSync(path.join(sysModule, "kvm_pvm"));
  const devKvm = path.join(root, "kvm");
  fs.writeFileSync(devKvm, "");
  return { sysModule, devKvm };
}

test("kvmDoubt: auto's reason for TCG (kvm_pvm, no /dev/kvm), none where auto would take KVM", (t) => {
  const pvm = host(t, true);
  t.regex(kvmDoubt(pvm) ?? "", /kvm_pvm exists: this KVM is the PVM software back-end, which cannot run an unmodified guest$/);
  const plain = host(t, false);
  t.is(kvmDoubt(plain), undefined);
  t.is(kvmDoubt({ ...plain, devKvm: path.join(path.dirname(plain.devKvm!), "none") }), `${path.dirname(plain.devKvm!)}/none does not exist`);
});

async function warningsAtStart(probe: AccelProbe, accel: "kvm" | "auto"): Promise<string[]> {
  const machine = new QemuMachine({ accel, accelProbe: probe, binary: "/nonexistent/qemu-system-x86_64" });
  const seen: MachineObservation[] = [];
  machine.observe((o) => seen.push(o));
  await machine.start().then(
    () => {
      throw new Error("started without a QEMU binary");
    },
    (e: unknown) => {
      if (!(e instanceof QemuNotFoundError)) throw e;
    },
  );
  return seen.flatMap((o) => (o.type === "warning" ? [o.text] : []));
}

test("accel kvm on a kvm_pvm host: a warning before QEMU starts, naming auto's reason", async (t) => {
  const probe = host(t, true);
  const warnings = await warningsAtStart(probe, "kvm");
  t.deepEqual(warnings, [kvmDoubtWarning(kvmDoubt(probe)!)]);
  t.regex(warnings[0]!, /^KVM was asked for \(accel kvm\), but it is unlikely to run a guest here: .*kvm_pvm exists: .*; accel auto would use TCG$/);
});

test("no warning for accel kvm where auto would take KVM, nor for accel auto (which picks TCG itself)", async (t) => {
  t.deepEqual(await warningsAtStart(host(t, false), "kvm"), []);
  t.deepEqual(await warningsAtStart(host(t, true), "auto"), []);
});
