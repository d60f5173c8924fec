// The simulated NetBSD kernel core: per-device state of subr_autoconf.c
// (dv_pending, dv_detaching, dv_detached, dv_del_gen, localcount), the
// config_attach / config_detach / config_deactivate sequences of
// docs/netbsd.md#config-detach, and the telemetry the agent reports about them.
// Drivers, buses, vnodes, modules and the agent live in their own files and
// call in here.

import { plugstorm } from "../gen/plugstorm.js";
import type { BugSet } from "./bugs.js";
import type { FrameSink } from "./frames.js";
import type { Rng } from "./rng.js";
import { Kthread, Scheduler, WaitChan, type Yield } from "./scheduler.js";

const T = plugstorm.telemetry.v1;
export const DK = T.DeviceEvent.Kind;
export const STEP = T.DeviceEvent.DetachStep;
export const VETO = T.ModuleEvent.VetoReason;
export const RK = T.RefEvent.Kind;
export const IK = T.IfEvent.Kind;
export const VK = T.VnodeEvent.Kind;
export const MK = T.ModuleEvent.Kind;
export const OK = T.ObjectKind;
export const CTX = T.ExecContext;
export const BUS = T.Bus;
export const LOG = T.Log.Level;
export type ObjectKind = plugstorm.telemetry.v1.ObjectKind;

// NetBSD errno values.
export const ENOENT = 2;
export const ESRCH = 3;
export const EIO = 5;
export const ENXIO = 6;
export const EBADF = 9;
export const EBUSY = 16;
export const EINVAL = 22;
export const EOPNOTSUPP = 45;

export interface DetachFlags {
  force: boolean;
  quiet?: boolean;
}

export const FORCE: DetachFlags = { force: true };
export const NOFORCE: DetachFlags = { force: false };

export type DriverName = "cdce" | "ne";

/** A network interface (struct ifnet) with its psref target. */
export class SimIfnet {
  psref = 0;
  /** The agent runs traffic through it: the stack takes psrefs to send. */
  traffic = false;
  deactivated = false;
  detached = false;
  running = false;
  txPackets = 0;
  rxPackets = 0;
  constructor(readonly name: string, readonly dev: SimDevice) {}
}

/** usbnet_private: unp_refcnt, dying/stopping, the multicast task, rx xfers in flight. */
export class Usbnet {
  refcnt = 0;
  attached = false;
  dying = false;
  stopping = false;
  /** The multicast usb_task is queued (a USB_TASK reference). */
  mcastQueued = false;
  xfers: string[] = [];
  readonly detachCv: WaitChan;
  constructor(readonly dev: SimDevice) {
    this.detachCv = new WaitChan(`${dev.xname} unp_detachcv`);
  }
}

export class SimDevice {
  pending = 0;
  attaching: Kthread | null = null;
  detaching: Kthread | null = null;
  /** Detaches past config_detach_enter (more than one only under double-detach-race). */
  detachers = 0;
  /** dv_detached: config_detach_commit ran. */
  committed = false;
  /** dv_del_gen != 0: config_detach finished, the device is unlinked. */
  delGen = false;
  active = true;
  localcount = 0;
  /** Threads inside config_detach for this device: they keep the struct from being freed (deviter). */
  iterRefs = 0;
  freed = false;
  /** FREE frames emitted (2 = double free). */
  frees = 0;
  ifp: SimIfnet | null = null;
  un: Usbnet | null = null;
  /** A second detach got past config_detach_enter while the first ran (double-detach-race). */
  racy = false;
  constructor(
    readonly xname: string,
    readonly driver: DriverName,
    readonly unit: number,
    readonly instance: number,
    readonly bus: "usb" | "pcmcia",
    readonly parent: string,
    readonly port: string,
    readonly nicId: string,
    readonly mac: string,
    readonly module: string,
  ) {}

  get nodePath(): string {
    return `/dev/${this.xname}`;
  }
}

