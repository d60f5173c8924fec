// Which accelerator can run a guest here. /dev/kvm existing is not enough:
// the kvm_pvm back-end answers like KVM but cannot run an unmodified guest
// kernel (README.md, "QEMU facts"), so auto picks TCG there; a KVM that
// opens elsewhere is still only a guess until the guest runs under it.

import fs from "node:fs";
import type { Accel, AccelRequest } from "./profile.js";

export interface AccelChoice {
  accel: Accel;
  reason: string;
  /**
   * KVM picked by `auto` from what the host shows: a KVM that opens may still
   * not run a guest (README.md, "QEMU facts"), so the machine checks for signs of life
   * and falls back to TCG (src/hotplug/qemu-machine.ts).
   */
  unproven?: true;
}

export interface AccelProbe {
  /** Default /sys/module. */
  sysModule?: string;
  /** Default /dev/kvm. */
  devKvm?: string;
}

export function chooseAccel(request: AccelRequest, probe: AccelProbe = {}): AccelChoice {
  if (request === "tcg") return { accel: "tcg", reason: "TCG requested" };
  if (request === "kvm") return { accel: "kvm", reason: "KVM requested" };
  const sysModule = probe.sysModule ?? "/sys/module";
  const devKvm = probe.devKvm ?? "/dev/kvm";
  if (fs.existsSync(`${sysModule}/kvm_pvm`)) {
    return { accel: "tcg", reason: `${sysModule}/kvm_pvm exists: this KVM is the PVM software back-end, which cannot run an unmodified guest` };
  }
  if (!fs.existsSync(devKvm)) return { accel: "tcg", reason: `${devKvm} does not exist` };
  try {
    fs.closeSync(fs.openSync(devKvm, "r+"));
  } catch (e) {
    return { accel: "tcg", reason: `cannot open ${devKvm}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  return { accel: "kvm", reason: `${devKvm} opens`, unproven: true };
}

/**
 * Why KVM is unlikely to run a guest here: the reason auto would pick TCG,
 * or undefined where auto would take KVM. KVM asked for is used all the
 * same (there is no fallback from a choice the user made); this is said.
 */
export function kvmDoubt(probe: AccelProbe = {}): string | undefined {
  const auto = chooseAccel("auto", probe);
  return auto.accel === "tcg" ? auto.reason : undefined;
}

/** The warning for KVM asked for on a host where auto would not take it. */
export function kvmDoubtWarning(reason: string): string {
  return `KVM was asked for (accel kvm), but it is unlikely to run a guest here: ${reason}; accel auto would use TCG`;
}

/** The warning for a guest silent under KVM asked for, after the deadline auto gives KVM before falling back. */
export function kvmSilentWarning(ms: number): string {
  return `the guest has printed nothing under KVM in ${ms / 1000} s (no console or telemetry output): KVM may not run guests on this host; try accel tcg or auto`;
}
