// The storm format: what a person writes in YAML and what TypeScript code passes
// to runStorm are the same shape (StormInput). Validation fills in defaults and
// turns it into a StormSpec, where every field is present and every duration is
// in nanoseconds, so the runner never guesses.

import type { DeviceFault, NicBus, NicKind, RemovalVia } from "../hotplug/index.js";
import { DEADLINE_FIELDS, DEFAULT_DEADLINES } from "../model/index.js";

export type { DeviceFault, NicBus, NicKind, RemovalVia };

/** A duration: a number of milliseconds, or a string with a unit ("250us", "10ms", "2s", "1m"). */
export type DurationInput = number | string;

/** How long something lasts, drawn per use from the storm's seeded generator. */
export type DistributionInput =
  | DurationInput
  | { fixed: DurationInput }
  | { uniform: { min: DurationInput; max: DurationInput } }
  | { exponential: { mean: DurationInput; max?: DurationInput } };

export type Distribution =
  | { type: "fixed"; ns: number }
  | { type: "uniform"; minNs: number; maxNs: number }
  | { type: "exponential"; meanNs: number; maxNs: number };

export type GuestProfile = "bare" | "linux-guest" | "netbsd-guest";
export type Accel = "auto" | "kvm" | "tcg";
export type UsbController = "qemu-xhci" | "piix3-usb-uhci";
export type TelemetryTransport = "virtio-serial" | "uart" | "virtio-console" | "none";
export type ModelProfile = "netbsd" | "linux";
/** What a reference holder holds, named as in telemetry.proto's ObjectKind. */
export type HolderKind = "device" | "ifnet" | "usbnet" | "devsw" | "vnode" | "netdev";

export const NIC_KINDS: readonly NicKind[] = ["usb-net", "usb-net-rndis", "redir-cdce", "redir-rndis", "redir-ax88772", "pcmcia-ne2000"];
/** NIC kinds each machine type can plug (the sim models cdce and ne at pcmcia; QEMU has no PCMCIA). */
export const MACHINE_KINDS: Readonly<Record<"sim" | "qemu", readonly NicKind[]>> = {
  sim: ["usb-net", "pcmcia-ne2000"],
  qemu: ["usb-net", "usb-net-rndis", "redir-cdce", "redir-rndis", "redir-ax88772"],
};
export const HOLDER_KINDS: readonly HolderKind[] = ["device", "ifnet", "usbnet", "devsw", "vnode", "netdev"];
export const GUEST_PROFILES: readonly GuestProfile[] = ["bare", "linux-guest", "netbsd-guest"];
/** Phases a deadline can be set for; the checker judges them against trace time. */
export type DeadlinePhase = keyof typeof DEADLINE_FIELDS;
export const DEADLINE_PHASES = Object.keys(DEADLINE_FIELDS) as readonly DeadlinePhase[];

export function busOf(kind: NicKind): NicBus {
  return kind.startsWith("pcmcia") ? "pcmcia" : "usb";
}

/** The driver module each NIC kind binds, per model profile: what `unload` and the sick case unload. */
export const DRIVER_MODULES: Readonly<Record<ModelProfile, Readonly<Record<NicKind, string>>>> = {
  netbsd: { "usb-net": "if_cdce", "usb-net-rndis": "if_urndis", "redir-cdce": "if_cdce", "redir-rndis": "if_urndis", "redir-ax88772": "if_axe", "pcmcia-ne2000": "if_ne_pcmcia" },
  linux: { "usb-net": "cdc_ether", "usb-net-rndis": "rndis_host", "redir-cdce": "cdc_ether", "redir-rndis": "rndis_host", "redir-ax88772": "asix", "pcmcia-ne2000": "ne2k" },
};

/** Ports per USB controller as QEMU 7.2 offers them to full-speed devices (the README's "QEMU facts"): the default of machine.usbPorts. */
export const USB_CONTROLLER_PORTS: Readonly<Record<UsbController, number>> = {
  "qemu-xhci": 4,
  "piix3-usb-uhci": 2,
};

/**
 * What machine.usbPorts may be. On xhci each port is a root hub of its own
 * (one qemu-xhci controller with one USB2 port per lane), because guests
 * enumerate one hub's ports one after another but separate controllers in
 * parallel (Linux: hub_wq work per hub and the controller's address0_mutex
 * around port reset and addressing; NetBSD: one usb event thread per bus).
 * 64 is as far as the lanes bench measured the Linux guest still scaling;
 * src/qemu places controllers past 16 behind PCIe root ports. uhci has two
 * ports, fixed.
 */
export const USB_PORTS_RANGE: Readonly<Record<UsbController, { min: number; max: number }>> = {
  "qemu-xhci": { min: 1, max: 64 },
  "piix3-usb-uhci": { min: 2, max: 2 },
};

// ------------------------------------------------------------------ input

export interface SimMachineInput {
  type: "sim";
  /** Bugs to inject into the simulated kernel, by name (see src/sim). */
  bugs?: string[];
}

