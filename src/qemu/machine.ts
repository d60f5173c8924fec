// The Machine interface on a real QEMU. add = device_add (done when QEMU
// accepts it); remove = device_del, then DEVICE_DELETED for that id within a
// deadline. For USB, DEVICE_DELETED is QEMU finalising the unplug, never the
// guest finishing its detach: only guest telemetry can tell that.

import { kvmDoubt, kvmDoubtWarning, kvmSilentWarning, type AccelChoice } from "./accel.js";
import { QemuExitedError, QemuProcess, describeExit, type QemuOptions } from "./process.js";
import { BARE_PROFILE, usbPorts, type MachineProfile, type TelemetryTransport } from "./profile.js";
import { chardevAdd, chardevRemove, deviceAdd, deviceDel, queryStatus, QmpCommandError, QmpTimeoutError, type ExecuteOptions, type QmpEvent, type QmpTraffic } from "../qmp/index.js";
import path from "node:path";
import { createDevice, FaultPlan, malformConfig, type DeviceFault, type DeviceModelName, type NicDevice } from "../devices/index.js";
import { UsbredirListener, type SessionEvent, type UsbredirSession } from "../usbredir/index.js";
import { MonotonicClock } from "./clock.js";
import {
  IdentityAllocator,
  allocateNicSlot,
  nicKindInfo,
  PortAllocator,
  qemuKinds,
  UnsupportedNicError,
  type AddNicOptions,
  type AddNicRequest,
  type ExitInfo,
  type Machine,
  type MachineObservation,
  type MachineObserver,
  type NicBus,
  type NicInfo,
  type NicKind,
  type NicOpResult,
  type RemoveNicOptions,
  type DeviceSideEvent,
  type Port,
} from "../hotplug/index.js";

export interface QemuMachineOptions extends Omit<QemuOptions, "profile" | "onConsole"> {
  /** Default the `bare` profile. */
  profile?: MachineProfile;
  /** Default deadline for DEVICE_DELETED after device_del. Default 5 s. */
  removeDeadlineMs?: number;
  /** Deadline for a QMP reply. Default 10 s. */
  commandTimeoutMs?: number;
  /** Deadline for an emulated (usb-redir) device's connection and hello after device_add. Default 5 s. */
  redirConnectTimeoutMs?: number;
  /** Sees every usb-redir byte of every emulated NIC (captures, debugging). */
  redirTap?: (nicId: string, dir: "from-qemu" | "to-qemu", bytes: Uint8Array) => void;
  /**
   * With KVM chosen by `auto`: how long a running (not paused) guest has to
   * show a sign of life, any byte on its serial console or telemetry
   * channel, before QEMU is restarted under TCG. Default 15 s: a guest under
   * a working KVM prints or says Hello within a second or two.
   */
  lifeTimeoutMs?: number;
}

/** An emulated NIC: the model, and the usb-redir connection carrying it. */
interface RedirRecord {
  device: NicDevice;
  faults: FaultPlan;
  chardev: string;
  listener: UsbredirListener;
  session: UsbredirSession | undefined;
}

interface NicRecord extends NicInfo {
  qemuPort: Port;
}

export class QemuMachine implements Machine {
  readonly type = "qemu" as const;
  readonly clock = new MonotonicClock();
  readonly supportedKinds: readonly NicKind[];
  readonly capacity: Readonly<Record<NicBus, number>>;
  readonly exited: Promise<ExitInfo>;
  readonly profile: MachineProfile;

