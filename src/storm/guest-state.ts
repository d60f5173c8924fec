// What the runner needs to know about the guest to pace its steps: is an
// agent talking, which guest device is which NIC (by the USB serial the host
// set), has a NIC attached, finished detaching, has a module unload ended.
// Only pacing depends on this; judging is the checker's job.

import type { plugstorm } from "../gen/plugstorm.js";

type Frame = plugstorm.telemetry.v1.Frame;

const DEV_ATTACH_END = 2;
const DEV_DETACH_BEGIN = 4;
const DEV_DETACH_END = 5;
const DEV_FREE = 8;
const MOD_UNLOAD_BEGIN = 2;
const MOD_UNLOAD_WAIT = 3;
const MOD_UNLOAD_END = 4;

export interface NicGuestState {
  device?: string;
  attached: boolean;
  attachFailed: boolean;
  detachBegun: boolean;
  /** Detach completed (DETACH_END error 0) or the softc was freed. */
  gone: boolean;
}

export class GuestState {
  /** Called once per NIC when the guest has finished detaching it (detach end, or free). */
  onGone: ((nicId: string) => void) | undefined;
  /** A Hello has been seen: an agent is talking. */
  hello = false;
  capabilities = new Set<number>();
  /** What the agent said it cannot observe, each "WHAT: why" (Hello.unavailable). */
  unavailable: string[] = [];
  private readonly nics = new Map<string, NicGuestState>();
  private readonly deviceToNic = new Map<string, string>();
  private readonly macToNic = new Map<string, string>();
  private readonly unloadEnds = new Map<string, number>();
  private readonly unloadStarts = new Map<string, number>();

  /** Called before a NIC is added, so its frames can be joined by serial or MAC. */
  expect(nicId: string, mac?: string): void {
    this.nics.set(nicId, { attached: false, attachFailed: false, detachBegun: false, gone: false });
    if (mac) this.macToNic.set(mac.toLowerCase(), nicId);
  }

  setMac(nicId: string, mac: string): void {
    if (mac) this.macToNic.set(mac.toLowerCase(), nicId);
  }

  nic(nicId: string): NicGuestState | undefined {
    return this.nics.get(nicId);
  }

  unloadsEnded(module: string): number {
    return this.unloadEnds.get(module) ?? 0;
  }

  unloadsStarted(module: string): number {
    return this.unloadStarts.get(module) ?? 0;
  }

  onFrame(f: Frame): void {
    if (f.body === "hello" && f.hello) {
      this.hello = true;
      this.capabilities = new Set((f.hello.capabilities ?? []).map(Number));
      this.unavailable = (f.hello.unavailable ?? []).map(String);
      return;
    }
    if (f.body === "device" && f.device) {
      const d = f.device;
      const name = d.name ?? "";
      let nicId = (d.serial && this.nics.has(d.serial) ? d.serial : undefined) ?? (d.mac ? this.macToNic.get(d.mac.toLowerCase()) : undefined);
      if (nicId && name) this.deviceToNic.set(name, nicId);
      nicId ??= this.deviceToNic.get(name);
      if (!nicId) return;
      const st = this.nics.get(nicId);
      if (!st) return;
      if (name) st.device = name;
      const kind = Number(d.kind ?? 0);
      const err = Number(d.error ?? 0);
      if (kind === DEV_ATTACH_END) {
        if (err === 0) st.attached = true;
        else st.attachFailed = true;
      } else if (kind === DEV_DETACH_BEGIN) st.detachBegun = true;
      else if ((kind === DEV_DETACH_END && err === 0) || kind === DEV_FREE) {
        if (!st.gone) this.onGone?.(nicId);
        st.gone = true;
      }
      return;
    }
    if (f.body === "module" && f.module) {
      const name = f.module.name ?? "";
      const kind = Number(f.module.kind ?? 0);
      if (kind === MOD_UNLOAD_END) this.unloadEnds.set(name, (this.unloadEnds.get(name) ?? 0) + 1);
      else if (kind === MOD_UNLOAD_BEGIN || kind === MOD_UNLOAD_WAIT) {
        if (kind === MOD_UNLOAD_BEGIN) this.unloadStarts.set(name, (this.unloadStarts.get(name) ?? 0) + 1);
      }
    }
  }

  forget(nicId: string): void {
    const st = this.nics.get(nicId);
    if (st?.device && this.deviceToNic.get(st.device) === nicId) this.deviceToNic.delete(st.device);
    this.nics.delete(nicId);
    for (const [mac, n] of this.macToNic) if (n === nicId) this.macToNic.delete(mac);
  }
}
