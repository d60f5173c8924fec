// A machine profile is plain data (it can live in a scenario file); argv() is
// the one place that knows how QEMU spells it.

export type Accel = "kvm" | "tcg";
export type AccelRequest = Accel | "auto";

export interface UsbControllerSpec {
  /** QEMU id; the USB bus is `<id>.0`. */
  id: string;
  model: "qemu-xhci" | "piix3-usb-uhci";
  /** qemu-xhci only: USB2 ports (p2=, 1..15; default 8). Full-speed devices like usb-net need these. */
  usb2Ports?: number;
  /** qemu-xhci only: USB3 ports (p3=, 0..15; default 4). */
  usb3Ports?: number;
  /**
   * qemu-xhci only: QEMU usb-hub devices on USB2 ports 1..hubs (at most
   * usb2Ports). Devices then plug into the hubs' ports ("1.1", "1.2", ...):
   * a guest enumerates each hub's ports in a work item of its own, so hubs
   * add lanes where a guest runs out of controllers (Linux: 64 USB buses).
   */
  hubs?: number;
  /** Ports of each hub offered to devices, 1..8 (QEMU's usb-hub has 8); default 8. */
  hubPorts?: number;
}

/**
 * Guest→host telemetry channel kinds (see the README's "QEMU facts").
 * `virtio-console` is a virtconsole on port 0 of its own virtio-serial device:
 * the only port a driver without MULTIPORT (NetBSD's viocon(4)) can reach.
 */
export type TelemetryTransport = "virtio-serial" | "uart" | "virtio-console";

export const TELEMETRY_TRANSPORTS: readonly TelemetryTransport[] = ["virtio-serial", "uart", "virtio-console"];

export interface DiskSpec {
  path: string;
  format?: "raw" | "qcow2";
  interface?: "virtio" | "ide";
  /** Write to a temporary overlay, leave the image untouched. Default true. */
  snapshot?: boolean;
}

export interface MachineProfile {
  name: string;
  /** QEMU -machine type; default q35. */
  machine?: string;
  memoryMiB?: number;
  cpus?: number;
  /** -cpu model; default QEMU's. */
  cpu?: string;
  usb: UsbControllerSpec[];
  /** Telemetry channels, each a unix socket chardev QEMU serves and we connect to. */
  telemetry?: TelemetryTransport[];
  /** Direct kernel boot; an uncompressed ELF vmlinux boots through its PVH entry. */
  kernel?: string;
  initrd?: string;
  append?: string;
  disk?: DiskSpec;
  /** Start with the CPUs stopped (-S). */
  paused?: boolean;
  /** Appended verbatim after everything else. */
  extraArgs?: string[];
}

/** Virtio-serial port name the guest agent looks for in /sys/class/virtio-ports/* /name. */
export const TELEMETRY_PORT_NAME = "org.plugstorm.telemetry";

export const DEFAULT_USB_CONTROLLER: UsbControllerSpec = { id: "usbc", model: "qemu-xhci", usb2Ports: 8, usb3Ports: 4 };

/**
 * `bare`: no guest OS, CPUs stopped. USB hot-plug still completes in QEMU
 * (DEVICE_DELETED does not involve the guest for USB), so it is the cheapest
 * machine for exercising the host side.
 */
export const BARE_PROFILE: MachineProfile = {
  name: "bare",
  memoryMiB: 128,
  usb: [DEFAULT_USB_CONTROLLER],
  paused: true,
};

export const PROFILES: Readonly<Record<string, MachineProfile>> = { bare: BARE_PROFILE };

export class ProfileError extends Error {
  constructor(profile: string, message: string) {
    super(`machine profile ${JSON.stringify(profile)}: ${message}`);
    this.name = "ProfileError";
  }
}