  private readonly options: QemuMachineOptions;
  private process: QemuProcess;
  private resolveExited!: (e: ExitInfo) => void;
  /** The current process wrote to its console. */
  private consoleSeen = false;
  private readonly ports: PortAllocator;
  private readonly identities = new IdentityAllocator();
  private readonly table = new Map<string, NicRecord>();
  private readonly observers = new Set<MachineObserver>();
  /** When each QMP event object was observed, so results carry the same time as the trace. */
  private readonly eventTimes = new WeakMap<QmpEvent, number>();
  /**
   * When our own commands were sent and answered, by QMP id, as observed: the
   * caller resumes later than the reply (after the rest of its chunk, e.g. a
   * DEVICE_DELETED right behind it), so results take the observed times.
   */
  private readonly timings = new Map<string, { sentNs?: number; replyNs?: number }>();
  private readonly redirs = new Map<string, RedirRecord>();
  private readonly redirAckWaiters = new Map<string, (e: SessionEvent) => void>();
  private telemetryTransport: TelemetryTransport | undefined;
  private startCalled = false;

  constructor(options: QemuMachineOptions = {}) {
    this.options = options;
    this.profile = options.profile ?? BARE_PROFILE;
    this.ports = new PortAllocator(this.profile.usb.map((u) => ({ bus: "usb" as const, qemuBus: `${u.id}.0`, ports: usbPorts(u) })));
    this.capacity = { usb: this.ports.capacity("usb"), pcmcia: 0 };
    this.supportedKinds = qemuKinds(new Set<NicBus>(this.capacity.usb > 0 ? ["usb"] : []));
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    this.process = this.newProcess();
  }

  /** A QEMU process whose console and exit are this machine's while it is the current one. */
  private newProcess(accelChoice?: AccelChoice): QemuProcess {
    const p: QemuProcess = new QemuProcess({
      ...this.options,
      ...(accelChoice ? { accelChoice } : {}),
      profile: this.profile,
      onConsole: (text) => {
        if (p !== this.process) return;
        this.consoleSeen = true;
        this.emit({ type: "console", tNs: this.clock.now(), text });
      },
    });
    void p.exited.then((info) => {
      // A process given up for a fallback restart ends quietly.
      if (p !== this.process) return;
      this.table.clear();
      for (const r of this.redirs.values()) void r.listener.close();
      this.redirs.clear();
      const exit: ExitInfo = { ...info };
      this.emit({ type: "exited", tNs: this.clock.now(), info: exit });
      this.resolveExited(exit);
    });
    return p;
  }

  /**
   * Whether the guest shows a sign of life within ms: console output, or
   * telemetry bytes waiting on a channel (looked at, not read: the channel's
   * owner reads them later).
   */
  private async signOfLife(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.consoleSeen || this.process.exitStatus !== undefined) return true;
      for (const t of this.profile.telemetry ?? []) {
        const s = this.process.telemetry(t);
        if (s && (s.bytesRead > 0 || s.readableLength > 0)) return true;
      }
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * KVM that opens is not KVM that runs (README.md, "QEMU facts"): when `auto` chose it
   * and the guest stays silent past lifeTimeoutMs, QEMU is restarted under
   * TCG, and the started event says why.
   */
  private async fallBackIfLifeless(): Promise<void> {
    const choice = this.process.accel;
    if (!choice?.unproven || this.profile.paused) return;
    const ms = this.lifeTimeoutMs;
    if (await this.signOfLife(ms)) return;
    const old = this.process;
    this.consoleSeen = false;
    this.process = this.newProcess({
      accel: "tcg",
      reason: `KVM chosen (${choice.reason}) but the guest showed no sign of life (no console or telemetry output) within ${ms / 1000} s: restarted under TCG`,
    });
    await old.stop({ quitTimeoutMs: 1000, termTimeoutMs: 1000 });
    await this.process.start();
  }

  private get lifeTimeoutMs(): number {
    return this.options.lifeTimeoutMs ?? 15_000;
  }

  /**
   * KVM asked for is never given up, but a guest silent under it past the
   * deadline auto gives KVM is said (a warning), without holding up the start.
   */
  private warnIfLifeless(): void {
    const choice = this.process.accel;
    if (choice?.accel !== "kvm" || choice.unproven || this.profile.paused) return;
    const p = this.process;
    const ms = this.lifeTimeoutMs;
    // signOfLife ends with the process too (a stopped machine is not silent).
    void this.signOfLife(ms).then((alive) => {
      if (!alive && p === this.process) this.emit({ type: "warning", tNs: this.clock.now(), text: kvmSilentWarning(ms) });
    });
  }

