// The Machine interface: what a storm needs from a machine, implemented by the
// QEMU machine (src/qemu/machine.ts) and the simulated one (src/sim/).
// Everything a machine observes is delivered synchronously, in order, to its
// observers with the machine's own clock, so a simulated run is deterministic
// and a real one is recorded exactly as it happened.

/** NIC kinds plugstorm knows; see catalog.ts for what each one is. */
import type { DeviceFault } from "../devices/index.js";
export type { DeviceFault };

export type NicKind = "usb-net" | "usb-net-rndis" | "redir-cdce" | "redir-rndis" | "redir-ax88772" | "pcmcia-ne2000";

export type NicBus = "usb" | "pcmcia";

export interface AddNicRequest {
  kind: NicKind;
  /** QEMU id; default nic<N> with N the next free number on this machine. */
  id?: string;
  /** Port (USB) or socket (PCMCIA); default: the next free one. */
  port?: string;
  /** Emulated (redir-*) kinds only: device-side faults from the moment it is plugged (malformed descriptors, disconnect mid-enumeration, ...). */
  faults?: DeviceFault[];
}

/**
 * How a NIC leaves. "host": the host unplugs it (QMP device_del). The other
 * two exist for emulated devices (usb-redir kinds) and involve no QMP until
 * the guest has seen the unplug: "device-disconnect" is the device side
 * sending device_disconnect, "device-close" is its connection closing; both
 * look like a yanked cable to the guest. The port is reclaimed afterwards.
 */
export type RemovalVia = "host" | "device-disconnect" | "device-close";

export interface RemoveNicOptions {
  /** How long to wait for the machine to finalise the removal (DEVICE_DELETED). */
  deadlineMs?: number;
  /** Default "host". */
  via?: RemovalVia;
  signal?: AbortSignal;
}

export interface AddNicOptions {
  signal?: AbortSignal;
}

/**
 * What became of an add or remove, from the machine's side only: a removal that
 * is "done" means QEMU finalised it, never that the guest finished detaching.
 */
export type NicOutcome = "done" | "refused" | "removal-pending" | "never-finalised" | "failed";

export interface NicOpResult {
  op: "add" | "remove";
  nicId: string;
  kind: NicKind;
  bus: NicBus;
  port: string;
  mac: string;
  outcome: NicOutcome;
  /** QEMU's error text, or what went wrong. */
  message?: string;
  /** Machine clock (ns) when the command was sent, answered, and finalised. */
  sentNs: number;
  replyNs?: number;
  eventNs?: number;
}

export interface NicInfo {
  nicId: string;
  kind: NicKind;
  bus: NicBus;
  port: string;
  mac: string;
  /** "present" after a successful add, "removing" after device_del until finalised. */
  state: "present" | "removing";
}

export interface MachineClock {
  /** Nanoseconds since the machine started (virtual time on the simulated machine). */
  now(): number;
  /** Resolves after ns of machine time; rejects with the signal's reason when aborted. */
  sleep(ns: number, signal?: AbortSignal): Promise<void>;
  /**
   * Optional: a sleep its caller can end early, as cheaply as it starts. A
   * runner waits tens of thousands of times per storm on a fast machine; an
   * AbortController for each wait costs more than the wait. `done` resolves
   * after ns, or at once (at the machine time of the call) when end() is
   * called, and rejects only when the machine stops.
   */
  timer?(ns: number): MachineTimer;
}

export interface MachineTimer {
  readonly done: Promise<void>;
  end(): void;
}

export interface ExitInfo {
  /** True when the machine was stopped on request; false when it died on its own. */
  requested: boolean;
  exitCode: number | null;
  signal: string | null;
  /** The last lines QEMU printed on stderr (or the simulation's reason). */
  stderrTail: string;
}

