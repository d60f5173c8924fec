// What the runner needs to know about the guest to pace its steps: is an
// agent talking, which guest device is which NIC (by the USB serial the host
// set), has a NIC attached, finished detaching, has a module unload ended.
// Only pacing depends on this; judging is the checker's job.

import type { plugstorm } from "../gen/plugstorm.js";
import { NicMatcher, type NicKeys } from "../model/index.js";
import { BodyKind, plainBody } from "../telemetry/index.js";

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

/**
 * The unload counts of a run that has unloaded nothing: shared, never
 * written (a run makes its own Map at its first unload). A Map, not null, so
 * the fields always hold one kind of object: a field that held null in one
 * run and a Map in another would throw away the code V8 optimised for the
 * first.
 */
const NO_UNLOADS = new Map<string, number>();

export class GuestState {
  /** A Hello has been seen: an agent is talking. */
  hello = false;
  /** What the agent said it cannot observe, each "WHAT: why" (Hello.unavailable). */
  unavailable: string[] = [];
  private readonly nics = new Map<string, NicGuestState>();
  /** Only NICs the host is adding or has added: a guest's stray serial joins none. */
  private readonly match = new NicMatcher({ isNic: (id) => this.nics.has(id) });
  // Made at a module's first unload: most runs unload nothing (a shrink's
  // candidates nearly never), and a Map is an allocation of its own a run.
  // Until then the shared empty NO_UNLOADS (a Map too, not null: see NO_UNLOADS).
  private unloadEnds: Map<string, number> = NO_UNLOADS;
  private unloadStarts: Map<string, number> = NO_UNLOADS;

  /**
   * onGone: called once per NIC when the guest has finished detaching it
   * (detach end, or free). Given here, not set after: a closure stored into a
   * made object's field kept its run alive through minor GCs (every shrink
   * run was promoted whole).
   */
  constructor(private readonly onGone?: (nicId: string) => void) {}

  /** Called before a NIC is added, so its frames can be joined by serial or MAC. */
  expect(nicId: string, mac?: string): void {
    this.nics.set(nicId, { attached: false, attachFailed: false, detachBegun: false, gone: false });
    this.match.addNic(nicId, mac);
  }

  setMac(nicId: string, mac: string): void {
    this.match.addNic(nicId, mac);
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
    // A frame the telemetry decoder has just decoded (nearly all of them):
    // its hand-off names the body, and a device's fields sit in one object
    // of one shape, where the frame's members and a DeviceEvent's fields come
    // in many shapes (each read a megamorphic load). References, interfaces
    // and heartbeats pace nothing.
    if (f === plainBody.frame) {
      const body = plainBody.body;
      if (body === BodyKind.DEVICE) {
        const d = plainBody.device;
        this.onDevice(d, d.name, d.kind, d.error);
      }
      return;
    }
    // Not f.body: protobufjs's oneof getter scans the members on every read,
    // and every frame comes here. hello is the oneof's first member, so a set
    // hello is body "hello"; each test below rules out the members before it.
    if (f.hello) {
      this.hello = true;
      // Its capabilities are the checker's to read (nothing here paces on them).
      this.unavailable = (f.hello.unavailable ?? []).map(String);
      return;
    }
    if (f.device) {
      const d = f.device;
      this.onDevice(d, d.name ?? "", Number(d.kind ?? 0), Number(d.error ?? 0));
      return;
    }
    if (f.module && f.ref == null && f.ifnet == null && f.vnode == null) {
      const name = f.module.name ?? "";
      const kind = Number(f.module.kind ?? 0);
      if (kind === MOD_UNLOAD_END) bump(this.unloadEnds === NO_UNLOADS ? (this.unloadEnds = new Map()) : this.unloadEnds, name);
      else if (kind === MOD_UNLOAD_BEGIN || kind === MOD_UNLOAD_WAIT) {
        if (kind === MOD_UNLOAD_BEGIN) bump(this.unloadStarts === NO_UNLOADS ? (this.unloadStarts = new Map()) : this.unloadStarts, name);
      }
    }
  }

  private onDevice(keys: NicKeys, name: string, kind: number, err: number): void {
    const nicId = this.match.match(keys);
    if (!nicId) return;
    const st = this.nics.get(nicId);
    if (!st) return;
    if (name) st.device = name;
    if (kind === DEV_ATTACH_END) {
      if (err === 0) st.attached = true;
      else st.attachFailed = true;
    } else if (kind === DEV_DETACH_BEGIN) st.detachBegun = true;
    else if ((kind === DEV_DETACH_END && err === 0) || kind === DEV_FREE) {
      if (!st.gone) this.onGone?.(nicId);
      st.gone = true;
    }
  }

  forget(nicId: string): void {
    // Joins to it answer nothing from here (isNic).
    this.nics.delete(nicId);
  }
}

function bump(counts: Map<string, number>, name: string): void {
  counts.set(name, (counts.get(name) ?? 0) + 1);
}
