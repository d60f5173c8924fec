// Builds the machine a storm names. The runner only sees the Machine
// interface; this is the one place that knows the sim and QEMU constructors.

import { QemuMachine, type Machine } from "../hotplug/index.js";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PROFILES, BARE_PROFILE, linuxGuestImage, linuxGuestProfile, type MachineProfile } from "../qemu/index.js";
import { SimMachine } from "../sim/index.js";
import type { MachineSpec, QemuMachineSpec } from "./spec.js";

/** The QEMU machine profile for a storm's machine section: a known profile, with the storm's overrides. */
/** The repository (or installed package) root: where build/linux-guest lives. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export class MachineSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MachineSetupError";
  }
}

export function qemuProfileFor(m: QemuMachineSpec): MachineProfile {
  let base: MachineProfile | undefined;
  if (m.profile === "bare") base = BARE_PROFILE;
  else if (m.profile === "linux-guest") {
    const image = linuxGuestImage(repoRoot());
    const kernel = m.kernel ?? image.kernel;
    const initrd = m.initrd ?? image.initrd;
    for (const f of [kernel, initrd]) {
      if (!existsSync(f)) throw new MachineSetupError(`linux-guest: ${f} does not exist; build the image with: plugstorm image linux (scripts/build-linux-guest)`);
    }
    base = linuxGuestProfile({ kernel, initrd }, { memoryMiB: m.memoryMb });
  } else base = PROFILES[m.profile];
  if (!base) {
    throw new Error(
      m.profile === "netbsd-guest"
        ? "machine profile netbsd-guest: no NetBSD image can be built here yet (a later issue); use linux-guest or bare"
        : `machine profile ${m.profile} is not known to src/qemu (known: ${Object.keys(PROFILES).join(", ")})`,
    );
  }
  const p: MachineProfile = {
    ...base,
    name: m.profile,
    memoryMiB: m.profile === "bare" ? (base.memoryMiB ?? 128) : m.memoryMb,
    // Four full-speed ports, what the storm validation assumed (USB_CONTROLLER_PORTS).
    usb: [m.usbController === "qemu-xhci" ? { id: "usbc", model: "qemu-xhci", usb2Ports: 4, usb3Ports: 4 } : { id: "usbc", model: "piix3-usb-uhci" }],
  };
  if (m.profile !== "bare") {
    if (m.telemetry === "none") delete p.telemetry;
    else p.telemetry = [m.telemetry];
  }
  if (m.kernel) p.kernel = m.kernel;
  if (m.initrd) p.initrd = m.initrd;
  if (m.image) p.disk = { path: m.image, snapshot: true };
  return p;
}

export function createMachine(m: MachineSpec, seed: number, qemu: { extraArgs?: string[] } = {}): Machine {
  if (m.type === "sim") return new SimMachine({ seed, bugs: m.bugs });
  const profile = qemuProfileFor(m);
  if (qemu.extraArgs) profile.extraArgs = [...(profile.extraArgs ?? []), ...qemu.extraArgs];
  return new QemuMachine({ profile, accel: m.accel, startTimeoutMs: 30_000 });
}