export interface QemuMachineInput {
  type: "qemu";
  profile: GuestProfile;
  kernel?: string;
  initrd?: string;
  image?: string;
  accel?: Accel;
  usbController?: UsbController;
  /** Full-speed USB ports, i.e. USB NICs in flight at most (qemu-xhci 1..64, default 4; uhci: 2). */
  usbPorts?: number;
  telemetry?: TelemetryTransport;
  memoryMb?: number;
  /** Guest vCPUs (-smp); default 1. Under TCG each is a host thread (MTTCG). */
  cpus?: number;
  /** How long the guest may take to say Hello before the run goes on without it. */
  bootTimeout?: DurationInput;
}

export type MachineInput = SimMachineInput | QemuMachineInput;

export interface NicMixInput {
  kind: NicKind;
  /** At most this many of this kind in flight at once (default 1). */
  count?: number;
  /** Relative chance this kind is picked for the next add (default 1). */
  weight?: number;
}

export interface NicsInput {
  mix: NicMixInput[];
  /** Ports (USB) and sockets (PCMCIA) to use; default: all the machine has. */
  ports?: { usb?: number; pcmcia?: number };
}

export interface HolderInput {
  kind: HolderKind;
  /** References taken per hold (default 1). */
  count?: number;
  /** Chance a plugged NIC gets this hold (default 1). */
  probability?: number;
  /** How long the holder keeps them; "until-removal" keeps them across the removal (the interesting case). */
  hold?: DistributionInput | "until-removal";
}

export interface TrafficInput {
  probability?: number;
  packetsPerSecond?: number;
  duration?: DistributionInput;
}

export interface ChanceInput {
  probability?: number;
}

export interface SickInput {
  probability?: number;
  /** How long after the unload starts the card is pulled. */
  delay?: DistributionInput;
}

/** A device-side fault as storm files write it. */
export interface DeviceFaultInput {
  fault: "stall" | "status" | "pending" | "late" | "short" | "disconnect-after-control" | "disconnect-pending" | "reconnect" | "malformed";
  endpoint?: "control" | "bulk-in" | "bulk-out";
  status?: "ioerror" | "timeout" | "babble";
  delay?: DurationInput;
  /** reconnect: the pause after QEMU's disconnect ack, and after the host has configured each reconnected device (default 1s). */
  gap?: DurationInput;
  count?: number;
  what?: "total-length" | "no-endpoints" | "bad-class";
}

/**
 * A device-side fault a random schedule draws per cycle of an emulated
 * (redir-*) NIC. Transfer faults are armed `after` the plug (default: a
 * uniform point of the NIC's dwell); malformed and disconnect-after-control
 * come with the plug. late's delay is a distribution here, drawn per cycle.
 */
export interface FaultChanceInput extends Omit<DeviceFaultInput, "delay"> {
  probability?: number;
  delay?: DistributionInput;
  after?: DistributionInput;
}

export interface SurpriseInput {
  probability?: number;
  /** Default device-disconnect. */
  via?: "device-disconnect" | "device-close";
}

export interface ScheduleInput {
  /** Plug/unplug cycles to run (one cycle = one NIC added and removed). */
  cycles?: number;
  /** Or run for this long (machine time); with both, whichever ends first. */
  duration?: DurationInput;
  /** Cycles started per second of machine time (0 = back to back). */
  rate?: number;
  /** NICs plugged at once, at most. */
  maxInFlight?: number;
  /** How long a NIC stays plugged. */
  dwell?: DistributionInput;
  seed?: number;
  /** An explicit step list instead of a random schedule. */
  steps?: StepInput[];
}

export type StepInput =
  /** fault: device-side faults from the moment of plugging (emulated kinds): malformed descriptors, or disconnect-after-control; one or a list. */
  | { add: { nic: string; kind: NicKind; fault?: DeviceFaultInput | DeviceFaultInput[] } }
  /** A device-side fault on a plugged emulated (redir-*) NIC. */
  | { "device-fault": { nic: string } & DeviceFaultInput }
  /** via: how the NIC leaves (default host = device_del); device-* only for emulated (redir-*) kinds. */
  | { remove: { nic: string; via?: RemovalVia } | string }
  | { hold: { nic: string; kind: HolderKind; count?: number; for?: DurationInput; holder?: string } }
  | { release: { nic: string; kind: HolderKind; holder?: string } }
  | { traffic: { nic: string; pps?: number } }
  | { "traffic-stop": { nic: string } | string }
  | { detach: { nic: string; force?: boolean } | string }
  | { unload: { module: string } | string }
  | { sick: { nic: string; module?: string; delay?: DurationInput } }
  | { sleep: DurationInput }
  /** A fault the guest agent injects (InjectFault), e.g. leak-ref on a NIC or panic. */
  | { fault: { name: string; nic?: string; arg?: string } };