  /** The QEMU process (argv, accel choice, pid, QMP client) for callers that need more than the Machine interface. */
  get qemu(): QemuProcess {
    return this.process;
  }

  async start(): Promise<void> {
    if (this.startCalled) throw new Error("QemuMachine.start: already started");
    this.startCalled = true;
    this.clock.startNow();
    // Said before QEMU starts: a KVM that cannot run the guest may not let QEMU come up either.
    const doubt = this.options.accel === "kvm" && !this.options.accelChoice ? kvmDoubt(this.options.accelProbe) : undefined;
    if (doubt !== undefined) this.emit({ type: "warning", tNs: this.clock.now(), text: kvmDoubtWarning(doubt) });
    await this.process.start();
    await this.fallBackIfLifeless();
    this.warnIfLifeless();
    this.process.qmp.observe((t) => this.onTraffic(t));
    const accel = this.process.accel!;
    this.emit({ type: "started", tNs: this.clock.now(), accel: accel.accel, accelReason: accel.reason, description: `QEMU, profile ${this.profile.name}, ${accel.accel} (${accel.reason})` });
    for (const t of this.profile.telemetry ?? []) {
      const sock = this.process.telemetry(t);
      if (sock === undefined) continue;
      this.telemetryTransport ??= t;
      // Only the first channel is the telemetry stream; a second is left to its owner.
      if (this.telemetryTransport !== t) continue;
      this.emit({ type: "telemetry-connected", tNs: this.clock.now() });
      sock.on("data", (chunk: Buffer) => this.emit({ type: "telemetry-bytes", tNs: this.clock.now(), bytes: new Uint8Array(chunk) }));
      sock.once("close", () => this.emit({ type: "telemetry-disconnected", tNs: this.clock.now(), reason: this.process.exitStatus ? describeExit(this.process.exitStatus) : "socket closed" }));
    }
  }

  async addNic(req: AddNicRequest, opts: AddNicOptions = {}): Promise<NicOpResult> {
    const info = nicKindInfo(req.kind);
    if (info.qemu === undefined) {
      throw new UnsupportedNicError(`NIC kind ${req.kind} (${info.bus}) exists only on the simulated machine: QEMU 7.2 has no ${info.bus} device, use the simulated machine for it`);
    }
    if (!this.supportedKinds.includes(req.kind)) {
      throw new UnsupportedNicError(`NIC kind ${req.kind} needs a ${info.bus} controller; profile ${this.profile.name} has none`);
    }
    this.assertRunning("addNic");
    const { port, ident } = allocateNicSlot(this.ports, this.identities, info.bus, req);
    const base = { op: "add" as const, nicId: ident.id, kind: req.kind, bus: info.bus, port: port.name, mac: ident.mac };
    if (info.redir !== undefined) return this.addRedir(req.kind, info.redir.model as DeviceModelName, port, ident, base, opts, req.faults ?? []);
    if (req.faults !== undefined && req.faults.length > 0) {
      this.ports.release(port.name);
      throw new UnsupportedNicError(`NIC kind ${req.kind} is QEMU's own device: device-side faults need an emulated kind (redir-*)`);
    }
    const before = this.clock.now();
    const sent: { id?: string } = {};
    try {
      await deviceAdd(
        this.process,
        { driver: info.qemu.driver, id: ident.id, bus: port.qemuBus, port: port.port, mac: ident.mac, serial: ident.serial, ...info.qemu.props },
        this.execOpts(sent, opts.signal),
      );
      this.table.set(ident.id, { nicId: ident.id, kind: req.kind, bus: info.bus, port: port.name, mac: ident.mac, state: "present", qemuPort: port });
      return { ...base, outcome: "done", ...this.takeTimes(sent, before) };
    } catch (err) {
      const { sentNs, replyNs } = this.takeTimes(sent, before);
      if (err instanceof QmpCommandError) {
        this.ports.release(port.name);
        return { ...base, outcome: "refused", message: err.desc, sentNs, replyNs };
      }
      if (!(err instanceof QemuExitedError)) {
        // Timeout or abort: QEMU may still add it, so keep the port and the
        // record; a later removeNic settles which.
        this.table.set(ident.id, { nicId: ident.id, kind: req.kind, bus: info.bus, port: port.name, mac: ident.mac, state: "present", qemuPort: port });
      }
      return { ...base, outcome: "failed", message: errorText(err), sentNs };
    }
  }

