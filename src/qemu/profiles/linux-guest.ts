// The `linux-guest` machine: the Debian kernel + initramfs built by
// scripts/build-linux-guest (build/linux-guest/), booted directly through the
// uncompressed kernel's PVH entry, with the telemetry virtio port the guest's
// init looks for and one xhci controller per USB NIC port (four by default).
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
  /** USB NIC ports, one xhci controller (root hub) each; default 4. */
  usbPorts?: number;
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
    // usb-net is full speed: it needs the controllers' USB2 ports. Linux
    // enumerates a hub's new ports one after another (debounce, reset,
    // addressing: ~0.45 s per device under TCG) but separate root hubs in
    // parallel, so each controller has one port: N NICs in flight attach in
    // the time of one. Storms use these ports as they are.
    usb: Array.from({ length: opts.usbPorts ?? 4 }, (_, i) => ({ id: i === 0 ? "usbc" : `usbc${i}`, model: "qemu-xhci" as const, usb2Ports: 1, usb3Ports: 0 })),
    telemetry: ["virtio-serial"],
    kernel: image.kernel,
    initrd: image.initrd,
    append: `console=ttyS0 quiet${opts.verboseAgent ? " plugstorm.verbose=1" : ""}`,
  };
}