export interface StormInput {
  name?: string;
  description?: string;
  machine: MachineInput;
  nics?: NicsInput;
  schedule?: ScheduleInput;
  holders?: HolderInput[];
  traffic?: TrafficInput;
  detach?: ChanceInput;
  unload?: ChanceInput;
  sick?: SickInput;
  /** Emulated (redir-*) NICs: the share of removals done from the device side (a yanked cable) instead of device_del. */
  surprise?: SurpriseInput;
  /** Emulated (redir-*) NICs: device-side faults each cycle draws with its probability. */
  faults?: FaultChanceInput[];
  deadlines?: Partial<Record<DeadlinePhase, DurationInput>>;
  model?: ModelProfile;
  stopOnFirstViolation?: boolean;
}

// ------------------------------------------------------------------ normalised

export interface SimMachineSpec {
  type: "sim";
  bugs: string[];
}

export interface QemuMachineSpec {
  type: "qemu";
  profile: GuestProfile;
  kernel?: string;
  initrd?: string;
  image?: string;
  accel: Accel;
  usbController: UsbController;
  /** Validation always sets it; absent (a hand-built spec) means the controller's default. */
  usbPorts?: number;
  telemetry: TelemetryTransport;
  memoryMb: number;
  /** Guest vCPUs; absent means 1. */
  cpus?: number;
  bootTimeoutNs: number;
}

export type MachineSpec = SimMachineSpec | QemuMachineSpec;

export interface HolderSpec {
  kind: HolderKind;
  count: number;
  probability: number;
  /** null: held until the NIC is removed. */
  hold: Distribution | null;
}

type LateFault = Extract<DeviceFault, { kind: "late" }>;
/** A device-side fault before the draw: late's delay still a distribution. */
export type FaultTemplate = Exclude<DeviceFault, LateFault> | (Omit<LateFault, "delayMs"> & { delay: Distribution });

export interface FaultChanceSpec {
  probability: number;
  fault: FaultTemplate;
  /** When after the plug a transfer fault is armed; null: a uniform point of the dwell. Unused for plug-time faults. */
  after: Distribution | null;
}

/** Faults that exist from the moment of plugging: given with the add, not armed later. */
export function isPlugTimeFault(f: { kind: DeviceFault["kind"] }): boolean {
  return f.kind === "malformed" || f.kind === "disconnect-after-control";
}

export type Step =
  | { op: "add"; nic: string; kind: NicKind; faults?: DeviceFault[] }
  | { op: "device-fault"; nic: string; fault: DeviceFault }
  | { op: "remove"; nic: string; via?: RemovalVia }
  | { op: "hold"; nic: string; kind: HolderKind; count: number; forNs: number; holder: string }
  | { op: "release"; nic: string; kind: HolderKind; holder: string }
  | { op: "traffic"; nic: string; pps: number }
  | { op: "traffic-stop"; nic: string }
  | { op: "detach"; nic: string; force: boolean }
  | { op: "unload"; module: string }
  | { op: "sick"; nic: string; module: string; delayNs: number }
  | { op: "sleep"; ns: number }
  | { op: "fault"; name: string; nic: string; arg: string };

export interface StormSpec {
  name: string;
  description: string;
  machine: MachineSpec;
  nics: { mix: Required<NicMixInput>[]; ports: Record<NicBus, number> };
  schedule: {
    cycles: number;
    /** 0 = no time limit. */
    durationNs: number;
    rate: number;
    maxInFlight: number;
    dwell: Distribution;
    seed: number;
    /** null: random schedule from the seed. */
    steps: Step[] | null;
  };
  holders: HolderSpec[];
  traffic: { probability: number; packetsPerSecond: number; duration: Distribution };
  detach: { probability: number };
  unload: { probability: number };
  sick: { probability: number; delay: Distribution };
  /** Absent: every removal is the host's. */
  surprise?: { probability: number; via: "device-disconnect" | "device-close" };
  /** Absent or empty: no device-side faults drawn. */
  faults?: FaultChanceSpec[];
  /** Deadlines per phase in ms (what the checker is given). */
  deadlines: Record<DeadlinePhase, number>;
  model: ModelProfile;
  stopOnFirstViolation: boolean;
}

/** The model's default deadlines (the only set), in ms per phase. */
export const DEFAULT_DEADLINES_MS: Readonly<Record<DeadlinePhase, number>> = Object.freeze(
  Object.fromEntries(DEADLINE_PHASES.map((p) => [p, DEFAULT_DEADLINES[DEADLINE_FIELDS[p]] / 1e6])) as Record<DeadlinePhase, number>,
);

/** Ports the machine offers when the storm does not say: the QEMU controller's, or the simulator's. */
export function machinePorts(m: MachineSpec): Record<NicBus, number> {
  if (m.type === "qemu") return { usb: usbPortsOf(m), pcmcia: 0 };
  return { usb: 4, pcmcia: 2 };
}

/** The full-speed USB ports a QEMU machine has: machine.usbPorts, or the controller's default. */
export function usbPortsOf(m: QemuMachineSpec): number {
  return m.usbPorts ?? USB_CONTROLLER_PORTS[m.usbController];
}
