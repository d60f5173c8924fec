// A fluent builder of real trace records for checker tests: every method
// appends protobuf Record objects exactly as the storm would record them
// (host actions, QMP events, guest telemetry frames with increasing seq).

import { toWire } from "../../src/check/index.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import type { CapabilityName, DetachStepName, ExecContext, HostOutcome, ObjectKind, VetoReason } from "../../src/model/index.js";

type IRecord = plugstorm.trace.v1.IRecord;
const T = plugstorm.telemetry.v1;
const TR = plugstorm.trace.v1;

/** The model's names for what the records carry; encoded with the adapter's own tables (toWire). */
export type Cap = CapabilityName;
export type Ctx = Exclude<ExecContext, "unknown">;
export type Obj = Exclude<ObjectKind, "unknown" | "other">;
export type Step = Exclude<DetachStepName, "unknown">;
export type Veto = Exclude<VetoReason, "unknown">;
export type Outcome = Exclude<HostOutcome, "unknown">;

/** What a guest reported before the commit point, steps and flags existed. */
export const BASE_CAPS: readonly Cap[] = [
  "device-lifecycle",
  "detach-phases",
  "kernel-refs",
  "agent-refs",
  "ifnet",
  "vnodes",
  "modules",
  "free",
  "context",
];
export const FULL_CAPS: readonly Cap[] = [...BASE_CAPS, "commit-point", "detach-steps", "vnode-flags", "module-flags"];

export interface DevOpts {
  serial?: string;
  mac?: string;
  driver?: string;
  bus?: "usb" | "pcmcia";
  context?: Ctx;
  thread?: string;
  force?: boolean;
  error?: number;
  instance?: number;
  ifname?: string;
  objectKind?: Obj;
  step?: Step;
  deferred?: boolean;
}

export interface RefOpts {
  kind?: Obj;
  /** The object; default the device name. */
  object?: string;
  context?: Ctx;
  desc?: string;
}

export function macOf(nic: string): string {
  const n = Number(/\d+$/.exec(nic)?.[0] ?? 0);
  return `52:54:00:00:${((n >> 8) & 0xff).toString(16).padStart(2, "0")}:${(n & 0xff).toString(16).padStart(2, "0")}`;
}

export class TraceBuilder {
  private recs: IRecord[] = [];
  private seq = 0;
  private actionId = 0;
  t = 0;

  constructor(private readonly stepNs = 1_000_000) {}

  /** Sets the time of the next record. */
  at(tNs: number): this {
    this.t = tNs;
    return this;
  }

  wait(ns: number): this {
    this.t += ns;
    return this;
  }

  private push(r: IRecord): this {
    this.t += this.stepNs;
    r.tNs = this.t;
    this.recs.push(r);
    return this;
  }

  private frame(body: plugstorm.telemetry.v1.IFrame): this {
    this.seq++;
    return this.push({ guest: { seq: this.seq, guestTimeNs: this.t, ...body } });
  }

  // ---------------------------------------------------------------- machine / channel