export interface Driver {
  readonly name: DriverName;
  readonly module: string;
  /** ca_attach. */
  attach(k: Kernel, dev: SimDevice): Generator<Yield, void, void>;
  /** ca_detach: returns 0 or an errno (veto). */
  detach(k: Kernel, dev: SimDevice, flags: DetachFlags): Generator<Yield, number, void>;
  /** ca_activate(DVACT_DEACTIVATE), called at splhigh: must not sleep. */
  deactivate(k: Kernel, dev: SimDevice): number;
}

export interface KernelTiming {
  /** USB enumeration after the hub reports a new device. */
  usbEnumNs: number;
  /** Time ca_attach spends (control transfers, PHY reset). */
  attachNs: number;
  /** Hub interrupt to event thread running uhub_explore. */
  exploreNs: number;
  /** pcic_event_thread debounce (hz/4). */
  pcmciaDebounceNs: number;
  /** Small steps inside detach (pipe abort, task wait). */
  stepNs: number;
  /** usb_detach_waitold timeout (60 s). */
  usbDetachWaitNs: number;
  heartbeatNs: number;
  /** Period of the I/O loop of a process with an open device node; 0 = no I/O. */
  nodeIoNs: number;
}

export const DEFAULT_TIMING: KernelTiming = {
  usbEnumNs: 20e6,
  attachNs: 2e6,
  exploreNs: 1e6,
  pcmciaDebounceNs: 250e6,
  stepNs: 100e3,
  usbDetachWaitNs: 60e9,
  heartbeatNs: 1e9,
  nodeIoNs: 0,
};

export interface KernelConfig {
  timing: KernelTiming;
  /**
   * Where if_detach sends the routing socket's IFAN_DEPARTURE: before its
   * psref drain (7.x, measured) or after it (10.x source). Both are NetBSD.
   */
  departureAfterDrain: boolean;
  /** Drivers veto a detach without DETACH_FORCE (drvctl -d, modunload) while a node is open. */
  vetoBusyDetach: boolean;
}

function noConsole(): void {}

export class Kernel {
  /** config_misc_cv. */
  readonly cfgmisc = new WaitChan("cfgmisc");
  /** ifnet_psref_class prc_cv. */
  readonly psrefCv = new WaitChan("psref");
  /** specfs_iocv (sd_closing). */
  readonly specCv = new WaitChan("specfs");
  /** Live devices by xname (until freed). */
  readonly devices = new Map<string, SimDevice>();
  readonly drivers = new Map<DriverName, Driver>();
  private readonly units = new Map<DriverName, Set<number>>();
  private readonly instances = new Map<string, number>();
  /** Set while an interrupt handler runs. */
  inInterrupt = false;
  panicked = false;
  /** Name reported for kernel work done outside a kthread (the agent's own lwp). */
  hostThread = "agent";
  /** Called when a device is freed (buses and modules wait on it). */
  readonly freeCv = new WaitChan("devfree");

  constructor(
    readonly sched: Scheduler,
    readonly rng: Rng,
    readonly out: FrameSink,
    readonly bugs: BugSet,
    readonly cfg: KernelConfig,
    /**
     * Kernel messages for the machine's console (panics and warnings only).
     * Given here, not set on the kernel after it is made: a closure stored
     * into a made object's field kept (old-space map to closure to context)
     * the whole machine alive through minor GCs, so every short shrink run
     * promoted its machine.
     */
    readonly console: (text: string) => void = noConsole,
  ) {}

  get now(): number {
    return this.sched.now;
  }

  get timing(): KernelTiming {
    return this.cfg.timing;
  }

  // ------------------------------------------------------------ telemetry

  context(): number {
    return this.inInterrupt ? CTX.EXEC_CONTEXT_INTERRUPT : CTX.EXEC_CONTEXT_THREAD;
  }

  threadName(): string {
    if (this.inInterrupt) return "";
    const th = this.sched.current;
    return th === null ? this.hostThread : th.name;
  }