  /** The device model behind an emulated NIC (usb-redir kinds), while it is plugged. */
  emulatedDevice(nicId: string): NicDevice | undefined {
    return this.redirs.get(nicId)?.device;
  }

  injectDeviceFault(nicId: string, fault: DeviceFault): void {
    const r = this.redirs.get(nicId);
    if (r === undefined) throw new UnsupportedNicError(`NIC ${nicId} is not a plugged emulated (redir-*) NIC: device-side faults need one`);
    r.faults.add(fault);
    const endpoint = "endpoint" in fault ? fault.endpoint : fault.kind === "malformed" ? "configuration descriptor" : "control";
    this.emit({ type: "device", tNs: this.clock.now(), nicId, event: "fault-armed", detail: JSON.stringify(fault), fault: { kind: fault.kind, endpoint } });
  }

  reportDeviceTransfers(nicId: string): void {
    const session = this.redirs.get(nicId)?.session;
    if (session === undefined || session.isClosed) return;
    this.emit({ type: "device", tNs: this.clock.now(), nicId, event: "transfers", detail: "", transfers: { ...session.submitted } });
  }

  /** The usb-redir connection of an emulated NIC, once QEMU has connected. */
  redirSession(nicId: string): UsbredirSession | undefined {
    return this.redirs.get(nicId)?.session;
  }

