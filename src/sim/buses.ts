// The two buses a NIC arrives on. USB: the hub reports a port change, the
// bus's event thread ("usb0") explores and calls config_attach or
// config_detach(DETACH_FORCE), with no deactivate phase. PCMCIA: the
// card-detect interrupt deactivates the function at splhigh and queues an
// event; the socket's event thread detaches it with DETACH_FORCE.

import { FORCE, type DriverName, type Kernel, type SimDevice } from "./kernel.js";
import type { Modules } from "./modules.js";
import { WaitChan, type Yield } from "./scheduler.js";

/** The driver that attaches to each NIC kind the sim plugs: its devices are named driver + unit (cdce0, ne1). */
export const KIND_DRIVERS = { "usb-net": "cdce", "pcmcia-ne2000": "ne" } as const satisfies Record<string, DriverName>;

interface Hw {
  nicId: string;
  mac: string;
}

interface UsbPort {
  name: string;
  hw: Hw | null;
  dev: SimDevice | null;
  change: boolean;
}

function childGone(dev: SimDevice | null): boolean {
  // ca_childdetached cleared the parent's pointer: someone else finished the detach.
  return dev === null || dev.delGen || dev.freed;
}

export class UsbBus {
  readonly ports = new Map<string, UsbPort>();
  private needsExplore = false;
  private readonly cv = new WaitChan("usbevt");

  constructor(
    private readonly k: Kernel,
    private readonly mods: Modules,
    portNames: string[],
    readonly name = "usb0",
    readonly hub = "uhub0",
  ) {
    for (const p of portNames) this.ports.set(p, { name: p, hw: null, dev: null, change: false });
    k.sched.spawn(name, this.eventThread());
  }

  connect(port: string, hw: Hw): void {
    const p = this.ports.get(port)!;
    p.hw = hw;
    p.change = true;
    this.usbNeedsExplore();
  }

  disconnect(port: string): void {
    const p = this.ports.get(port)!;
    const nicId = p.hw?.nicId ?? "";
    p.hw = null;
    // The bug: the hub's status change is lost and the port is never explored again.
    if (this.k.bugs.strikes("lost-detach", p.dev?.xname ?? "", nicId)) return;
    p.change = true;
    this.usbNeedsExplore();
  }

  /** uhub_intr → usb_needs_explore. */
  private usbNeedsExplore(): void {
    this.needsExplore = true;
    this.k.sched.broadcast(this.cv);
  }

  private *eventThread(): Generator<Yield, void, void> {
    const k = this.k;
    for (;;) {
      while (!this.needsExplore) yield this.cv;
      this.needsExplore = false;
      yield k.timing.exploreNs;
      yield* this.explore();
    }
  }

  /** uhub_explore: each changed port, in port order. */
  private *explore(): Generator<Yield, void, void> {
    const k = this.k;
    for (const p of this.ports.values()) {
      if (!p.change) continue;
      p.change = false;
      if (p.dev !== null && (p.hw === null || p.hw.nicId !== p.dev.nicId)) {
        // usb_disconnect_port(up, sc->sc_dev, DETACH_FORCE)
        const dev = p.dev;
        p.dev = null;
        if (!childGone(dev)) yield* k.configDetach(dev, FORCE);
      }
      if (p.hw !== null && p.dev === null) {
        const hw = p.hw;
        // usbd_new_device: reset, address, descriptors (config 0 = RNDIS finds no driver, config 1 = CDC ECM).
        yield k.timing.usbEnumNs;
        if (p.hw !== hw) {
          p.change = true;
          continue;
        }
        this.mods.ensureLoaded(KIND_DRIVERS["usb-net"]);
        p.dev = yield* k.configAttach(KIND_DRIVERS["usb-net"], {
          bus: "usb",
          parent: this.hub,
          port: `${this.hub} port ${p.name}`,
          nicId: hw.nicId,
          mac: hw.mac,
        });
        if (p.hw !== hw) {
          p.change = true;
          this.needsExplore = true;
        }
      }
    }
  }
}

export class PcmciaSocket {
  private card: Hw | null = null;
  private dev: SimDevice | null = null;
  private readonly events: Array<{ kind: "insert" | "remove"; hw: Hw }> = [];
  private readonly cv: WaitChan;
  readonly threadName: string;
  readonly bus: string;

  constructor(
    private readonly k: Kernel,
    private readonly mods: Modules,
    readonly socket: number,
  ) {
    this.threadName = `pcic0,0,${socket}`;
    this.bus = `pcmcia${socket}`;
    this.cv = new WaitChan(this.threadName);
    k.sched.spawn(this.threadName, this.eventThread());
  }

  insert(hw: Hw): void {
    this.card = hw;
    this.k.interrupt(() => this.queue("insert", hw));
  }

  /** pcic_intr_socket, card gone: pcic_deactivate_card at interrupt time, then queue REMOVAL. */
  remove(): void {
    const k = this.k;
    const hw = this.card;
    if (hw === null) return;
    this.card = null;
    k.interrupt(() => {
      const dev = this.dev;
      if (dev !== null && dev.nicId === hw.nicId && !childGone(dev)) {
        if (!k.bugs.draw("skip-deactivate", dev.xname, dev.nicId)) k.configDeactivate(dev);
        // Only a device still active had a deactivate to skip.
        else if (dev.active) k.bugs.struck("skip-deactivate");
      }
      this.queue("remove", hw);
    });
  }

  private queue(kind: "insert" | "remove", hw: Hw): void {
    this.events.push({ kind, hw });
    this.k.sched.broadcast(this.cv);
  }

  /** pcic_event_thread: debounce, then attach or detach (DETACH_FORCE) the function. */
  private *eventThread(): Generator<Yield, void, void> {
    const k = this.k;
    for (;;) {
      while (this.events.length === 0) yield this.cv;
      yield k.timing.pcmciaDebounceNs;
      const ev = this.events.shift()!;
      if (ev.kind === "remove") {
        const dev = this.dev;
        if (dev === null || dev.nicId !== ev.hw.nicId) continue;
        this.dev = null;
        if (!childGone(dev)) yield* k.configDetach(dev, FORCE);
      } else if (this.card === ev.hw && (this.dev === null || childGone(this.dev))) {
        const hw = ev.hw;
        this.mods.ensureLoaded(KIND_DRIVERS["pcmcia-ne2000"]);
        this.dev = yield* k.configAttach(KIND_DRIVERS["pcmcia-ne2000"], {
          bus: "pcmcia",
          parent: this.bus,
          port: `pcic0 socket ${this.socket}`,
          nicId: hw.nicId,
          mac: hw.mac,
        });
      }
    }
  }
}