  emitDevice(kind: number, dev: SimDevice, extra?: { error?: number; flags?: DetachFlags; objectKind?: number; step?: number; deferred?: boolean }): void {
    if (this.panicked) return;
    const ev: plugstorm.telemetry.v1.DeviceEvent.$Properties = {
      kind,
      name: dev.xname,
      driver: dev.driver,
      parent: dev.parent,
      bus: dev.bus === "usb" ? BUS.BUS_USB : BUS.BUS_PCMCIA,
      port: dev.port,
      serial: dev.nicId,
      mac: dev.mac,
      context: this.context(),
      thread: this.threadName(),
      instance: dev.instance,
      ifname: dev.xname,
    };
    if (extra !== undefined) {
      if (extra.error !== undefined) ev.error = extra.error;
      if (extra.flags !== undefined) ev.flags = { force: extra.flags.force, quiet: extra.flags.quiet === true };
      if (extra.objectKind !== undefined) ev.objectKind = extra.objectKind;
      if (extra.step !== undefined) ev.step = extra.step;
      if (extra.deferred === true) ev.deferred = true;
    }
    this.out.emit({ seq: 0, guestTimeNs: 0, device: ev });
  }

  emitRef(
    kind: number,
    objectKind: number,
    object: string,
    holder: string,
    desc: string,
    countAfter: number,
    device: string,
  ): void {
    if (this.panicked) return;
    this.out.emit({
      seq: 0,
      guestTimeNs: 0,
      ref: { kind, objectKind, object, holder, holderDesc: desc, countAfter, context: this.context(), device },
    });
  }

  emitIf(kind: number, ifp: SimIfnet, accessor?: string): void {
    if (this.panicked) return;
    const ev: plugstorm.telemetry.v1.IfEvent.$Properties = {
      kind,
      ifname: ifp.name,
      device: ifp.dev.xname,
      context: this.context(),
    };
    if (accessor !== undefined) ev.accessor = accessor;
    if (kind === IK.COUNTERS) {
      ev.txPackets = ifp.txPackets;
      ev.rxPackets = ifp.rxPackets;
      ev.txBytes = ifp.txPackets * 590;
      ev.rxBytes = ifp.rxPackets * 590;
    }
    this.out.emit({ seq: 0, guestTimeNs: 0, ifnet: ev });
  }

  emitVnode(kind: number, path: string, device: string, op: string, error: number, holder: string, forced = false): void {
    if (this.panicked) return;
    // The simulated nodes are not ttys: deadfs answers their reads with EIO.
    const vnode: plugstorm.telemetry.v1.VnodeEvent.$Properties = { kind, path, device, op, error, holder };
    if (forced) vnode.forced = true;
    this.out.emit({ seq: 0, guestTimeNs: 0, vnode });
  }

  emitModule(kind: number, name: string, error: number, instances: string[], extra?: { builtin?: boolean; vetoReason?: number }): void {
    if (this.panicked) return;
    const module: plugstorm.telemetry.v1.ModuleEvent.$Properties = { kind, name, error, instances };
    if (extra?.builtin === true) module.builtin = true;
    if (extra?.vetoReason !== undefined) module.vetoReason = extra.vetoReason;
    this.out.emit({ seq: 0, guestTimeNs: 0, module });
  }

  log(level: number, text: string): void {
    if (this.panicked) return;
    this.out.emit({ seq: 0, guestTimeNs: 0, log: { level, text } });
  }

  /** The kernel stops for good: a Panic frame, then silence. */
  panic(message: string, device: string): void {
    if (this.panicked) return;
    this.out.emit({ seq: 0, guestTimeNs: 0, panic: { message, device } });
    this.console(`panic: ${message}\n`);
    this.panicked = true;
    this.sched.halted = true;
  }

  /** Runs fn as a hard interrupt handler (splhigh): frames carry INTERRUPT context. */
  interrupt(fn: () => void): void {
    const prev = this.inInterrupt;
    this.inInterrupt = true;
    try {
      fn();
    } finally {
      this.inInterrupt = prev;
    }
  }

  // ------------------------------------------------------------ autoconf

  lookup(xname: string): SimDevice | undefined {
    return this.devices.get(xname);
  }

  /** The attached device (not yet freed) for a QEMU id. */
  bySerial(serial: string): SimDevice | undefined {
    let found: SimDevice | undefined;
    for (const d of this.devices.values()) if (d.nicId === serial) found = d;
    return found;
  }