  machineStarted(): this {
    return this.push({ machine: { kind: TR.MachineEvent.Kind.STARTED, accel: "sim" } });
  }
  machineStopped(): this {
    return this.push({ machine: { kind: TR.MachineEvent.Kind.STOPPED } });
  }
  /** The host's heartbeat is answered (the first answer of a run is recorded). */
  machineResponsive(): this {
    return this.push({ machine: { kind: TR.MachineEvent.Kind.RESPONSIVE, text: "answering the host's QMP heartbeat" } });
  }
  /** The host's heartbeat goes unanswered for ns, then is answered again. */
  machineUnresponsive(ns: number): this {
    this.push({ machine: { kind: TR.MachineEvent.Kind.UNRESPONSIVE, text: "no answer to QMP query-status within 2000 ms" } });
    this.t += ns;
    return this.push({ machine: { kind: TR.MachineEvent.Kind.RESPONSIVE } });
  }
  machineExited(code = 1, signal = ""): this {
    return this.push({ machine: { kind: TR.MachineEvent.Kind.EXITED, exitCode: code, signal } });
  }
  hello(o: { os?: "netbsd" | "linux" | "sim"; caps?: readonly Cap[] } = {}): this {
    this.seq = 0;
    const os = o.os === "linux" ? T.GuestOs.GUEST_OS_LINUX : o.os === "netbsd" ? T.GuestOs.GUEST_OS_NETBSD : T.GuestOs.GUEST_OS_SIM_NETBSD;
    return this.frame({
      hello: { agentVersion: "test 0", os, protocolVersion: 1, capabilities: (o.caps ?? FULL_CAPS).map(toWire.capability) },
    });
  }
  heartbeat(dropped = 0, lost = 0): this {
    return this.frame({ heartbeat: { framesSent: this.seq + 1, framesDropped: dropped, eventsLost: lost } });
  }
  log(text: string): this {
    return this.frame({ log: { level: T.Log.Level.INFO, text } });
  }
  panic(message: string, device = ""): this {
    return this.frame({ panic: { message, device } });
  }
  seqGap(expected: number, got: number): this {
    this.seq = got - 1;
    return this.push({ channel: { kind: TR.ChannelEvent.Kind.SEQ_GAP, expectedSeq: expected, gotSeq: got } });
  }
  corrupt(bytes = 17): this {
    return this.push({ channel: { kind: TR.ChannelEvent.Kind.CORRUPT_FRAME, bytesSkipped: bytes } });
  }
  ackTimeout(message = "command 7"): this {
    return this.push({ channel: { kind: TR.ChannelEvent.Kind.ACK_TIMEOUT, message } });
  }
  /** A verdict recorded live (offline checks must ignore it). */
  recordedVerdict(rule: string): this {
    return this.push({ verdict: { rule, side: TR.Verdict.Side.GUEST, severity: TR.Verdict.Severity.FATAL, message: "recorded" } });
  }

  // ---------------------------------------------------------------- host

  hostAdd(nic: string, kind = "usb-net", o: { bus?: "usb" | "pcmcia"; port?: string; mac?: string; outcome?: Outcome | null; message?: string } = {}): this {
    const id = ++this.actionId;
    const bus = (o.bus ?? (kind.startsWith("pcmcia") ? "pcmcia" : "usb")) === "pcmcia" ? TR.NicBus.NIC_BUS_PCMCIA : TR.NicBus.NIC_BUS_USB;
    this.push({ action: { id, kind: TR.HostAction.Kind.ADD_NIC, nicId: nic, nicKind: kind, bus, mac: o.mac ?? macOf(nic), port: o.port ?? "1" } });
    const outcome = o.outcome === undefined ? "done" : o.outcome;
    if (outcome !== null) this.push({ result: { actionId: id, outcome: toWire.outcome(outcome), nicId: nic, message: o.message ?? "" } });
    return this;
  }

  /** device_del: action, then (by default) DEVICE_DELETED and the DONE result. */
  hostRemove(nic: string, o: { deleted?: boolean; outcome?: Outcome | null; message?: string } = {}): this {
    const id = ++this.actionId;
    this.push({ action: { id, kind: TR.HostAction.Kind.REMOVE_NIC, nicId: nic } });
    if (o.deleted ?? (o.outcome === undefined || o.outcome === "done")) this.deviceDeleted(nic);
    const outcome = o.outcome === undefined ? "done" : o.outcome;
    if (outcome !== null) this.push({ result: { actionId: id, outcome: toWire.outcome(outcome), nicId: nic, message: o.message ?? "" } });
    return this;
  }

  /** The emulated device's transfer counts (trace DeviceSide TRANSFERS). */
  deviceTransfers(nic: string, bulkIn: number, bulkOut: number, interrupt = 0): this {
    return this.push({ device: { kind: TR.DeviceSide.Kind.TRANSFERS, nicId: nic, bulkIn, bulkOut, interrupt } });
  }

  deviceDeleted(nic: string): this {
    return this.push({ qmpEvent: { event: "DEVICE_DELETED", data: JSON.stringify({ device: nic, path: `/machine/peripheral/${nic}` }) } });
  }

