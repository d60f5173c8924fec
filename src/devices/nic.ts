// What every NIC model shares: its identity (serial and MAC, the keys the
// checker joins on), its wire, and the queue of frames waiting for the guest.

import { EthernetWire, parseMac } from "./wire.js";
import type { WireCounters } from "./model.js";
import { UsbDevice, type UsbDeviceData } from "./usb-device.js";

export interface NicIdentityData {
  /** USB serial string: the QEMU id (nic<N>). */
  serial: string;
  /** The guest's MAC for this NIC, 52:54:00:xx:xx:xx. */
  mac: string;
}

/** Frames queued for the guest beyond this are dropped (and counted): a NIC's receive ring. */
export const RX_QUEUE_FRAMES = 256;

/** The wire's own host: a locally administered MAC and an IPv4 address, both derived from the NIC's MAC. */
export function wireFor(mac: string): EthernetWire {
  const m = parseMac(mac);
  const hex = [...m.subarray(3)].map((b) => b.toString(16).padStart(2, "0")).join(":");
  return new EthernetWire({ mac: `02:50:53:${hex}`, ipv4: `10.${m[4]}.${m[5]}.1` });
}

export class FrameQueue {
  private readonly frames: Uint8Array[] = [];
  constructor(
    private readonly counters: WireCounters,
    private readonly limit = RX_QUEUE_FRAMES,
  ) {}
  get length(): number {
    return this.frames.length;
  }
  push(f: Uint8Array): boolean {
    if (this.frames.length >= this.limit) {
      this.counters.framesDropped++;
      return false;
    }
    this.frames.push(f);
    return true;
  }
  shift(): Uint8Array | undefined {
    return this.frames.shift();
  }
  peek(): Uint8Array | undefined {
    return this.frames[0];
  }
  /** Drops everything queued (link down, reset): counted as dropped. */
  clear(): void {
    this.counters.framesDropped += this.frames.length;
    this.frames.length = 0;
  }
}

/** USB string for a MAC as CDC's iMACAddress wants it: 12 hex digits. */
export function macString(mac: string): string {
  return mac.replace(/:/g, "").toUpperCase();
}

/**
 * A USB Ethernet NIC: a USB device with a wire behind it. Frames for the guest
 * wait in a receive queue and wake the bulk IN endpoint; what the guest sends
 * goes to the wire, whose answers come back the same way.
 */
export abstract class EthernetUsbDevice extends UsbDevice {
  readonly wire: EthernetWire;
  readonly identity: NicIdentityData;
  protected readonly toGuest: FrameQueue;

  constructor(
    data: UsbDeviceData,
    identity: NicIdentityData,
    private readonly bulkInEndpoint: number,
  ) {
    super(data);
    this.identity = identity;
    this.wire = wireFor(identity.mac);
    this.toGuest = new FrameQueue(this.wire.counters);
  }

  get counters(): WireCounters {
    return this.wire.counters;
  }

  /** True while frames can flow to the guest. */
  abstract get dataPathUp(): boolean;

  /** Queues a frame for the guest (e.g. a ping); false when it cannot go now. */
  sendToGuest(frame: Uint8Array): boolean {
    if (!this.dataPathUp) {
      this.wire.counters.framesDropped++;
      return false;
    }
    const ok = this.toGuest.push(frame);
    if (ok) this.onInReady?.(this.bulkInEndpoint);
    return ok;
  }

  /** Frames the guest sent: each reaches the wire, and the wire's answers go back to the guest. */
  protected fromGuest(frames: Iterable<Uint8Array>): void {
    for (const f of frames) for (const reply of this.wire.receive(f)) this.sendToGuest(reply);
  }
}