  /**
   * config_attach: allocates the lowest free unit (a unit is reused only after
   * its device is freed), reports "device-attach" before ca_attach runs, and
   * keeps dv_pending raised around ca_attach.
   */
  *configAttach(
    driverName: DriverName,
    spec: { bus: "usb" | "pcmcia"; parent: string; port: string; nicId: string; mac: string },
  ): Generator<Yield, SimDevice, void> {
    const driver = this.drivers.get(driverName);
    if (driver === undefined) throw new Error(`sim kernel: no driver ${driverName}`);
    let used = this.units.get(driverName);
    if (used === undefined) this.units.set(driverName, (used = new Set()));
    let unit = 0;
    while (used.has(unit)) unit++;
    used.add(unit);
    const xname = `${driverName}${unit}`;
    const instance = (this.instances.get(xname) ?? 0) + 1;
    this.instances.set(xname, instance);
    const dev = new SimDevice(
      xname,
      driverName,
      unit,
      instance,
      spec.bus,
      spec.parent,
      spec.port,
      spec.nicId,
      spec.mac,
      driver.module,
    );
    this.devices.set(xname, dev);
    dev.attaching = this.sched.current;
    this.emitDevice(DK.ATTACH_BEGIN, dev);
    dev.pending++;
    yield* driver.attach(this, dev);
    dev.pending--;
    dev.attaching = null;
    this.sched.broadcast(this.cfgmisc);
    this.emitDevice(DK.ATTACH_END, dev, { error: 0 });
    return dev;
  }

  /**
   * config_detach(dev, flags), step by step as in subr_autoconf.c 1.300
   * (docs/netbsd.md#config-detach). A caller that must wait in
   * config_detach_enter reports DETACH_WAIT and, woken after the winner
   * finished, returns ENOENT; DETACH_BEGIN is reported only by the caller
   * that runs ca_detach. Each caller holds a deviter-like reference
   * (iterRefs) so the device is freed inside config_detach (FREE before
   * DETACH_END(0)) only when no other caller is inside, and otherwise by the
   * last one out (the winner's DETACH_END carries `deferred`).
   */
  *configDetach(dev: SimDevice, flags: DetachFlags): Generator<Yield, number, void> {
    const self = this.sched.current;
    dev.iterRefs++;
    // config_detach_enter: wait while attach is pending or another lwp detaches.
    // Drawn on entry, struck only when there was something to wait for.
    const racy = this.bugs.draw("double-detach-race", dev.xname, dev.nicId);
    const early = this.bugs.draw("detach-before-attach-done", dev.xname, dev.nicId);
    let waited = false;
    while ((dev.pending > 0 && !early) || (dev.detaching !== null && dev.detaching !== self && !racy)) {
      if (!waited) this.emitDevice(DK.DETACH_WAIT, dev, { flags });
      waited = true;
      yield this.cfgmisc;
    }
    if (early && dev.pending > 0) this.bugs.struck("detach-before-attach-done");
    if (dev.delGen) {
      // The winner finished while this caller slept (or before it came): ENOENT.
      this.emitDevice(DK.DETACH_END, dev, { error: ENOENT });
      this.leaveDetach(dev);
      return ENOENT;
    }
    if (racy && dev.detaching !== null) {
      dev.racy = true;
      this.bugs.struck("double-detach-race");
    }
    dev.detaching = self;
    dev.detachers++;
    this.emitDevice(DK.DETACH_BEGIN, dev, { flags });
    const driver = this.drivers.get(dev.driver)!;
    const rv = yield* driver.detach(this, dev, flags);
    if (rv !== 0) {
      if (flags.force) {
        // The agent reads the failure from the panic message; report it as the detach's end, then the panic.
        this.emitDevice(DK.DETACH_END, dev, { error: rv, flags });
        this.panic(`config_detach: forced detach of ${dev.xname} failed (${rv})`, dev.xname);
        return rv;
      }
      this.detachExit(dev);
      this.emitDevice(DK.DETACH_END, dev, { error: rv });
      this.leaveDetach(dev);
      return rv;
    }
    // config_detach_commit: device_lookup_acquire fails from here on.
    dev.committed = true;
    this.emitDevice(DK.COMMIT, dev);
    this.sched.broadcast(this.cfgmisc);
    dev.active = false;
    // The bug: the softc goes before the localcount drain, while lookups may still hold it.
    if (this.bugs.strikes("free-before-drain", dev.xname, dev.nicId)) this.freeDevice(dev);
    // localcount_drain: every device_lookup_acquire reference must go first.
    this.emitDevice(DK.DRAIN_BEGIN, dev, { objectKind: OK.OBJECT_KIND_DEVICE });
    while (dev.localcount > 0) yield this.cfgmisc;
    this.emitDevice(DK.DRAIN_END, dev, { objectKind: OK.OBJECT_KIND_DEVICE });
    // devmon_report_device(dev, false): "device-detach", after the drain.
    this.emitDevice(DK.DETACH_REPORTED, dev);
    dev.delGen = true;
    this.detachExit(dev);
    // config_devfree inside config_detach, unless another caller is still
    // inside (its deviter defers the free to the last one out). The bugs: a
    // racing second detach frees again; the winner ignores the sleeper.
    const others = dev.iterRefs - 1;
    const underSleeper = others > 0 && !dev.racy && this.bugs.strikes("free-under-sleeper", dev.xname, dev.nicId);
    const freeNow = dev.racy || underSleeper || (others === 0 && dev.frees === 0);
    if (freeNow) this.freeDevice(dev);
    this.emitDevice(DK.DETACH_END, dev, { error: 0, deferred: !freeNow && dev.frees === 0 });
    dev.iterRefs--;
    return 0;
  }

