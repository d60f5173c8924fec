// The `netbsd-guest` machine: the qcow2 disk `plugstorm image netbsd` builds
// (build/netbsd-guest/), booted by SeaBIOS -> NetBSD mbr -> bootxx -> /boot
// with the console on com0, root on ld0 (virtio-blk), an xhci controller for
// the USB NICs, and telemetry on com1 (isa-serial, /dev/tty01) or viocon(4)
// (a virtconsole on port 0: viocon has no MULTIPORT, so port 0 is all it sees).
import path from "node:path";
import type { MachineProfile, TelemetryTransport } from "../profile.js";

export interface NetbsdGuestImage {
  /** The qcow2 disk; runs on a temporary overlay (snapshot=on), never modified. */
  disk: string;
  /** The telemetry device the image's rc.conf points the agent at. */
  telemetry: "com1" | "viocon";
}

export interface NetbsdGuestOptions {
  memoryMiB?: number;
}

/** Where `plugstorm image netbsd` puts the image and its manifest, under a repository root. */
export function netbsdGuestPaths(repoRoot: string): { disk: string; manifest: string } {
  const dir = path.join(repoRoot, "build", "netbsd-guest");
  return { disk: path.join(dir, "netbsd.qcow2"), manifest: path.join(dir, "image.json") };
}

/** The QEMU telemetry transport that reaches a NetBSD guest's telemetry device. */
export function netbsdTelemetryTransport(t: NetbsdGuestImage["telemetry"]): TelemetryTransport {
  return t === "viocon" ? "virtio-console" : "uart";
}

export function netbsdGuestProfile(image: NetbsdGuestImage, opts: NetbsdGuestOptions = {}): MachineProfile {
  return {
    name: "netbsd-guest",
    machine: "q35",
    // GENERIC plus the first-boot cc build of the agent: 256 MiB is tight.
    memoryMiB: opts.memoryMiB ?? 512,
    usb: [{ id: "usbc", model: "qemu-xhci", usb2Ports: 8, usb3Ports: 4 }],
    telemetry: [netbsdTelemetryTransport(image.telemetry)],
    disk: { path: image.disk, format: "qcow2", interface: "virtio", snapshot: true },
  };
}
