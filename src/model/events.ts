// The model's input: one event per trace record that matters to the rules.
// The adapter in src/check/ maps trace records to these; the model never sees
// protobuf, so it can be driven by anything that can say what happened.

/** What a guest agent can observe (telemetry Capability, by name). */
export type CapabilityName =
  | "device-lifecycle"
  | "detach-phases"
  | "kernel-refs"
  | "agent-refs"
  | "ifnet"
  | "vnodes"
  | "modules"
  | "free"
  | "context"
  | "traffic"
  | "faults"
  | "detach-command"
  | "commit-point"
  | "detach-steps"
  | "vnode-flags"
  | "module-flags";

export const ALL_CAPABILITIES: readonly CapabilityName[] = [
  "device-lifecycle",
  "detach-phases",
  "kernel-refs",
  "agent-refs",
  "ifnet",
  "vnodes",
  "modules",
  "free",
  "context",
  "traffic",
  "faults",
  "detach-command",
  "commit-point",
  "detach-steps",
  "vnode-flags",
  "module-flags",
];

export type ExecContext = "interrupt" | "softint" | "thread" | "unknown";

/** Object kinds of references, each drained by its own mechanism (telemetry ObjectKind). */
export type ObjectKind =
  | "device"
  | "ifnet"
  | "usbnet"
  | "devsw"
  | "vnode"
  | "transfer"
  | "module"
  | "netdev"
  | "softc-refcnt"
  | "ifaddr"
  | "usb-task"
  | "other"
  | "unknown";

export type BusName = "usb" | "pcmcia" | "pci" | "unknown";
export type GuestOsName = "netbsd" | "linux" | "sim-netbsd" | "unknown";
export type HostOutcome = "done" | "refused" | "removal-pending" | "never-finalised" | "failed" | "unknown";

export type DevicePhase =
  | "attach-begin"
  | "attach-end"
  | "deactivate"
  | "detach-begin"
  | "detach-end"
  | "drain-begin"
  | "drain-end"
  | "free"
  | "detach-wait"
  | "commit"
  | "detach-reported"
  | "detach-step";

/** usbnet_detach's steps, in NetBSD's order (telemetry DetachStep). */
export type DetachStepName = "dying" | "stop" | "task-wait" | "ether-ifdetach" | "task-wait-again" | "refs-drained" | "unknown";
export type VetoReason = "dependents" | "detach-refused" | "not-permitted" | "unknown";

export type IfPhase =
  | "attach"
  | "deactivate"
  | "detach-begin"
  | "detach-end"
  | "up"
  | "down"
  | "counters"
  | "access"
  | "departure"
  | "arrival";
export type VnodePhase = "open" | "close" | "revoke" | "method-call" | "deadfs-call";
export type ModulePhase = "load" | "unload-begin" | "unload-wait" | "unload-end";
export type ChannelKind =
  | "connected"
  | "disconnected"
  | "corrupt"
  | "oversize"
  | "seq-gap"
  | "session-start"
  | "ack-timeout";
export type MachineKind = "started" | "stopped" | "exited" | "unresponsive" | "responsive";

/** Where an event sits in the trace: record time (host clock, ns) and record index. */
export interface At {
  t: number;
  index: number;
}

export interface HostAddEvent extends At {
  type: "host-add";
  actionId: number;
  nicId: string;
  nicKind: string;
  bus: BusName;
  /** Port or socket the host plugged it into ("pcic0:1"), when the trace says. */
  port?: string;
  mac: string;
  /**
   * An emulated NIC plugged with a device-side fault that can keep any driver
   * from probing (malformed descriptors, disconnect mid-enumeration).
   */
  deviceFault?: string;
}

export interface HostRemoveEvent extends At {
  type: "host-remove";
  actionId: number;
  nicId: string;
}

/** Any other host action (detach command, unload, hold refs, traffic ...). */
export interface HostActionEvent extends At {
  type: "host-action";
  actionId: number;
  action: string;
  nicId: string;
}

export interface HostResultEvent extends At {
  type: "host-result";
  actionId: number;
  nicId: string;
  outcome: HostOutcome;
  message: string;
}

