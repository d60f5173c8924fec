// Device-side faults as data: what a misbehaving USB NIC does to its host. A
// FaultPlan is consulted by the transport before each transfer is answered
// from the model; malformed descriptors are applied to the model's
// descriptor bytes before it is plugged. Every fault that takes effect is
// reported through onApplied, so it lands in the trace with its endpoint and
// status.

import type { SetupPacket, TransferStatus } from "./model.js";

export type FaultEndpoint = "control" | "bulk-in" | "bulk-out";

export type DeviceFault =
  /** Answer with STALL. count: how many transfers (default: all until unplug). */
  | { kind: "stall"; endpoint: FaultEndpoint; count?: number }
  /** Answer with an error status. */
  | { kind: "status"; endpoint: FaultEndpoint; status: "ioerror" | "timeout" | "babble"; count?: number }
  /** Never answer: the transfer stays pending until the device goes. */
  | { kind: "pending"; endpoint: FaultEndpoint; count?: number }
  /** Answer normally, but delayMs late. */
  | { kind: "late"; endpoint: FaultEndpoint; delayMs: number; count?: number }
  /** Disconnect from the device side when the count-th control request arrives (mid-enumeration for small counts). */
  | { kind: "disconnect-after-control"; count: number }
  /**
   * Complete bulk IN transfers short: the transfer ends before the frame its
   * own header announces (each model's framing: see UsbDeviceModel.shortIn).
   */
  | { kind: "short"; endpoint: "bulk-in"; count?: number }
  /**
   * Leave from the device side at the moment `count` bulk IN requests are
   * outstanding (QEMU pipelines bulk IN to a usb-host that announces
   * 32bits_bulk_length, as ours does, so several can be).
   */
  | { kind: "disconnect-pending"; count: number }
  /**
   * A reconnect storm: device_disconnect then device_connect on the same
   * chardev, `count` times, gapMs apart; each connect is a fresh enumeration
   * of the same device (same serial and MAC, so the checker joins every
   * attach to the one NIC).
   */
  | { kind: "reconnect"; count: number; gapMs: number }
  /** Descriptors a correct host must refuse or survive; only at plug time. */
  | { kind: "malformed"; what: MalformedWhat };

export type MalformedWhat = "total-length" | "no-endpoints" | "bad-class";
export const MALFORMED: readonly MalformedWhat[] = ["total-length", "no-endpoints", "bad-class"];

export type FaultVerdict = "pass" | "pending" | "disconnect" | "short" | { status: TransferStatus } | { delayMs: number };

/** What a plan asks of the device itself, outside any transfer (a reconnect storm). */
export interface FaultActions {
  reconnect(times: number, gapMs: number): void;
  /** Asks inQueued again about the requests already outstanding (a fault armed while they wait). */
  recheckPending(): void;
}

export interface AppliedFault {
  fault: DeviceFault["kind"];
  endpoint: string;
  /** What the host got: a status name, "pending", "late <ms>", or "disconnect". */
  outcome: string;
}

/** Faults armed until a transfer or a count reaches them; reconnect acts at once. */
interface Armed {
  fault: DeviceFault;
  left: number;
}

export class FaultPlan {
  private readonly armed: Armed[] = [];
  private actions: FaultActions | undefined;
  /** Reconnect storms asked for before the device's connection existed. */
  private readonly deferred: Array<Extract<DeviceFault, { kind: "reconnect" }>> = [];
  onApplied: ((a: AppliedFault) => void) | undefined;

  add(f: DeviceFault): void {
    if (f.kind === "malformed") throw new RangeError("malformed descriptors are a plug-time fault: give them when the device is made (malformDescriptors)");
    const n = "count" in f && f.count !== undefined ? f.count : Infinity;
    if (!(n >= 1)) throw new RangeError(`fault ${f.kind}: count must be at least 1, got ${n}`);
    if (f.kind === "reconnect") {
      if (!(f.gapMs >= 0)) throw new RangeError(`fault reconnect: gap must be at least 0 ms, got ${f.gapMs}`);
      if (this.actions === undefined) this.deferred.push(f);
      else this.reconnect(f);
      return;
    }
    this.armed.push({ fault: f, left: f.kind === "disconnect-after-control" || f.kind === "disconnect-pending" ? 1 : n });
    // The guest's receive requests may all be outstanding already, with no new one coming until data flows.
    if (f.kind === "disconnect-pending") this.actions?.recheckPending();
  }

  /** The device's connection: reconnect storms act through it (a storm asked for earlier starts now). */
  bind(actions: FaultActions | undefined): void {
    this.actions = actions;
    if (actions !== undefined) for (const f of this.deferred.splice(0)) this.reconnect(f);
  }