/** Throws ProfileError naming the first field that QEMU would reject or we cannot serve. */
export function validateProfile(p: MachineProfile): void {
  const fail = (msg: string): never => {
    throw new ProfileError(p.name, msg);
  };
  if (p.memoryMiB !== undefined && (!Number.isInteger(p.memoryMiB) || p.memoryMiB < 16)) fail(`memoryMiB must be an integer >= 16, got ${p.memoryMiB}`);
  if (p.cpus !== undefined && (!Number.isInteger(p.cpus) || p.cpus < 1)) fail(`cpus must be a positive integer, got ${p.cpus}`);
  if (p.usb.length > MAX_USB_CONTROLLERS) fail(`usb lists ${p.usb.length} controllers; at most ${MAX_USB_CONTROLLERS} fit (${MAX_USB_CONTROLLERS / 8} PCI slots of eight root ports)`);
  const ids = new Set<string>();
  p.usb.forEach((u, i) => {
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(u.id)) fail(`usb[${i}].id ${JSON.stringify(u.id)} is not a valid QEMU id`);
    if (ids.has(u.id)) fail(`usb[${i}].id ${JSON.stringify(u.id)} is used twice`);
    ids.add(u.id);
    if (u.model === "qemu-xhci") {
      const hubs = u.hubs ?? 0;
      if (!Number.isInteger(hubs) || hubs < 0 || hubs > (u.usb2Ports ?? 4)) fail(`usb[${i}].hubs must be 0..usb2Ports (${u.usb2Ports ?? 4}), got ${u.hubs}`);
      if (u.hubPorts !== undefined && (!Number.isInteger(u.hubPorts) || u.hubPorts < 1 || u.hubPorts > 8)) fail(`usb[${i}].hubPorts must be 1..8 (QEMU's usb-hub has 8 ports), got ${u.hubPorts}`);
      if (u.usb2Ports !== undefined && (!Number.isInteger(u.usb2Ports) || u.usb2Ports < 1 || u.usb2Ports > 15)) fail(`usb[${i}].usb2Ports must be 1..15, got ${u.usb2Ports}`);
      if (u.usb3Ports !== undefined && (!Number.isInteger(u.usb3Ports) || u.usb3Ports < 0 || u.usb3Ports > 15)) fail(`usb[${i}].usb3Ports must be 0..15, got ${u.usb3Ports}`);
    } else if (u.model === "piix3-usb-uhci") {
      if (u.hubs !== undefined || u.hubPorts !== undefined) fail(`usb[${i}]: hubs are supported on qemu-xhci only`);
      if (u.usb2Ports !== undefined || u.usb3Ports !== undefined) fail(`usb[${i}]: piix3-usb-uhci has a fixed 2 ports; drop usb2Ports/usb3Ports`);
    } else {
      fail(`usb[${i}].model ${JSON.stringify((u as { model: unknown }).model)} is not one of qemu-xhci, piix3-usb-uhci`);
    }
  });
  const t = p.telemetry ?? [];
  if (new Set(t).size !== t.length) fail(`telemetry lists a transport twice: ${t.join(", ")}`);
  for (const x of t) if (!TELEMETRY_TRANSPORTS.includes(x)) fail(`telemetry transport ${JSON.stringify(x)} is not one of ${TELEMETRY_TRANSPORTS.join(", ")}`);
  if ((p.initrd !== undefined || p.append !== undefined) && p.kernel === undefined) fail("initrd/append need a kernel");
}

/** USB ports a controller offers to full-speed devices, as QEMU's `port` property values. */
export function usbPorts(u: UsbControllerSpec): string[] {
  const n = u.model === "qemu-xhci" ? (u.usb2Ports ?? 4) : 2;
  const hubs = u.model === "qemu-xhci" ? (u.hubs ?? 0) : 0;
  const out: string[] = [];
  for (let h = 1; h <= hubs; h++) for (let p = 1; p <= (u.hubPorts ?? 8); p++) out.push(`${h}.${p}`);
  for (let p = hubs + 1; p <= n; p++) out.push(String(p));
  return out;
}

export interface ArgvPaths {
  /** Unix socket we listen on; QEMU connects its QMP monitor to it. */
  qmpSocket: string;
  /** Unix socket we listen on; QEMU connects the serial console to it. */
  consoleSocket: string;
  /** QEMU also writes the console here (chardev logfile=). */
  consoleLog: string;
  /** Unix socket QEMU serves per telemetry transport. */
  telemetrySockets: Partial<Record<TelemetryTransport, string>>;
}

/**
 * USB controllers that go straight on q35's root bus. Past this many, every
 * controller sits behind a PCIe root port of its own: the root bus has 32
 * slots and QEMU's own devices take some, while root ports pack eight to a
 * slot (multifunction), so 128 controllers need 16 slots.
 */
export const ROOT_BUS_USB_CONTROLLERS = 16;
/** Most USB controllers a profile may have (16 slots of eight root ports). */
export const MAX_USB_CONTROLLERS = 128;
const ROOT_PORT_FIRST_SLOT = 0x08;

function rootPortId(controllerId: string): string {
  return `${controllerId}-rp`;
}

/** QEMU option values escape a comma by doubling it. */
function opt(value: string): string {
  return value.replaceAll(",", ",,");
}

export function telemetryChardevId(t: TelemetryTransport): string {
  return t === "virtio-serial" ? "tele-virtio" : t === "virtio-console" ? "tele-vcon" : "tele-uart";
}

/** QEMU id of the virtconsole device of the virtio-console transport (its virtio-serial bus is `vcon.0`). */
export const TELEMETRY_CONSOLE_ID = "tele-vcon";