  /** config_detach_exit: this lwp no longer detaches; sleepers in config_detach_enter wake. */
  private detachExit(dev: SimDevice): void {
    dev.detachers--;
    if (dev.detachers === 0) dev.detaching = null;
    this.sched.broadcast(this.cfgmisc);
  }

  /** A caller leaves config_detach: the last one out frees a device whose free was deferred. */
  private leaveDetach(dev: SimDevice): void {
    dev.iterRefs--;
    if (dev.delGen && dev.iterRefs === 0 && dev.frees === 0) this.freeDevice(dev);
  }

  /** kmem_free of the softc: the FREE frame; a second call is the double free it models. */
  freeDevice(dev: SimDevice): void {
    dev.frees++;
    dev.freed = true;
    this.emitDevice(DK.FREE, dev);
    if (this.devices.get(dev.xname) === dev) {
      this.devices.delete(dev.xname);
      this.units.get(dev.driver)?.delete(dev.unit);
    }
    this.sched.broadcast(this.freeCv);
  }

  /** config_deactivate: DVACT_DEACTIVATE at splhigh for a device still DVF_ACTIVE. */
  configDeactivate(dev: SimDevice): void {
    if (!dev.active) return;
    dev.active = false;
    this.emitDevice(DK.DEACTIVATE, dev);
    const rv = this.drivers.get(dev.driver)!.deactivate(this, dev);
    if (rv !== 0) dev.active = true;
  }

  /**
   * device_lookup_acquire: blocks while another lwp attaches or any lwp
   * detaches the device, fails once it is detached (dv_detached).
   */
  *deviceLookupAcquire(dev: SimDevice): Generator<Yield, boolean, void> {
    const self = this.sched.current;
    for (;;) {
      if (dev.freed) return false;
      const dying = dev.committed || dev.delGen;
      const attachBlocks = dev.attaching !== null && dev.attaching !== self;
      const detachBlocks = dev.detaching !== null && dev.detaching !== self;
      if (!dying && !attachBlocks && !detachBlocks) break;
      // The bug: the lookup ignores a detach in progress or done.
      if ((dying || detachBlocks) && this.bugs.strikes("acquire-after-detach", dev.xname, dev.nicId)) break;
      if (dying) return false;
      yield this.cfgmisc;
    }
    dev.localcount++;
    return true;
  }

  deviceRelease(dev: SimDevice): void {
    dev.localcount--;
    this.sched.broadcast(this.cfgmisc);
  }
}
