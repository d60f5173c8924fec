// One usb-redir connection carrying one device model: plugstorm is the
// usb-host side (it has the device), QEMU the usb-guest side. The session
// answers QEMU's requests from the model, keeps bulk IN requests pending until
// the model has data, forwards interrupt data once QEMU starts receiving it,
// and can leave by device_disconnect (a yanked cable) or by closing.

import type { Duplex } from "node:stream";

import type { ActiveEndpoint, FaultActions, FaultVerdict, TransferStatus, UsbDeviceModel } from "../devices/index.js";
import { CapSet, EP_TYPE, SPEED, STATUS, STATUS_NAMES, type CapName } from "./proto.js";
import { UsbredirCodec, UsbredirDecodeError } from "./codec.js";
import { epIndex, isIn, type BulkPacket, type ControlPacket, type EndpointDesc, type UsbredirMessage } from "./messages.js";

/** Capabilities plugstorm announces. No bulk streams, filters or buffered bulk: NICs need none. */
export const HOST_CAPS: readonly CapName[] = ["connect_device_version", "device_disconnect_ack", "ep_info_max_packet_size", "64bits_ids", "32bits_bulk_length"];

/** How long a reconnect storm waits for the host to configure the device before it goes on regardless: the model's default attach deadline. */
const CONFIGURE_WAIT_MS = 30_000;
export const HOST_VERSION = "plugstorm usbredir host 0.1";

/** What a session saw, for traces and tests. */
export type SessionEvent =
  | { type: "hello"; version: string; caps: string[] }
  | { type: "connected" }
  | { type: "reset" }
  | { type: "configuration"; value: number; status: string }
  | { type: "alt-setting"; interface: number; alt: number; status: string }
  | { type: "control"; requestType: number; request: number; value: number; index: number; length: number; status: string; replied: number }
  | { type: "interrupt-receiving"; endpoint: number; on: boolean }
  | { type: "cancel"; id: bigint; found: boolean }
  | { type: "disconnect-sent"; pendingIn: number }
  | { type: "disconnect-ack" }
  | { type: "protocol-error"; error: UsbredirDecodeError }
  | { type: "closed"; reason: string; pendingIn: number; submitted: { bulkIn: number; bulkOut: number; interrupt: number } };

/**
 * A fault hook: consulted before each transfer is answered from the model.
 * "pass" answers normally; a status answers with it; "pending" never answers
 * (until the socket closes); a delay answers normally after ms; "disconnect"
 * leaves from the device side instead of answering.
 */
export type TransferVerdict = FaultVerdict;
export interface TransferFaults {
  control?(setup: { requestType: number; request: number; value: number; index: number; length: number }, count: number): TransferVerdict;
  bulk?(endpoint: number, length: number): TransferVerdict;
  /** After a bulk IN request joins the outstanding ones: "disconnect" leaves with them all pending. */
  inQueued?(endpoint: number, pending: number): TransferVerdict;
  /** The session offers what a plan can do outside transfers (reconnect storms); undefined once closed. */
  bind?(actions: FaultActions | undefined): void;
}

export interface SessionOptions {
  /** Send interface_info, ep_info and device_connect as soon as QEMU's hello arrives. Default true. */
  connectOnHello?: boolean;
  onEvent?: (e: SessionEvent) => void;
  faults?: TransferFaults;
  /** Every byte in ("from-qemu") and out ("to-qemu"), for captures. */
  tap?: (dir: "from-qemu" | "to-qemu", bytes: Uint8Array) => void;
}

interface PendingIn {
  id: bigint;
  endpoint: number;
  length: number;
  streamId: number;
}

function statusCode(s: TransferStatus): number {
  return STATUS[s];
}

export class UsbredirSession {
  readonly codec = new UsbredirCodec({ side: "host", caps: new CapSet(HOST_CAPS), version: HOST_VERSION });
  readonly device: UsbDeviceModel;
  private readonly socket: Duplex;
  private readonly opts: SessionOptions;
  private readonly pendingIn: PendingIn[] = [];
  /** IN requests a "pending" fault keeps unanswered until the device goes. */
  private readonly held: PendingIn[] = [];
  private readonly receiving = new Set<number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private interruptId = 0n;
  private controlCount = 0;
  /** Bulk and interrupt transfers QEMU submitted on this connection: what "nothing after detach" is judged on. */
  readonly submitted = { bulkIn: 0, bulkOut: 0, interrupt: 0 };
  private connectedFlag = false;
  private closedFlag = false;
  private helloWaiters: Array<() => void> = [];
  /** Event waiters; each says whether it is done. */
  private readonly waiters: Array<(e: SessionEvent) => boolean> = [];
  /** Settles when the connection is gone; resolves with why. */
  readonly closed: Promise<string>;