  private reconnect(f: Extract<DeviceFault, { kind: "reconnect" }>): void {
    this.report(f, "device", `${f.count} disconnect/connect cycles, ${f.gapMs} ms apart`);
    this.actions!.reconnect(f.count, f.gapMs);
  }

  /** After a bulk IN request joins the outstanding ones; pending is how many are outstanding now. */
  inQueued(endpoint: number, pending: number): FaultVerdict {
    const a = this.armed.find((x) => x.fault.kind === "disconnect-pending");
    if (a === undefined || a.fault.kind !== "disconnect-pending" || pending < a.fault.count) return "pass";
    this.spend(a);
    this.report(a.fault, `bulk-in 0x${endpoint.toString(16).padStart(2, "0")}`, `disconnect with ${pending} bulk IN pending`);
    return "disconnect";
  }

  clear(): void {
    this.armed.length = 0;
  }

  get active(): readonly DeviceFault[] {
    return this.armed.map((a) => a.fault);
  }

  /** Before a control request is answered; count is how many control requests this connection has had, this one included. */
  control(setup: SetupPacket, count: number): FaultVerdict {
    for (const a of this.armed) {
      if (a.fault.kind === "disconnect-after-control" && count >= a.fault.count) {
        this.spend(a);
        this.report(a.fault, `control #${count} bRequest ${setup.request}`, "disconnect");
        return "disconnect";
      }
    }
    return this.transfer("control", `control bRequest ${setup.request} wValue 0x${setup.value.toString(16)}`);
  }

  bulk(endpoint: number, _length: number): FaultVerdict {
    const ep: FaultEndpoint = endpoint & 0x80 ? "bulk-in" : "bulk-out";
    return this.transfer(ep, `${ep} 0x${endpoint.toString(16).padStart(2, "0")}`);
  }

  private transfer(ep: FaultEndpoint, where: string): FaultVerdict {
    const a = this.armed.find((x) => "endpoint" in x.fault && x.fault.endpoint === ep);
    if (a === undefined) return "pass";
    this.spend(a);
    const f = a.fault;
    switch (f.kind) {
      case "stall":
        this.report(f, where, "stall");
        return { status: "stall" };
      case "status":
        this.report(f, where, f.status);
        return { status: f.status };
      case "pending":
        this.report(f, where, "pending");
        return "pending";
      case "late":
        this.report(f, where, `late ${f.delayMs} ms`);
        return { delayMs: f.delayMs };
      case "short":
        this.report(f, where, "short");
        return "short";
      default:
        return "pass";
    }
  }

  private spend(a: Armed): void {
    a.left--;
    if (a.left <= 0) this.armed.splice(this.armed.indexOf(a), 1);
  }

  private report(f: DeviceFault, endpoint: string, outcome: string): void {
    this.onApplied?.({ fault: f.kind, endpoint, outcome });
  }
}

/**
 * A configuration descriptor made wrong on purpose:
 * - total-length: wTotalLength claims 64 bytes more than there are;
 * - no-endpoints: every interface at its last alt setting loses its endpoints
 *   (bNumEndpoints 0, endpoint descriptors removed): the data interface has no bulk pair;
 * - bad-class: the first interface's class triple becomes 0xff/0xff/0xff, so no class driver matches.
 */
export function malformConfig(config: Uint8Array, what: MalformedWhat): Uint8Array {
  const c = config.slice();
  switch (what) {
    case "total-length": {
      const total = (c[2]! | (c[3]! << 8)) + 64;
      c[2] = total & 0xff;
      c[3] = total >> 8;
      return c;
    }
    case "bad-class": {
      for (let o = c[0]!; o + 1 < c.length; o += c[o]!) {
        if (c[o + 1] === 4) {
          c[o + 5] = 0xff;
          c[o + 6] = 0xff;
          c[o + 7] = 0xff;
          return c;
        }
        if (c[o] === 0) break;
      }
      return c;
    }
    case "no-endpoints": {
      // Keep everything but the endpoints of the last interface descriptor; fix its count and wTotalLength.
      let lastIf = -1;
      for (let o = c[0]!; o + 1 < c.length && c[o]! > 0; o += c[o]!) if (c[o + 1] === 4) lastIf = o;
      if (lastIf < 0) return c;
      const parts: number[] = [];
      for (let o = 0; o < c.length && c[o]! > 0; o += c[o]!) {
        if (o > lastIf && c[o + 1] === 5) continue;
        parts.push(...c.subarray(o, o + c[o]!));
      }
      const out = Uint8Array.from(parts);
      out[lastIf + 4] = 0;
      out[2] = out.length & 0xff;
      out[3] = out.length >> 8;
      return out;
    }
  }
}
