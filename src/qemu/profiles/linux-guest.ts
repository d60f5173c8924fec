// The `linux-guest` machine: the Debian kernel + initramfs built by
// scripts/build-linux-guest (build/linux-guest/), booted directly through the
// uncompressed kernel's PVH entry, with the telemetry virtio port the guest's
// init looks for and an xhci controller with room for several USB NICs.
import path from "node:path";
import type { MachineProfile } from "../profile.js";

export interface LinuxGuestImage {
  /** Uncompressed ELF vmlinux (PVH entry). */
  kernel: string;
  /** gzip'd newc cpio with busybox, modules, the agent and init. */
  initrd: string;
}

export interface LinuxGuestOptions {
  /** The agent prints its debug trace on the guest console (plugstorm.verbose=1). */
  verboseAgent?: boolean;
  memoryMiB?: number;
}

/** Where scripts/build-linux-guest puts the image, under a repository root. */
export function linuxGuestImage(repoRoot: string): LinuxGuestImage {
  const dir = path.join(repoRoot, "build", "linux-guest");
  return { kernel: path.join(dir, "vmlinux"), initrd: path.join(dir, "initramfs.cpio.gz") };
}

export function linuxGuestProfile(image: LinuxGuestImage, opts: LinuxGuestOptions = {}): MachineProfile {
  return {
    name: "linux-guest",
    machine: "q35",
    memoryMiB: opts.memoryMiB ?? 512,
    // usb-net is full speed: it needs the controller's USB2 ports.
    usb: [{ id: "usbc", model: "qemu-xhci", usb2Ports: 8, usb3Ports: 4 }],
    telemetry: ["virtio-serial"],
    kernel: image.kernel,
    initrd: image.initrd,
    append: `console=ttyS0 quiet${opts.verboseAgent ? " plugstorm.verbose=1" : ""}`,
  };
}