  // ---------------------------------------------------------------- guest devices

  private dev(kind: plugstorm.telemetry.v1.DeviceEvent.Kind, name: string, o: DevOpts): this {
    const d: plugstorm.telemetry.v1.IDeviceEvent = {
      kind,
      name,
      driver: o.driver ?? name.replace(/\d+$/, ""),
      bus: o.bus === "pcmcia" ? T.Bus.BUS_PCMCIA : T.Bus.BUS_USB,
      serial: o.serial ?? "",
      mac: o.mac ?? "",
      thread: o.thread ?? "",
      error: o.error ?? 0,
      instance: o.instance ?? 0,
      ifname: o.ifname ?? "",
    };
    if (o.context) d.context = toWire.context(o.context);
    if (o.force !== undefined) d.flags = { force: o.force };
    if (o.objectKind) d.objectKind = toWire.objectKind(o.objectKind);
    if (o.step) d.step = toWire.detachStep(o.step);
    if (o.deferred) d.deferred = true;
    return this.frame({ device: d });
  }

  attachBegin(name: string, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.ATTACH_BEGIN, name, { context: "thread", ...o });
  }
  attachEnd(name: string, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.ATTACH_END, name, { context: "thread", ...o });
  }
  deactivate(name: string, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.DEACTIVATE, name, { context: "interrupt", ...o });
  }
  detachBegin(name: string, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.DETACH_BEGIN, name, { context: "thread", thread: "usb0", force: true, ...o });
  }
  detachEnd(name: string, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.DETACH_END, name, { context: "thread", thread: "usb0", ...o });
  }
  drainBegin(name: string, kind: Obj, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.DRAIN_BEGIN, name, { context: "thread", ...o, objectKind: kind });
  }
  drainEnd(name: string, kind: Obj, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.DRAIN_END, name, { context: "thread", ...o, objectKind: kind });
  }
  free(name: string, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.FREE, name, { context: "thread", ...o });
  }
  /** A caller sleeping in config_detach_enter. */
  detachWait(name: string, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.DETACH_WAIT, name, { context: "thread", thread: "drvctl", force: false, ...o });
  }
  commit(name: string, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.COMMIT, name, { context: "thread", thread: "usb0", ...o });
  }
  detachReported(name: string, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.DETACH_REPORTED, name, { context: "thread", thread: "usb0", ...o });
  }
  step(name: string, step: Step, o: DevOpts = {}): this {
    return this.dev(T.DeviceEvent.Kind.DETACH_STEP, name, { context: "thread", thread: "usb0", ...o, step });
  }

  // ---------------------------------------------------------------- references

  private ref(kind: plugstorm.telemetry.v1.RefEvent.Kind, device: string, holder: string, o: RefOpts): this {
    const r: plugstorm.telemetry.v1.IRefEvent = {
      kind,
      objectKind: toWire.objectKind(o.kind ?? "device"),
      object: o.object ?? device,
      holder,
      holderDesc: o.desc ?? "",
      countAfter: -1,
      device,
    };
    if (o.context) r.context = toWire.context(o.context);
    return this.frame({ ref: r });
  }
  acquire(device: string, holder: string, o: RefOpts = {}): this {
    return this.ref(T.RefEvent.Kind.ACQUIRE, device, holder, o);
  }
  release(device: string, holder: string, o: RefOpts = {}): this {
    return this.ref(T.RefEvent.Kind.RELEASE, device, holder, o);
  }
  acquireFailed(device: string, holder: string, o: RefOpts = {}): this {
    return this.ref(T.RefEvent.Kind.ACQUIRE_FAILED, device, holder, o);
  }

  // ---------------------------------------------------------------- interfaces

  private ifev(kind: plugstorm.telemetry.v1.IfEvent.Kind, ifname: string, device: string, accessor = "", context?: Ctx): this {
    const e: plugstorm.telemetry.v1.IIfEvent = { kind, ifname, device, accessor };
    if (context) e.context = toWire.context(context);
    return this.frame({ ifnet: e });
  }
  ifAttach(ifname: string, device = ifname): this {
    return this.ifev(T.IfEvent.Kind.ATTACH, ifname, device);
  }
  ifDeactivate(ifname: string, device = ifname): this {
    return this.ifev(T.IfEvent.Kind.DEACTIVATE, ifname, device, "", "interrupt");
  }
  ifDetachBegin(ifname: string, device = ifname, context: Ctx = "thread"): this {
    return this.ifev(T.IfEvent.Kind.DETACH_BEGIN, ifname, device, "", context);
  }
  ifDetachEnd(ifname: string, device = ifname): this {
    return this.ifev(T.IfEvent.Kind.DETACH_END, ifname, device, "", "thread");
  }
  ifAccess(ifname: string, accessor: string, device = ifname): this {
    return this.ifev(T.IfEvent.Kind.ACCESS, ifname, device, accessor, "thread");
  }
  ifUp(ifname: string, device = ifname): this {
    return this.ifev(T.IfEvent.Kind.UP, ifname, device);
  }
  /** The routing socket's IFAN_DEPARTURE, as the agent read it. */
  departure(ifname: string, device = ifname): this {
    return this.ifev(T.IfEvent.Kind.DEPARTURE, ifname, device);
  }

  // ---------------------------------------------------------------- vnodes

  private vn(kind: plugstorm.telemetry.v1.VnodeEvent.Kind, path: string, device: string, op = "", error = 0, holder = "", flags: { tty?: boolean; forced?: boolean } = {}): this {
    return this.frame({ vnode: { kind, path, device, op, error, holder, tty: flags.tty ?? false, forced: flags.forced ?? false } });
  }
  /** open(2) of a node; a non-zero error is an open that failed (no file made). */
  vnodeOpen(path: string, device: string, holder: string, error = 0): this {
    return this.vn(T.VnodeEvent.Kind.OPEN, path, device, "open", error, holder);
  }
  vnodeClose(path: string, device: string, holder: string): this {
    return this.vn(T.VnodeEvent.Kind.CLOSE, path, device, "close", 0, holder);
  }
  revoke(path: string, device: string): this {
    return this.vn(T.VnodeEvent.Kind.REVOKE, path, device);
  }
  methodCall(path: string, device: string, op: string, holder = "", flags: { forced?: boolean } = {}): this {
    return this.vn(T.VnodeEvent.Kind.METHOD_CALL, path, device, op, 0, holder, flags);
  }
  deadfsCall(path: string, device: string, op: string, error: number, holder = "", flags: { tty?: boolean } = {}): this {
    return this.vn(T.VnodeEvent.Kind.DEADFS_CALL, path, device, op, error, holder, flags);
  }

  // ---------------------------------------------------------------- modules

  unloadBegin(name: string, instances: string[] = [], o: { builtin?: boolean } = {}): this {
    return this.frame({ module: { kind: T.ModuleEvent.Kind.UNLOAD_BEGIN, name, instances, builtin: o.builtin ?? false } });
  }
  unloadWait(name: string, instances: string[] = []): this {
    return this.frame({ module: { kind: T.ModuleEvent.Kind.UNLOAD_WAIT, name, instances } });
  }
  unloadEnd(name: string, error = 0, o: { builtin?: boolean; veto?: Veto } = {}): this {
    const m: plugstorm.telemetry.v1.IModuleEvent = { kind: T.ModuleEvent.Kind.UNLOAD_END, name, error, builtin: o.builtin ?? false };
    if (o.veto) m.vetoReason = toWire.vetoReason(o.veto);
    return this.frame({ module: m });
  }

  // ---------------------------------------------------------------- composite steps

  /** NetBSD cdce attach as usbnet does it: device-attach, interface inside ca_attach, attach returns. */
  netbsdAttach(name: string, nic: string, o: DevOpts = {}): this {
    const opts: DevOpts = { serial: nic, mac: macOf(nic), driver: name.replace(/\d+$/, ""), ...o };
    return this.attachBegin(name, opts).ifAttach(o.ifname ?? name, name).attachEnd(name, opts);
  }

  /**
   * usbnet_detach inside config_detach, in NetBSD order: if_detach (psref drain),
   * unp_refcnt drain, then config_detach's localcount drain, return, free.
   */
  netbsdDetach(name: string, o: DevOpts & { free?: boolean; skipBegin?: boolean; skipIfBegin?: boolean } = {}): this {
    const opts: DevOpts = { thread: "usb0", force: true, ...o };
    if (!o.skipBegin) this.detachBegin(name, opts);
    if (!o.skipIfBegin) this.ifDetachBegin(o.ifname ?? name, name);
    this.drainBegin(name, "ifnet")
      .drainEnd(name, "ifnet")
      .ifDetachEnd(o.ifname ?? name, name)
      .drainBegin(name, "usbnet")
      .drainEnd(name, "usbnet")
      .drainBegin(name, "device")
      .drainEnd(name, "device")
      .detachEnd(name, { thread: opts.thread ?? "usb0", error: 0 });
    return o.free === false ? this : this.free(name);
  }

  /**
   * config_detach exactly as NetBSD runs it (netbsd.md §1, §4, §9): steps of
   * usbnet_detach, if_detach with the departure before its drain ends, the
   * commit, the localcount drain, devmon's report, then config_devfree and
   * only then config_detach's return.
   */
  netbsdDetachReal(
    name: string,
    o: DevOpts & {
      departureAfterDrain?: boolean;
      /** After usbnet_detach's first task wait, before ether_ifdetach / if_detach. */
      between?: (b: TraceBuilder) => void;
      /** While if_detach waits for psrefs (after the 7.x departure). */
      inDrain?: (b: TraceBuilder) => void;
      /** While config_detach drains the localcount. */
      inDeviceDrain?: (b: TraceBuilder) => void;
      skipBegin?: boolean;
    } = {},
  ): this {
    const opts: DevOpts = { thread: "usb0", force: true, ...o };
    const ifn = o.ifname ?? name;
    if (!o.skipBegin) this.detachBegin(name, opts);
    this.step(name, "dying").step(name, "stop").step(name, "task-wait");
    o.between?.(this);
    this.step(name, "ether-ifdetach").ifDetachBegin(ifn, name).drainBegin(name, "ifnet");
    if (!o.departureAfterDrain) this.departure(ifn, name);
    o.inDrain?.(this);
    this.drainEnd(name, "ifnet");
    if (o.departureAfterDrain) this.departure(ifn, name);
    this.ifDetachEnd(ifn, name)
      .step(name, "task-wait-again")
      .drainBegin(name, "usbnet")
      .drainEnd(name, "usbnet")
      .step(name, "refs-drained");
    this.commit(name)
      .drainBegin(name, "device");
    o.inDeviceDrain?.(this);
    return this.drainEnd(name, "device")
      .detachReported(name)
      .free(name)
      .detachEnd(name, { thread: opts.thread ?? "usb0", error: 0 });
  }

  /** A whole clean NetBSD USB cycle with an ifnet psref held and released before removal. */
  netbsdUsbCycle(nic: string, name: string): this {
    return this.hostAdd(nic, "usb-net")
      .netbsdAttach(name, nic)
      .acquire(name, "bpf0", { kind: "ifnet", object: name, desc: "bpf fd 5" })
      .acquire(name, "ioctl1", { kind: "device", desc: "drvctl -p" })
      .release(name, "ioctl1", { kind: "device" })
      .release(name, "bpf0", { kind: "ifnet", object: name })
      .hostRemove(nic)
      .netbsdDetach(name);
  }

  records(): IRecord[] {
    return this.recs.slice();
  }

  /** The records after a protobuf encode/decode round trip, as a reader would return them. */
  decodedRecords(): plugstorm.trace.v1.Record[] {
    return this.recs.map((r) => TR.Record.decode(TR.Record.encode(TR.Record.fromObject(r)).finish()));
  }
}

export function trace(stepNs?: number): TraceBuilder {
  return new TraceBuilder(stepNs);
}