  constructor(socket: Duplex, device: UsbDeviceModel, opts: SessionOptions = {}) {
    this.socket = socket;
    this.device = device;
    this.opts = opts;
    device.onInReady = (ep) => this.pump(ep);
    this.closed = new Promise((resolve) => {
      const done = (reason: string): void => {
        if (this.closedFlag) return;
        this.closedFlag = true;
        for (const t of this.timers) clearTimeout(t);
        this.timers.clear();
        device.onInReady = undefined;
        this.opts.faults?.bind?.(undefined);
        this.emit({ type: "closed", reason, pendingIn: this.pendingIn.length + this.held.length, submitted: { ...this.submitted } });
        resolve(reason);
      };
      socket.on("close", () => done("socket closed"));
      socket.on("error", (e) => done(`socket error: ${e.message}`));
      socket.on("end", () => socket.end());
    });
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.write(this.codec.hello());
    opts.faults?.bind?.({ reconnect: (times, gapMs) => void this.reconnectStorm(times, gapMs), recheckPending: () => this.recheckPending() });
  }

  get connected(): boolean {
    return this.connectedFlag;
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  /** Bulk IN requests QEMU is waiting on. */
  get pendingInCount(): number {
    return this.pendingIn.length + this.held.length;
  }

  /** Control requests answered or faulted so far. */
  get controlRequests(): number {
    return this.controlCount;
  }

  /** Resolves once QEMU's hello has arrived. */
  waitHello(): Promise<void> {
    if (this.codec.peer !== undefined) return Promise.resolve();
    return new Promise((res) => this.helloWaiters.push(res));
  }

  /** Plugs the device in: interface and endpoint info, then device_connect. */
  connect(): void {
    if (this.codec.peer === undefined) throw new Error("usbredir: connect before QEMU's hello");
    this.sendInfo();
    const i = this.device.info;
    this.send({
      type: "device_connect", id: 0n, speed: this.device.speed === "high" ? SPEED.high : SPEED.full,
      deviceClass: i.class, deviceSubclass: i.subclass, deviceProtocol: i.protocol,
      vendorId: i.vendorId, productId: i.productId, deviceVersionBcd: i.bcdDevice,
    });
    this.connectedFlag = true;
    // Each connect is a fresh enumeration: mid-enumeration faults count from it.
    this.controlCount = 0;
    this.emit({ type: "connected" });
  }

  /** Unplugs from the device side: what a yanked cable looks like to QEMU. */
  disconnect(): void {
    if (!this.connectedFlag || this.closedFlag) return;
    this.connectedFlag = false;
    const pendingIn = this.pendingInCount;
    this.send({ type: "device_disconnect", id: 0n });
    this.pendingIn.length = 0;
    this.held.length = 0;
    this.receiving.clear();
    this.device.reset();
    this.emit({ type: "disconnect-sent", pendingIn });
  }

  /**
   * The same device leaving and coming back `times` times on this
   * connection, no QMP involved. Each reconnect waits for QEMU's
   * device_disconnect_ack (QEMU has detached the device by then) and gapMs;
   * QEMU then enumerates it afresh. The device leaves only once the host has
   * taken it into use (set a configuration, which Linux's usb core and
   * NetBSD's drivers do as the driver attaches), then gapMs later: a gap
   * counted from the connect alone raced the guest's enumeration, which a
   * loaded TCG guest can stretch past any fixed gap, and the driver never
   * attached. Ends early if the connection goes.
   */
  async reconnectStorm(times: number, gapMs: number): Promise<void> {
    for (let i = 0; i < times && !this.closedFlag; i++) {
      if (this.connectedFlag) {
        await this.configuredByHost(CONFIGURE_WAIT_MS);
        if (this.closedFlag) return;
        // A peer without the ack capability never sends one: gapMs is all the wait there is.
        const acks = this.codec.peer?.caps.has("device_disconnect_ack") === true;
        const acked = acks ? this.next((e) => e.type === "disconnect-ack") : Promise.resolve();
        this.disconnect();
        await acked;
      }
      await this.pause(gapMs);
      if (this.closedFlag) return;
      this.connect();
      await this.configuredByHost(CONFIGURE_WAIT_MS);
      await this.pause(gapMs);
    }
  }

  /** Resolves once the host has set a configuration, when the connection closes, or after ms (a host that never configures it). */
  private configuredByHost(ms: number): Promise<void> {
    if (!this.connectedFlag || this.device.configuration !== 0) return Promise.resolve();
    return new Promise((res) => {
      const done = (): void => {
        clearTimeout(t);
        this.timers.delete(t);
        res();
      };
      const t = setTimeout(done, ms);
      this.timers.add(t);
      const ends = (e: SessionEvent): boolean => (e.type === "configuration" && e.value !== 0 && e.status === "success") || e.type === "closed" || e.type === "disconnect-sent";
      this.waiters.push((e) => (ends(e) ? (done(), true) : false));
    });
  }

  private recheckPending(): void {
    const first = this.pendingIn[0] ?? this.held[0];
    if (!this.connectedFlag || first === undefined) return;
    if (this.opts.faults?.inQueued?.(first.endpoint, this.pendingInCount) === "disconnect") this.disconnect();
  }

  /** Resolves at the first event that matches, or when the connection closes. */
  private next(match: (e: SessionEvent) => boolean): Promise<void> {
    return new Promise((res) => this.waiters.push((e) => (match(e) || e.type === "closed" ? (res(), true) : false)));
  }

  private pause(ms: number): Promise<void> {
    return new Promise((res) => {
      if (this.closedFlag) return res();
      const t = setTimeout(() => {
        this.timers.delete(t);
        res();
      }, ms);
      this.timers.add(t);
      void this.closed.then(() => res());
    });
  }

  /** Closes the connection (the chardev sees its peer go). */
  close(): Promise<string> {
    this.socket.destroy();
    return this.closed;
  }

  private emit(e: SessionEvent): void {
    this.opts.onEvent?.(e);
    for (let i = this.waiters.length - 1; i >= 0; i--) if (this.waiters[i]!(e)) this.waiters.splice(i, 1);
  }

  private write(b: Uint8Array): void {
    if (this.closedFlag || this.socket.destroyed) return;
    this.opts.tap?.("to-qemu", b);
    this.socket.write(b);
  }

  private send(m: UsbredirMessage): void {
    this.write(this.codec.encode(m));
  }

  private onData(chunk: Buffer): void {
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    this.opts.tap?.("from-qemu", bytes);
    const r = this.codec.push(bytes);
    for (const m of r.messages) this.handle(m);
    for (const e of r.errors) {
      this.emit({ type: "protocol-error", error: e });
      if (e.fatal) this.socket.destroy();
    }
  }

  private sendInfo(): void {
    this.send({ type: "interface_info", id: 0n, interfaces: this.device.interfaces().map((x) => ({ interface: x.number, class: x.class, subclass: x.subclass, protocol: x.protocol })) });
    const slots: EndpointDesc[] = Array.from({ length: 32 }, () => ({ type: EP_TYPE.invalid, interval: 0, interface: 0, maxPacketSize: 0, maxStreams: 0 }));
    slots[0] = { type: EP_TYPE.control, interval: 0, interface: 0, maxPacketSize: 64, maxStreams: 0 };
    slots[16] = { ...slots[0] };
    for (const e of this.device.endpoints()) slots[epIndex(e.address)] = toSlot(e);
    this.send({ type: "ep_info", id: 0n, endpoints: slots });
  }

  private handle(m: UsbredirMessage): void {
    if (!this.connectedFlag && m.type !== "hello" && m.type !== "device_disconnect_ack") {
      // After a device-side disconnect QEMU may still have requests in
      // flight; they find no device.
      if (m.type === "control_packet") this.send({ ...m, status: STATUS.ioerror, length: 0, data: new Uint8Array(0) });
      else if (m.type === "bulk_packet") this.send({ ...m, status: STATUS.ioerror, length: 0, data: new Uint8Array(0) });
      return;
    }
    switch (m.type) {
      case "hello":
        this.emit({ type: "hello", version: m.version, caps: this.codec.peer?.caps.names() ?? [] });
        for (const w of this.helloWaiters.splice(0)) w();
        if (this.opts.connectOnHello !== false) this.connect();
        return;
      case "reset":
        this.pendingIn.length = 0;
    this.held.length = 0;
        this.receiving.clear();
        this.device.reset();
        this.emit({ type: "reset" });
        return;
      case "set_configuration": {
        const status = this.device.setConfiguration(m.configuration);
        this.receiving.clear();
        this.pendingIn.length = 0;
    this.held.length = 0;
        this.send({ type: "configuration_status", id: m.id, status: statusCode(status), configuration: this.device.configuration });
        this.sendInfo();
        this.emit({ type: "configuration", value: m.configuration, status });
        return;
      }
      case "get_configuration":
        this.send({ type: "configuration_status", id: m.id, status: STATUS.success, configuration: this.device.configuration });
        return;
      case "set_alt_setting": {
        const status = this.device.setAltSetting(m.interface, m.alt);
        this.send({ type: "alt_setting_status", id: m.id, status: statusCode(status), interface: m.interface, alt: this.device.altSetting(m.interface) ?? 255 });
        this.sendInfo();
        this.emit({ type: "alt-setting", interface: m.interface, alt: m.alt, status });
        return;
      }
      case "get_alt_setting": {
        const alt = this.device.altSetting(m.interface);
        this.send({ type: "alt_setting_status", id: m.id, status: alt === undefined ? STATUS.inval : STATUS.success, interface: m.interface, alt: alt ?? 255 });
        return;
      }
      case "start_interrupt_receiving": {
        const ok = this.device.endpoints().some((e) => e.address === m.endpoint && e.type === EP_TYPE.interrupt && isIn(e.address));
        this.submitted.interrupt++;
        if (ok) this.receiving.add(m.endpoint);
        this.send({ type: "interrupt_receiving_status", id: m.id, status: ok ? STATUS.success : STATUS.inval, endpoint: m.endpoint });
        this.emit({ type: "interrupt-receiving", endpoint: m.endpoint, on: ok });
        if (ok) this.pump(m.endpoint);
        return;
      }
      case "stop_interrupt_receiving":
        this.receiving.delete(m.endpoint);
        this.send({ type: "interrupt_receiving_status", id: m.id, status: STATUS.success, endpoint: m.endpoint });
        this.emit({ type: "interrupt-receiving", endpoint: m.endpoint, on: false });
        return;
      case "start_iso_stream":
      case "stop_iso_stream":
        this.send({ type: "iso_stream_status", id: m.id, status: STATUS.inval, endpoint: m.endpoint });
        return;
      case "cancel_data_packet": {
        const i = this.pendingIn.findIndex((p) => p.id === m.id);
        if (i >= 0) {
          const p = this.pendingIn.splice(i, 1)[0]!;
          this.send({ type: "bulk_packet", id: p.id, endpoint: p.endpoint, status: STATUS.cancelled, length: 0, streamId: p.streamId, data: new Uint8Array(0) });
        }
        this.emit({ type: "cancel", id: m.id, found: i >= 0 });
        return;
      }
      case "device_disconnect_ack":
        this.emit({ type: "disconnect-ack" });
        return;
      case "control_packet":
        this.onControl(m);
        return;
      case "bulk_packet":
        this.onBulk(m);
        return;
      case "interrupt_packet":
        // NICs have no interrupt OUT endpoint; QEMU polls interrupt IN through receiving.
        this.submitted.interrupt++;
        this.send({ ...m, status: STATUS.stall, length: 0, data: new Uint8Array(0) });
        return;
      case "iso_packet":
        this.send({ ...m, status: STATUS.inval, length: 0, data: new Uint8Array(0) });
        return;
      default:
        return;
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closedFlag) fn();
    }, ms);
    this.timers.add(t);
  }

  private onControl(m: ControlPacket): void {
    const setup = { requestType: m.requestType, request: m.request, value: m.value, index: m.index, length: m.length };
    this.controlCount++;
    const v = this.opts.faults?.control?.(setup, this.controlCount) ?? "pass";
    const answer = (): void => {
      let status: TransferStatus;
      let data: Uint8Array = new Uint8Array(0);
      if (typeof v === "object" && "status" in v) status = v.status;
      else {
        const r = this.device.control(setup, m.data);
        status = r.status;
        if (isIn(m.endpoint) && r.data !== undefined && status === "success") data = r.data.subarray(0, m.length);
      }
      const replied = isIn(m.endpoint) ? data.length : status === "success" ? m.length : 0;
      this.send({ ...m, status: statusCode(status), length: replied, data });
      this.emit({ type: "control", ...setup, status, replied });
      // A SET_CONFIGURATION or SET_INTERFACE that reached us as a control
      // packet changes the endpoints as the dedicated messages do.
      if (status === "success" && (m.requestType & 0x60) === 0 && (m.request === 9 || m.request === 11)) this.sendInfo();
    };
    if (v === "pending") return;
    if (v === "disconnect") {
      this.disconnect();
      return;
    }
    if (typeof v === "object" && "delayMs" in v) this.later(v.delayMs, answer);
    else answer();
  }

  private onBulk(m: BulkPacket): void {
    if (isIn(m.endpoint)) this.submitted.bulkIn++;
    else this.submitted.bulkOut++;
    if (isIn(m.endpoint)) {
      // An IN request's fault applies when it would complete (pump): the
      // guest queues its receive requests long before data comes.
      this.pendingIn.push({ id: m.id, endpoint: m.endpoint, length: m.length, streamId: m.streamId });
      // Before the pump can complete it: the request is outstanding right now.
      if (this.opts.faults?.inQueued?.(m.endpoint, this.pendingInCount) === "disconnect") {
        this.disconnect();
        return;
      }
      this.pump(m.endpoint);
      return;
    }
    const v = this.opts.faults?.bulk?.(m.endpoint, m.length) ?? "pass";
    if (v === "pending") return;
    if (v === "disconnect") {
      this.disconnect();
      return;
    }
    if (typeof v === "object" && "status" in v) {
      this.send({ ...m, status: statusCode(v.status), length: 0, data: new Uint8Array(0) });
      return;
    }
    const run = (): void => {
      const status = this.device.bulkOut(m.endpoint, m.data);
      this.send({ ...m, status: statusCode(status), length: status === "success" ? m.data.length : 0, data: new Uint8Array(0) });
    };
    if (typeof v === "object" && "delayMs" in v) this.later(v.delayMs, run);
    else run();
  }

  /** Moves whatever the model has for an IN endpoint to QEMU. */
  private pump(endpoint: number): void {
    if (this.closedFlag || !this.connectedFlag) return;
    if (this.receiving.has(endpoint)) {
      for (;;) {
        const mps = this.device.endpoints().find((e) => e.address === endpoint)?.maxPacketSize ?? 64;
        const d = this.device.takeIn(endpoint, mps);
        if (d === undefined) break;
        this.send({ type: "interrupt_packet", id: this.interruptId++, endpoint, status: STATUS.success, length: d.length, data: d });
      }
      return;
    }
    for (;;) {
      const i = this.pendingIn.findIndex((p) => p.endpoint === endpoint);
      if (i < 0) return;
      const p = this.pendingIn[i]!;
      if (!this.device.hasIn(endpoint)) return;
      const v = this.opts.faults?.bulk?.(endpoint, p.length) ?? "pass";
      this.pendingIn.splice(i, 1);
      if (v === "pending") {
        // Held until the device goes: QEMU (and the guest) keep waiting on it.
        this.held.push(p);
        continue;
      }
      if (v === "disconnect") {
        this.disconnect();
        return;
      }
      if (typeof v === "object" && "status" in v) {
        this.send({ type: "bulk_packet", id: p.id, endpoint, status: statusCode(v.status), length: 0, streamId: p.streamId, data: new Uint8Array(0) });
        continue;
      }
      const taken = this.device.takeIn(endpoint, p.length);
      if (taken === undefined) {
        this.pendingIn.unshift(p);
        return;
      }
      const d = v === "short" ? (this.device.shortIn?.(endpoint, taken) ?? taken.subarray(0, taken.length >> 1)) : taken;
      const complete = (): void => this.send({ type: "bulk_packet", id: p.id, endpoint, status: STATUS.success, length: d.length, streamId: p.streamId, data: d });
      if (typeof v === "object" && "delayMs" in v) this.later(v.delayMs, complete);
      else complete();
    }
  }
}

function toSlot(e: ActiveEndpoint): EndpointDesc {
  return { type: e.type, interval: e.interval, interface: e.interface, maxPacketSize: e.maxPacketSize, maxStreams: 0 };
}

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `status ${code}`;
}