export function buildArgv(p: MachineProfile, paths: ArgvPaths, accel: Accel): string[] {
  validateProfile(p);
  const a: string[] = [];
  a.push("-machine", `${p.machine ?? "q35"},accel=${accel}`);
  a.push("-nodefaults", "-display", "none", "-vga", "none", "-no-user-config");
  // Named threads ("CPU 0/TCG", "worker", ...) so a CPU profile of the host
  // (top -H, the lanes bench) tells the guest's vCPUs from QEMU's own work.
  a.push("-name", `${opt(p.name)},debug-threads=on`);
  a.push("-m", `${p.memoryMiB ?? 256}M`);
  if (p.cpus !== undefined) a.push("-smp", String(p.cpus));
  if (p.cpu !== undefined) a.push("-cpu", p.cpu);
  // Chardevs in this order: QEMU creates them in argv order, and the QMP one
  // connects to us last, so once QMP is up the console is connected and the
  // telemetry servers are listening.
  a.push("-chardev", `socket,id=console,path=${opt(paths.consoleSocket)},logfile=${opt(paths.consoleLog)}`);
  a.push("-serial", "chardev:console");
  for (const t of p.telemetry ?? []) {
    const sock = paths.telemetrySockets[t];
    if (sock === undefined) throw new ProfileError(p.name, `no socket path for telemetry transport ${t}`);
    a.push("-chardev", `socket,id=${telemetryChardevId(t)},path=${opt(sock)},server=on,wait=off`);
  }
  if (p.telemetry?.includes("virtio-serial")) {
    a.push("-device", "virtio-serial-pci,id=vser");
    a.push("-device", `virtserialport,bus=vser.0,chardev=${telemetryChardevId("virtio-serial")},name=${TELEMETRY_PORT_NAME}`);
  }
  if (p.telemetry?.includes("virtio-console")) {
    // A device of its own: nr=0 is the console port a single-port driver sees,
    // and max_ports=1 keeps a MULTIPORT-less guest from being offered more.
    a.push("-device", "virtio-serial-pci,id=vcon,max_ports=1");
    a.push("-device", `virtconsole,bus=vcon.0,id=${TELEMETRY_CONSOLE_ID},chardev=${telemetryChardevId("virtio-console")},name=${TELEMETRY_PORT_NAME},nr=0`);
  }
  // The console is COM1, so the telemetry UART is COM2 (Linux ttyS1, NetBSD com1).
  if (p.telemetry?.includes("uart")) a.push("-device", `isa-serial,chardev=${telemetryChardevId("uart")},index=1`);
  const behindRootPorts = p.usb.length > ROOT_BUS_USB_CONTROLLERS;
  p.usb.forEach((u, i) => {
    let bus = "";
    if (behindRootPorts) {
      // Eight root ports to a slot (functions 0..7), from ROOT_PORT_FIRST_SLOT
      // on, so they never meet the slots QEMU hands out on its own (1, 2, ...).
      const slot = ROOT_PORT_FIRST_SLOT + Math.floor(i / 8);
      const fn = i % 8;
      a.push("-device", `pcie-root-port,id=${rootPortId(u.id)},bus=pcie.0,chassis=${i + 1},addr=${slot.toString(16)}.${fn}${fn === 0 ? ",multifunction=on" : ""}`);
      bus = `,bus=${rootPortId(u.id)}`;
    }
    if (u.model === "qemu-xhci") {
      a.push("-device", `qemu-xhci,id=${u.id}${bus},p2=${u.usb2Ports ?? 4},p3=${u.usb3Ports ?? 4}`);
      for (let h = 1; h <= (u.hubs ?? 0); h++) a.push("-device", `usb-hub,bus=${u.id}.0,port=${h},id=${u.id}-hub${h}`);
    } else a.push("-device", `piix3-usb-uhci,id=${u.id}${bus}`);
  });
  if (p.kernel !== undefined) a.push("-kernel", p.kernel);
  if (p.initrd !== undefined) a.push("-initrd", p.initrd);
  if (p.append !== undefined) a.push("-append", p.append);
  if (p.disk !== undefined) {
    const d = p.disk;
    a.push("-drive", `file=${opt(d.path)},format=${d.format ?? "raw"},if=${d.interface ?? "virtio"},snapshot=${d.snapshot === false ? "off" : "on"}`);
  }
  if (p.paused) a.push("-S");
  a.push("-chardev", `socket,id=qmp,path=${opt(paths.qmpSocket)}`);
  a.push("-mon", "chardev=qmp,mode=control");
  a.push(...(p.extraArgs ?? []));
  return a;
}