export interface DeviceDeletedEvent extends At {
  type: "qmp-device-deleted";
  nicId: string;
}

export interface HelloEvent extends At {
  type: "hello";
  os: GuestOsName;
  capabilities: CapabilityName[];
  agentVersion: string;
}

export interface DeviceEvent extends At {
  type: "device";
  kind: DevicePhase;
  name: string;
  driver: string;
  parent: string;
  bus: BusName;
  port: string;
  serial: string;
  mac: string;
  context: ExecContext;
  thread: string;
  force: boolean;
  error: number;
  objectKind: ObjectKind;
  /** Instance number of this name in this boot; 0 = not reported. */
  instance: number;
  ifname: string;
  /** For detach-step: which step of the driver's detach. */
  step: DetachStepName;
  /** For detach-end(0): a device iterator defers the free past config_detach's return. */
  deferred: boolean;
}

export interface RefEvent extends At {
  type: "ref";
  kind: "acquire" | "release" | "acquire-failed";
  objectKind: ObjectKind;
  object: string;
  holder: string;
  holderDesc: string;
  /** Kernel's count after the event; -1 = unknown. */
  countAfter: number;
  context: ExecContext;
  /** Device the object belongs to when the object is not the device itself. */
  device: string;
}

export interface IfEvent extends At {
  type: "ifnet";
  kind: IfPhase;
  ifname: string;
  device: string;
  accessor: string;
  context: ExecContext;
}

export interface VnodeEvent extends At {
  type: "vnode";
  kind: VnodePhase;
  path: string;
  device: string;
  op: string;
  error: number;
  holder: string;
  /** The node is a tty (deadfs read answers 0, not EIO); meaningful with vnode-flags. */
  tty: boolean;
  /** A method-call close forced by the revoke; meaningful with vnode-flags. */
  forced: boolean;
}

export interface ModuleEvent extends At {
  type: "module";
  kind: ModulePhase;
  name: string;
  error: number;
  instances: string[];
  /** Built into the kernel: unloading it detaches nothing; meaningful with module-flags. */
  builtin: boolean;
  vetoReason: VetoReason;
}

export interface PanicEvent extends At {
  type: "panic";
  message: string;
  device: string;
}

export interface HeartbeatEvent extends At {
  type: "heartbeat";
  framesSent: number;
  framesDropped: number;
  eventsLost: number;
}

/** A guest frame with nothing for the rules (ack, log): still proves telemetry flows. */
export interface GuestOtherEvent extends At {
  type: "guest-other";
}

export interface ChannelEvent extends At {
  type: "channel";
  kind: ChannelKind;
  /** Frames lost (seq gaps): got - expected. */
  lost: number;
  bytesSkipped: number;
  message: string;
}

export interface MachineEvent extends At {
  type: "machine";
  kind: MachineKind;
  exitCode: number;
  signal: string;
  text: string;
}

/** The device side of an emulated NIC: transfer counts since it connected (trace DeviceSide TRANSFERS). */
export interface DeviceSideEvent extends At {
  type: "device-side";
  nicId: string;
  bulkIn: number;
  bulkOut: number;
  interrupt: number;
}

export type ModelEvent =
  | HostAddEvent
  | HostRemoveEvent
  | HostActionEvent
  | HostResultEvent
  | DeviceDeletedEvent
  | HelloEvent
  | DeviceEvent
  | RefEvent
  | IfEvent
  | VnodeEvent
  | ModuleEvent
  | PanicEvent
  | HeartbeatEvent
  | GuestOtherEvent
  | ChannelEvent
  | MachineEvent
  | DeviceSideEvent;

/** Guest frames are the events that prove the telemetry channel carries something. */
export function isGuestEvent(e: ModelEvent): boolean {
  return isGuestType(e.type);
}

/** isGuestEvent by the event's type alone (the checker reads the type once per event). */
export function isGuestType(type: ModelEvent["type"]): boolean {
  switch (type) {
    case "hello":
    case "device":
    case "ref":
    case "ifnet":
    case "vnode":
    case "module":
    case "panic":
    case "heartbeat":
    case "guest-other":
      return true;
    default:
      return false;
  }
}

