// What every NIC model shares: its identity (serial and MAC, the keys the
// checker joins on), its wire, and the queue of frames waiting for the guest.

import { EthernetWire, parseMac } from "./wire.js";
import type { WireCounters } from "./model.js";

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
