// Builds the machine a storm names. The runner only sees the Machine
// interface; this is the one place that knows the sim and QEMU constructors.

import type { Machine } from "../hotplug/index.js";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { QemuMachine, PROFILES, BARE_PROFILE, usbPorts, linuxGuestImage, linuxGuestProfile, netbsdGuestPaths, netbsdGuestProfile, netbsdTelemetryTransport, type MachineProfile, type NetbsdGuestImage } from "../qemu/index.js";
import { qemuInputsMissing } from "../qemu/process.js";
import { SimMachine } from "../sim/index.js";
import { usbPortsOf, type MachineSpec, type QemuMachineSpec } from "./spec.js";

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
  constructor(
    message: string,
    /** A file the storm named (machine.kernel, .initrd, .image) that is missing: the caller may say it in its own words (vm: --kernel). */
    readonly missing?: { field: "kernel" | "initrd" | "image"; file: string },
  ) {
    super(message);
    this.name = "MachineSetupError";
  }
}

/** A file the storm named itself is missing: building the default image would not bring it. */
function namedFileMissing(profile: string, field: "kernel" | "initrd" | "image", file: string): MachineSetupError {
  return new MachineSetupError(`${profile}: machine.${field} ${file} does not exist`, { field, file });
}

export function qemuProfileFor(m: QemuMachineSpec): MachineProfile {
  let base: MachineProfile | undefined;
  if (m.profile === "bare") base = BARE_PROFILE;
  else if (m.profile === "linux-guest") {
    const image = linuxGuestImage(repoRoot());
    const kernel = m.kernel ?? image.kernel;
    const initrd = m.initrd ?? image.initrd;
    for (const field of ["kernel", "initrd"] as const) {
      const f = field === "kernel" ? kernel : initrd;
      if (existsSync(f)) continue;
      if (m[field] !== undefined) throw namedFileMissing("linux-guest", field, f);
      throw new MachineSetupError(`linux-guest: ${f} does not exist; build the image with: plugstorm image linux (scripts/build-linux-guest)`);
    }
    base = linuxGuestProfile({ kernel, initrd }, { memoryMiB: m.memoryMb, usbPorts: usbPortsOf(m) });
  } else if (m.profile === "netbsd-guest") {
    base = netbsdGuestProfile(netbsdImageFor(m), { memoryMiB: m.memoryMb });
  } else base = PROFILES[m.profile];
  if (!base) throw new Error(`machine profile ${m.profile} is not known to src/qemu (known: ${Object.keys(PROFILES).join(", ")})`);
  const p: MachineProfile = {
    ...base,
    name: m.profile,
    memoryMiB: m.profile === "bare" ? (base.memoryMiB ?? 128) : m.memoryMb,
    // As many full-speed ports as the storm validation allowed NICs in flight (machine.usbPorts).
    usb: m.usbController === "qemu-xhci" ? xhciControllers(base, usbPortsOf(m)) : [{ id: "usbc", model: "piix3-usb-uhci" }],
  };
  if (m.profile !== "bare") {
    if (m.telemetry === "none") delete p.telemetry;
    else p.telemetry = [m.telemetry];
  }
  if (m.cpus !== undefined) p.cpus = m.cpus;
  if (m.kernel) p.kernel = m.kernel;
  if (m.initrd) p.initrd = m.initrd;
  // netbsd-guest took the image (and its format) above.
  if (m.image && m.profile !== "netbsd-guest") p.disk = { path: m.image, snapshot: true };
  return p;
}

/**
 * The QEMU profile of a machine section once everything it starts from is
 * there: the guest image (kernel, initrd or disk) and the QEMU binary. Throws
 * MachineSetupError naming what is missing, without starting anything: a
 * command asks before its header, so the cause is its first line.
 */
export function checkedQemuProfile(m: QemuMachineSpec): MachineProfile {
  const profile = qemuProfileFor(m);
  const missing = qemuInputsMissing(profile);
  if (missing) throw new MachineSetupError(missing.message);
  return profile;
}

/**
 * The NetBSD disk a storm boots: machine.image, or what `plugstorm image
 * netbsd` built (its image.json says which telemetry device the agent uses,
 * and the storm's machine.telemetry must reach it).
 */
function netbsdImageFor(m: QemuMachineSpec): NetbsdGuestImage {
  const paths = netbsdGuestPaths(repoRoot());
  // Without a manifest saying otherwise (an image of the user's own), the
  // storm's machine.telemetry says where the agent talks.
  let telemetry: NetbsdGuestImage["telemetry"] = m.telemetry === "uart" ? "com1" : "viocon";
  let disk = m.image;
  if (existsSync(paths.manifest)) {
    const man = JSON.parse(readFileSync(paths.manifest, "utf8")) as { image?: unknown; telemetry?: unknown };
    // The manifest describes the image it built, not one the storm names.
    const ours = disk === undefined || (typeof man.image === "string" && man.image === disk);
    if (ours && (man.telemetry === "viocon" || man.telemetry === "com1")) telemetry = man.telemetry;
    if (disk === undefined && typeof man.image === "string") disk = man.image;
  }
  disk ??= paths.disk;
  if (!existsSync(disk) && m.image !== undefined) throw namedFileMissing("netbsd-guest", "image", disk);
  if (!existsSync(disk)) throw new MachineSetupError(`netbsd-guest: ${disk} does not exist; build the image with: plugstorm image netbsd (see images/netbsd/README.md)`);
  const want = netbsdTelemetryTransport(telemetry);
  if (m.telemetry !== "none" && m.telemetry !== want) {
    throw new MachineSetupError(`netbsd-guest: the image's agent talks on ${telemetry === "com1" ? "com1 (/dev/tty01)" : "viocon"}; set machine.telemetry: ${want} (got ${m.telemetry})`);
  }
  return { disk, telemetry };
}

/**
 * The storm's `ports` full-speed xhci ports: the profile's own controllers when
 * they add up to exactly that (linux-guest puts one port on each of its root
 * hubs, which Linux enumerates in parallel); else one controller with that
 * many, up to xhci's 15 USB2 ports, and past that one controller per port.
 */
function xhciControllers(base: MachineProfile, ports: number): NonNullable<MachineProfile["usb"]> {
  const own = base.usb ?? [];
  const fullSpeed = own.reduce((n, u) => n + (u.model === "qemu-xhci" ? usbPorts(u).length : 0), 0);
  if (own.length > 1 && own.every((u) => u.model === "qemu-xhci") && fullSpeed === ports) return own.map((u) => ({ ...u }));
  if (ports <= XHCI_MAX_USB2_PORTS) return [{ id: "usbc", model: "qemu-xhci", usb2Ports: ports, usb3Ports: 4 }];
  return Array.from({ length: ports }, (_, i) => ({ id: i === 0 ? "usbc" : `usbc${i}`, model: "qemu-xhci" as const, usb2Ports: 1, usb3Ports: 0 }));
}

/** qemu-xhci's p2= property goes up to 15. */
const XHCI_MAX_USB2_PORTS = 15;

export function createMachine(m: MachineSpec, seed: number, qemu: { extraArgs?: string[]; logDir?: string } = {}): Machine {
  if (m.type === "sim") return new SimMachine({ seed, bugs: m.bugs });
  const profile = qemuProfileFor(m);
  if (qemu.extraArgs) profile.extraArgs = [...(profile.extraArgs ?? []), ...qemu.extraArgs];
  return new QemuMachine({ profile, accel: m.accel, startTimeoutMs: 30_000, ...(qemu.logDir ? { logDir: qemu.logDir } : {}) });
}
