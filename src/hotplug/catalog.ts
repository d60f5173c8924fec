// The NIC kinds plugstorm knows, as data: what QEMU device makes each one and
// which guest driver should attach to it. The guest driver names are what the
// checker expects to see in the guest's attach reports.

import type { NicBus, NicKind } from "./machine.js";

export interface QemuNicDevice {
  driver: string;
  /** Extra device_add properties besides id, bus, port, mac, serial. */
  props: Readonly<Record<string, string | number | boolean>>;
}

export interface GuestDriver {
  /** Driver name, or null when no driver of that OS attaches (see note). */
  driver: string | null;
  note?: string;
}

export interface NicKindInfo {
  kind: NicKind;
  bus: NicBus;
  description: string;
  /** How QEMU makes it; absent when QEMU cannot (simulated machine only). */
  qemu?: QemuNicDevice;
  /**
   * For kinds plugstorm emulates itself (QEMU usb-redir carrying a device
   * model from src/devices): the model's name.
   */
  redir?: { model: string };
  /** For USB kinds: the bConfigurationValue the guest must select. */
  usbConfiguration?: number;
  guest: Readonly<{ netbsd: GuestDriver; linux: GuestDriver }>;
}

export const NIC_CATALOG: Readonly<Record<NicKind, NicKindInfo>> = {
  "usb-net": {
    kind: "usb-net",
    bus: "usb",
    description: "QEMU usb-net (0525:a4a2), CDC ECM configuration",
    qemu: { driver: "usb-net", props: {} },
    usbConfiguration: 1,
    guest: {
      netbsd: { driver: "cdce", note: "RNDIS configuration matches no NetBSD driver, so NetBSD selects configuration 1 (CDC ECM)" },
      linux: { driver: "cdc_ether" },
    },
  },
  "usb-net-rndis": {
    kind: "usb-net-rndis",
    bus: "usb",
    description: "QEMU usb-net with the guest selecting configuration 2 (RNDIS)",
    // Same QEMU device: the configuration is chosen by the guest, not by QEMU.
    qemu: { driver: "usb-net", props: {} },
    usbConfiguration: 2,
    guest: {
      netbsd: {
        driver: null,
        note: "urndis(4) matches only class 0xe0/1/3 (wireless RNDIS); QEMU's RNDIS interface is class 2/2/0xff, so urndis cannot be exercised with QEMU",
      },
      linux: { driver: "rndis_host", note: "after writing 2 to bConfigurationValue" },
    },
  },
  "redir-cdce": {
    kind: "redir-cdce",
    bus: "usb",
    description: "plugstorm's own CDC-ECM NIC (1209:0001) through QEMU usb-redir: device-side unplug, faults and a wire answering ARP/ICMP",
    qemu: { driver: "usb-redir", props: {} },
    redir: { model: "cdc-ecm" },
    usbConfiguration: 1,
    guest: {
      netbsd: { driver: "cdce", note: "interface class 2/6/0 (CDC ECM); not run here: no NetBSD guest on this machine" },
      linux: { driver: "cdc_ether" },
    },
  },
  "redir-rndis": {
    kind: "redir-rndis",
    bus: "usb",
    description: "plugstorm's own RNDIS NIC (1209:0002, control interface 0xe0/1/3) through QEMU usb-redir",
    qemu: { driver: "usb-redir", props: {} },
    redir: { model: "rndis" },
    usbConfiguration: 1,
    guest: {
      netbsd: { driver: "urndis", note: "urndis_match takes interface class 0xe0/1/3 (wireless controller, RF, RNDIS); not run here: no NetBSD guest on this machine" },
      linux: { driver: "rndis_host" },
    },
  },
  "redir-ax88772": {
    kind: "redir-ax88772",
    bus: "usb",
    description: "plugstorm's own ASIX AX88772B (0b95:772b): vendor requests, embedded PHY at MII 0x10, framed bulk, through QEMU usb-redir",
    qemu: { driver: "usb-redir", props: {} },
    redir: { model: "ax88772b" },
    usbConfiguration: 1,
    guest: {
      netbsd: { driver: "axe", note: "matched by vendor and product (AX88772B); not run here: no NetBSD guest on this machine" },
      linux: { driver: "asix" },
    },
  },
  "pcmcia-ne2000": {
    kind: "pcmcia-ne2000",
    bus: "pcmcia",
    description: "NE2000-compatible PC Card (two-phase removal: deactivate in interrupt, detach in thread)",
    guest: {
      netbsd: { driver: "ne" },
      linux: { driver: "pcnet_cs" },
    },
  },
};

export function nicKindInfo(kind: NicKind): NicKindInfo {
  const info = (NIC_CATALOG as Record<string, NicKindInfo | undefined>)[kind];
  if (info === undefined) throw new UnsupportedNicError(`unknown NIC kind ${JSON.stringify(kind)}; known: ${Object.keys(NIC_CATALOG).join(", ")}`);
  return info;
}

export class UnsupportedNicError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedNicError";
  }
}

/** Kinds a QEMU machine can make, given the buses it has. */
export function qemuKinds(buses: ReadonlySet<NicBus>): NicKind[] {
  return Object.values(NIC_CATALOG)
    .filter((k) => k.qemu !== undefined && buses.has(k.bus))
    .map((k) => k.kind);
}