  private async addRedir(
    kind: NicKind,
    model: DeviceModelName,
    port: Port,
    ident: { id: string; serial: string; mac: string },
    base: Omit<NicOpResult, "outcome" | "sentNs">,
    opts: AddNicOptions,
    plugFaults: readonly DeviceFault[],
  ): Promise<NicOpResult> {
    const device = createDevice(model, { serial: ident.serial, mac: ident.mac });
    const faults = new FaultPlan();
    const nicIdForFaults = ident.id;
    faults.onApplied = (a) =>
      this.emit({ type: "device", tNs: this.clock.now(), nicId: nicIdForFaults, event: "fault", detail: `${a.fault} ${a.endpoint}: ${a.outcome}`, fault: { kind: a.fault, endpoint: a.endpoint, status: a.outcome } });
    for (const f of plugFaults) {
      if (f.kind === "malformed") {
        device.replaceConfigs((c) => malformConfig(c, f.what));
        this.emit({
          type: "device",
          tNs: this.clock.now(),
          nicId: ident.id,
          event: "fault",
          detail: `malformed configuration descriptor: ${f.what}`,
          fault: { kind: "malformed", endpoint: "configuration descriptor", status: f.what },
        });
      } else faults.add(f);
    }
    const chardev = `${ident.id}-redir`;
    const sockPath = path.join(this.process.tempDir!, `redir-${ident.id}.sock`);
    const nicId = ident.id;
    const listener = await UsbredirListener.listen(sockPath, device, {
      faults,
      onEvent: (e) => this.onRedirEvent(nicId, e),
      ...(this.options.redirTap ? { tap: (dir, b) => this.options.redirTap!(nicId, dir, b) } : {}),
    });
    const rec: RedirRecord = { device, faults, chardev, listener, session: undefined };
    const before = this.clock.now();
    const sent: { id?: string } = {};
    const giveUp = async (outcome: "refused" | "failed", message: string, times: { sentNs: number; replyNs?: number }): Promise<NicOpResult> => {
      await listener.close();
      this.ports.release(port.name);
      return { ...base, outcome, message, ...times };
    };
    try {
      await chardevAdd(this.process, chardev, { type: "socket", data: { addr: { type: "unix", data: { path: sockPath } }, server: false } }, this.execOpts({}, opts.signal));
    } catch (err) {
      return giveUp(err instanceof QmpCommandError ? "refused" : "failed", `chardev-add: ${errorText(err)}`, { sentNs: before });
    }
    try {
      await deviceAdd(this.process, { driver: "usb-redir", id: ident.id, bus: port.qemuBus, port: port.port, chardev }, this.execOpts(sent, opts.signal));
    } catch (err) {
      const times = this.takeTimes(sent, before);
      await chardevRemove(this.process, chardev, this.execOpts({})).catch(() => undefined);
      return giveUp(err instanceof QmpCommandError ? "refused" : "failed", err instanceof QmpCommandError ? err.desc : errorText(err), times);
    }
    const times = this.takeTimes(sent, before);
    this.redirs.set(ident.id, rec);
    this.table.set(ident.id, { nicId: ident.id, kind, bus: "usb", port: port.name, mac: ident.mac, state: "present", qemuPort: port });
    // The add is done when the device is connected: QEMU's hello answered with device_connect.
    try {
      const timeoutMs = this.options.redirConnectTimeoutMs ?? 5000;
      const session = await listener.session(timeoutMs);
      rec.session = session;
      await withTimeout(session.waitHello(), timeoutMs, `no usbredir hello from QEMU for ${ident.id} within ${timeoutMs} ms`);
    } catch (err) {
      // QEMU has the device but nothing is connected: the record stays so a removeNic cleans it up.
      return { ...base, outcome: "failed", message: errorText(err), ...times };
    }
    return { ...base, outcome: "done", ...times };
  }

  private onRedirEvent(nicId: string, e: SessionEvent): void {
    this.redirAckWaiters.get(nicId)?.(e);
    const tNs = this.clock.now();
    const emit = (event: DeviceSideEvent, detail: string): void => this.emit({ type: "device", tNs, nicId, event, detail });
    switch (e.type) {
      case "connected":
        emit("connect", "");
        return;
      case "disconnect-sent":
        emit("disconnect", "device_disconnect sent");
        return;
      case "disconnect-ack":
        emit("disconnect-ack", "");
        return;
      case "closed":
        emit("closed", `${e.reason}; ${e.pendingIn} bulk IN pending`);
        this.emit({ type: "device", tNs, nicId, event: "transfers", detail: "at close", transfers: { ...e.submitted } });
        return;
      case "protocol-error":
        emit("protocol-error", e.error.message);
        return;
      case "control":
        if (e.status !== "success") emit("control-status", `bRequest ${e.request} wValue 0x${e.value.toString(16)}: ${e.status}`);
        return;
      default:
        return;
    }
  }

