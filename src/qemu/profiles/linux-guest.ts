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
  /** USB NIC ports (lanes); default 4. See linuxGuestUsb for how they are laid out. */
  usbPorts?: number;
}

/**
 * Linux numbers USB buses 1..63 (USB_MAXBUS 64), and 6.1's xhci-hcd registers
 * two root hubs (buses) per controller even with no USB3 ports, so a 32nd
 * controller fails with "usbcore: failed to get bus number".
 */
export const LINUX_MAX_XHCI_CONTROLLERS = 31;
/** Controllers that carry lanes on hubs once there are more lanes than controllers can hold. */
const HUB_CONTROLLERS = 16;

/**
 * The USB layout for `lanes` NICs in flight. Linux enumerates one hub's new
 * ports one after another (debounce, reset, addressing: ~0.45 s per device
 * under TCG) but separate hubs in parallel, so every lane gets a hub of its
 * own: a root hub (one xhci controller with one port) up to 31 lanes, and
 * past that usb-hub devices, one lane each, spread over 16 controllers (the
 * controller's address0_mutex still serialises port reset and addressing).
 */
export function linuxGuestUsb(lanes: number): MachineProfile["usb"] {
  const id = (i: number): string => (i === 0 ? "usbc" : `usbc${i}`);
  if (lanes <= LINUX_MAX_XHCI_CONTROLLERS) {
    return Array.from({ length: lanes }, (_, i) => ({ id: id(i), model: "qemu-xhci" as const, usb2Ports: 1, usb3Ports: 0 }));
  }
  return Array.from({ length: HUB_CONTROLLERS }, (_, i) => {
    const hubs = Math.floor(lanes / HUB_CONTROLLERS) + (i < lanes % HUB_CONTROLLERS ? 1 : 0);
    return { id: id(i), model: "qemu-xhci" as const, usb2Ports: hubs, usb3Ports: 0, hubs, hubPorts: 1 };
  });
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
    usb: linuxGuestUsb(opts.usbPorts ?? 4),
    telemetry: ["virtio-serial"],
    kernel: image.kernel,
    initrd: image.initrd,
    append: `console=ttyS0 quiet${opts.verboseAgent ? " plugstorm.verbose=1" : ""}`,
  };
}