function fmtT(t: number): string {
  return `${(t / 1e9).toFixed(6)}s`;
}

/** One line for people, used in a verdict's history. */
export function describeEvent(e: ModelEvent): string {
  const head = `#${e.index} ${fmtT(e.t)}`;
  switch (e.type) {
    case "host-add":
      return `${head} host add ${e.nicId} (${e.nicKind}, ${e.bus}${e.mac ? `, ${e.mac}` : ""})`;
    case "host-remove":
      return `${head} host remove ${e.nicId}`;
    case "host-action":
      return `${head} host ${e.action}${e.nicId ? ` ${e.nicId}` : ""}`;
    case "host-result":
      return `${head} host result of action ${e.actionId}${e.nicId ? ` (${e.nicId})` : ""}: ${e.outcome}${e.message ? ` ${e.message}` : ""}`;
    case "qmp-device-deleted":
      return `${head} QMP DEVICE_DELETED ${e.nicId}`;
    case "hello":
      return `${head} guest hello ${e.os} ${e.agentVersion} [${e.capabilities.join(",")}]`;
    case "device": {
      const bits: string[] = [];
      if (e.instance) bits.push(`instance ${e.instance}`);
      if (e.kind === "detach-begin") bits.push(e.force ? "DETACH_FORCE" : "flags 0");
      if (e.kind === "detach-end" || e.kind === "attach-end") bits.push(`error ${e.error}`);
      if (e.kind === "drain-begin" || e.kind === "drain-end") bits.push(e.objectKind);
      if (e.kind === "detach-step") bits.push(e.step);
      if (e.deferred) bits.push("free deferred");
      if (e.context !== "unknown") bits.push(e.context);
      if (e.thread) bits.push(`thread ${e.thread}`);
      if (e.serial) bits.push(`serial ${e.serial}`);
      return `${head} guest ${e.name} ${e.kind}${bits.length ? ` (${bits.join(", ")})` : ""}`;
    }
    case "ref":
      return `${head} guest ${e.kind} ${e.objectKind} ${e.object} by ${e.holder}${e.holderDesc ? ` (${e.holderDesc})` : ""}${e.countAfter >= 0 ? ` count ${e.countAfter}` : ""}${e.context !== "unknown" ? ` in ${e.context}` : ""}`;
    case "ifnet":
      return `${head} guest ifnet ${e.ifname} ${e.kind}${e.accessor ? ` by ${e.accessor}` : ""}${e.context !== "unknown" ? ` in ${e.context}` : ""}`;
    case "vnode":
      return `${head} guest vnode ${e.path} ${e.kind}${e.op ? ` ${e.op}` : ""}${e.kind === "deadfs-call" || e.error ? ` error ${e.error}` : ""}${e.holder ? ` by ${e.holder}` : ""}${e.tty ? " (tty)" : ""}${e.forced ? " (forced by revoke)" : ""}`;
    case "module":
      return `${head} guest module ${e.name} ${e.kind}${e.builtin ? " (built-in)" : ""}${e.kind === "unload-end" ? ` error ${e.error}` : ""}${e.vetoReason !== "unknown" ? ` (${e.vetoReason})` : ""}${e.instances.length ? ` [${e.instances.join(",")}]` : ""}`;
    case "panic":
      return `${head} guest PANIC ${e.message}`;
    case "heartbeat":
      return `${head} guest heartbeat sent ${e.framesSent} dropped ${e.framesDropped} lost ${e.eventsLost}`;
    case "guest-other":
      return `${head} guest frame`;
    case "channel":
      return `${head} channel ${e.kind}${e.lost ? ` lost ${e.lost}` : ""}${e.message ? ` ${e.message}` : ""}`;
    case "device-side":
      return `${head} device side ${e.nicId}: bulk in ${e.bulkIn} out ${e.bulkOut} interrupt ${e.interrupt}`;
    case "machine":
      return `${head} machine ${e.kind}${e.kind === "exited" ? (e.signal ? ` signal ${e.signal}` : ` code ${e.exitCode}`) : ""}`;
  }
}