  /** Device-side exit: disconnect (or close) first, then reclaim the QEMU device and port with device_del. */
  private async removeFromDevice(nicId: string, via: "device-disconnect" | "device-close", opts: RemoveNicOptions): Promise<NicOpResult> {
    const rec = this.table.get(nicId);
    const redir = this.redirs.get(nicId);
    if (rec === undefined || redir === undefined) {
      throw new UnsupportedNicError(`NIC ${nicId} is not an emulated (usb-redir) NIC on this machine; only those can leave from the device side`);
    }
    const sentNs = this.clock.now();
    const session = redir.session;
    let eventNs: number | undefined;
    // A device that already left (a fault, or an earlier disconnect) is only reclaimed.
    if (session !== undefined && !session.isClosed && (via === "device-close" || session.connected)) {
      if (via === "device-close") {
        await session.close();
        eventNs = this.clock.now();
      } else {
        const deadlineMs = opts.deadlineMs ?? this.options.removeDeadlineMs ?? 5000;
        const acked = new Promise<void>((res) => {
          const check = (e: SessionEvent): void => {
            if (e.type === "disconnect-ack" || e.type === "closed") res();
          };
          this.redirAckWaiters.set(nicId, check);
        });
        session.disconnect();
        try {
          await withTimeout(acked, deadlineMs, `no device_disconnect_ack for ${nicId} within ${deadlineMs} ms`);
          eventNs = this.clock.now();
        } catch (err) {
          this.redirAckWaiters.delete(nicId);
          return { op: "remove", nicId, kind: rec.kind, bus: rec.bus, port: rec.port, mac: rec.mac, outcome: "removal-pending", message: errorText(err), sentNs };
        }
        this.redirAckWaiters.delete(nicId);
      }
    }
    // The guest has seen the unplug; give the port back.
    const reclaim = await this.removeNic(nicId, { ...opts, via: "host" });
    return { ...reclaim, sentNs, ...(eventNs !== undefined ? { eventNs } : {}), ...(reclaim.outcome === "done" ? {} : { message: `device side left; reclaiming the port: ${reclaim.message ?? reclaim.outcome}` }) };
  }