/** Everything a machine observes, in order, stamped with its clock. */
export type MachineObservation =
  | { type: "qmp-command"; tNs: number; id: string; command: string; arguments: unknown }
  | { type: "qmp-reply"; tNs: number; id: string; ok: boolean; result?: unknown; errorClass?: string; errorDesc?: string }
  | { type: "qmp-event"; tNs: number; event: string; data: unknown; qemuTimeUs: number }
  | { type: "telemetry-connected"; tNs: number }
  | { type: "telemetry-disconnected"; tNs: number; reason: string }
  /** Raw bytes from the guest's telemetry channel (framed per proto/FRAMING.md). */
  | { type: "telemetry-bytes"; tNs: number; bytes: Uint8Array }
  | { type: "console"; tNs: number; text: string }
  /** What an emulated device (usb-redir kinds) saw or did on its own side: connect, disconnect, faults, transfer counts. */
  | DeviceSideObservation
  /** accelReason: why that accelerator (QEMU: what auto saw, or why KVM fell back to TCG). */
  | { type: "started"; tNs: number; accel: string; description: string; accelReason?: string }
  /** What the user should hear but is no error (QEMU: KVM asked for where it is unlikely to run, or a guest silent under it). Not in the trace. */
  | { type: "warning"; tNs: number; text: string }
  | { type: "exited"; tNs: number; info: ExitInfo };

export type DeviceSideEvent = "connect" | "disconnect" | "disconnect-ack" | "closed" | "protocol-error" | "control-status" | "fault-armed" | "fault" | "transfers";

export interface DeviceSideObservation {
  type: "device";
  tNs: number;
  nicId: string;
  event: DeviceSideEvent;
  detail: string;
  /** fault, fault-armed: the fault's kind, where it hit, and what the host got. */
  fault?: { kind: string; endpoint: string; status?: string };
  /** transfers: bulk and interrupt transfers QEMU submitted since the device connected. */
  transfers?: TransferCounts;
}

export interface TransferCounts {
  bulkIn: number;
  bulkOut: number;
  interrupt: number;
}

export type MachineObserver = (obs: MachineObservation) => void;

export interface Machine {
  /** "qemu" or "sim". */
  readonly type: "qemu" | "sim";
  readonly clock: MachineClock;
  /** NIC kinds this machine can add. */
  readonly supportedKinds: readonly NicKind[];
  /** Ports (USB) and sockets (PCMCIA) available, per bus: the bound on NICs in flight. */
  readonly capacity: Readonly<Record<NicBus, number>>;
  /** Starts the machine; resolves once it can take hot-plug commands. */
  start(): Promise<void>;
  addNic(req: AddNicRequest, opts?: AddNicOptions): Promise<NicOpResult>;
  /**
   * The port (socket) an add on `bus` naming none would take now, by the
   * name results use; undefined when all are in use. Lets a host action
   * record where a NIC goes before the add is sent.
   */
  nextPort?(bus: NicBus): string | undefined;
  removeNic(nicId: string, opts?: RemoveNicOptions): Promise<NicOpResult>;
  nics(): NicInfo[];
  /** Subscribe to observations; returns the unsubscribe function. */
  observe(observer: MachineObserver): () => void;
  /**
   * Asks the machine whether it is still there (QEMU: a QMP query-status):
   * true when it answers within timeoutMs, false when it does not; rejects when
   * it is gone (exited, connection lost) or on abort. A machine without it
   * (the sim) is always reachable.
   */
  probe?(timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /**
   * Arms a device-side fault on a plugged emulated (redir-*) NIC. Absent on
   * machines without emulated NICs; throws for a NIC that is not emulated.
   */
  injectDeviceFault?(nicId: string, fault: DeviceFault): void;
  /**
   * Emits a "transfers" observation with an emulated NIC's transfer counts
   * now (nothing for a NIC that is not emulated or already gone). Absent on
   * machines without emulated NICs.
   */
  reportDeviceTransfers?(nicId: string): void;
  /** Writes framed bytes to the guest's telemetry channel (host → guest commands). */
  sendTelemetry(bytes: Uint8Array): void;
  /** Stops the machine; idempotent. */
  stop(): Promise<void>;
  /** Settles when the machine is gone, whether stopped or dead. */
  readonly exited: Promise<ExitInfo>;
}