  async removeNic(nicId: string, opts: RemoveNicOptions = {}): Promise<NicOpResult> {
    this.assertRunning("removeNic");
    if (opts.via !== undefined && opts.via !== "host") return this.removeFromDevice(nicId, opts.via, opts);
    const rec = this.table.get(nicId);
    // An id this machine did not add still goes to QEMU, which is the authority
    // on what exists; its kind and port are then unknown (reported as usb-net, "").
    const base = {
      op: "remove" as const,
      nicId,
      kind: rec?.kind ?? ("usb-net" as NicKind),
      bus: rec?.bus ?? ("usb" as NicBus),
      port: rec?.port ?? "",
      mac: rec?.mac ?? "",
    };
    const deadlineMs = opts.deadlineMs ?? this.options.removeDeadlineMs ?? 5000;
    const armed = this.process.armEvent("DEVICE_DELETED", (e) => e.data["device"] === nicId, {
      timeoutMs: deadlineMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const before = this.clock.now();
    const sent: { id?: string } = {};
    try {
      await deviceDel(this.process, nicId, this.execOpts(sent, opts.signal));
    } catch (err) {
      armed.cancel();
      const { sentNs, replyNs } = this.takeTimes(sent, before);
      if (err instanceof QmpCommandError) {
        if (rec !== undefined && err.errorClass === "DeviceNotFound") this.finalise(nicId);
        return { ...base, outcome: "refused", message: err.desc, sentNs, replyNs };
      }
      if (err instanceof QemuExitedError) return { ...base, outcome: "never-finalised", message: err.message, sentNs };
      return { ...base, outcome: "failed", message: errorText(err), sentNs };
    }
    const { sentNs, replyNs } = this.takeTimes(sent, before);
    if (rec !== undefined && this.table.has(nicId)) rec.state = "removing";
    try {
      const ev = await armed.promise;
      return { ...base, outcome: "done", sentNs, replyNs, eventNs: this.eventTimes.get(ev) ?? this.clock.now() };
    } catch (err) {
      if (err instanceof QemuExitedError) return { ...base, outcome: "never-finalised", message: err.message, sentNs, replyNs };
      const why = err instanceof QmpTimeoutError ? `no DEVICE_DELETED for ${nicId} within ${deadlineMs} ms` : errorText(err);
      return { ...base, outcome: "removal-pending", message: why, sentNs, replyNs };
    }
  }

  async probe(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    try {
      await queryStatus(this.process, { timeoutMs, ...(signal ? { signal } : {}) });
      return true;
    } catch (err) {
      // Only silence is unresponsiveness; a dead QEMU or a lost connection is its own story.
      if (err instanceof QmpTimeoutError) return false;
      throw err;
    }
  }

  nics(): NicInfo[] {
    return [...this.table.values()].map(({ qemuPort: _p, ...info }) => ({ ...info }));
  }

  observe(observer: MachineObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  sendTelemetry(bytes: Uint8Array): void {
    const sock = this.telemetryTransport === undefined ? undefined : this.process.telemetry(this.telemetryTransport);
    if (sock === undefined || sock.destroyed) {
      throw new Error(
        this.telemetryTransport === undefined ? `profile ${this.profile.name} has no telemetry channel` : "telemetry channel is closed",
      );
    }
    sock.write(bytes);
  }

  async stop(): Promise<void> {
    await this.process.stop();
    await this.exited;
  }

  private onTraffic(t: QmpTraffic): void {
    const tNs = this.clock.now();
    switch (t.type) {
      case "command": {
        const timing = this.timings.get(t.id);
        if (timing) timing.sentNs = tNs;
        this.emit({ type: "qmp-command", tNs, id: t.id, command: t.command, arguments: t.arguments });
        break;
      }
      case "reply":
        {
          const timing = this.timings.get(t.id);
          if (timing) timing.replyNs = tNs;
        }
        if (t.ok) this.emit({ type: "qmp-reply", tNs, id: t.id, ok: true, result: t.result });
        else this.emit({ type: "qmp-reply", tNs, id: t.id, ok: false, errorClass: t.errorClass, errorDesc: t.errorDesc });
        break;
      case "event": {
        const ev = t.event;
        this.eventTimes.set(ev, tNs);
        this.emit({ type: "qmp-event", tNs, event: ev.event, data: ev.data, qemuTimeUs: ev.timestamp.seconds * 1e6 + ev.timestamp.microseconds });
        // Finalise here, synchronously, so a removal that outlived its
        // deadline still frees its port when QEMU gets to it.
        const dev = ev.data["device"];
        if (ev.event === "DEVICE_DELETED" && typeof dev === "string") this.finalise(dev);
        break;
      }
    }
  }

  private finalise(nicId: string): void {
    const rec = this.table.get(nicId);
    if (rec === undefined) return;
    this.table.delete(nicId);
    this.ports.release(rec.qemuPort.name);
    const redir = this.redirs.get(nicId);
    if (redir !== undefined) {
      // QEMU deleted the chardev with the device; our end goes too.
      this.redirs.delete(nicId);
      void redir.listener.close();
    }
  }

  private emit(obs: MachineObservation): void {
    for (const o of [...this.observers]) {
      try {
        o(obs);
      } catch (e) {
        // One observer's bug must not keep the others (e.g. the trace) from
        // seeing this, nor go unseen.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  /** Execute options that record the command's id in `sent.id`, so its observed times can be taken. */
  private execOpts(sent: { id?: string }, signal?: AbortSignal): ExecuteOptions {
    return {
      timeoutMs: this.options.commandTimeoutMs ?? 10_000,
      ...(signal ? { signal } : {}),
      onSent: (id) => {
        sent.id = id;
        this.timings.set(id, {});
      },
    };
  }

  /** Observed send and reply times of the command (forgotten once taken); unobserved ones fall back to `sentNs` and now. */
  private takeTimes(sent: { id?: string }, sentNs: number): { sentNs: number; replyNs: number } {
    const t = sent.id === undefined ? undefined : this.timings.get(sent.id);
    if (sent.id !== undefined) this.timings.delete(sent.id);
    return { sentNs: t?.sentNs ?? sentNs, replyNs: t?.replyNs ?? this.clock.now() };
  }

  private assertRunning(op: string): void {
    if (!this.startCalled) throw new Error(`QemuMachine.${op}: machine not started`);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(message)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
