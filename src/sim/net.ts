// Network side of the simulated kernel: ifnet (if_attach, if_deactivate,
// if_detach with its psref drain), usbnet (unp_refcnt, tasks, rx transfers)
// and the two drivers, cdce(4) on USB and ne(4) on PCMCIA, with the detach
// order of docs/netbsd.md#if-detach, #usbnet-detach and #pcmcia.

import {
  DK,
  EBUSY,
  STEP,
  IK,
  LOG,
  type DetachFlags,
  type Driver,
  type Kernel,
  OK,
  RK,
  type SimDevice,
  SimIfnet,
  Usbnet,
} from "./kernel.js";
import { TimedWait, type Yield } from "./scheduler.js";
import type { Vfs } from "./vfs.js";

/** rx transfers usbnet keeps posted on the bulk-in pipe while the interface runs. */
const RX_XFERS = 2;

export function ifAttach(k: Kernel, dev: SimDevice): SimIfnet {
  const ifp = new SimIfnet(dev.xname, dev);
  dev.ifp = ifp;
  k.emitIf(IK.ATTACH, ifp);
  return ifp;
}

/** if_deactivate: callable from interrupt context, never sleeps. */
export function ifDeactivate(k: Kernel, ifp: SimIfnet): void {
  if (ifp.deactivated) return;
  ifp.deactivated = true;
  k.emitIf(IK.DEACTIVATE, ifp);
}

/**
 * if_detach: cannot fail; deactivates, purges addresses (which, on usbnet,
 * reschedules the multicast task), unlinks, then psref_target_destroy waits
 * for every if_get holder. The routing socket's departure goes out before
 * the drain (7.x) or after it (10.x), by configuration (docs/netbsd.md#if-detach).
 */
export function* ifDetach(k: Kernel, ifp: SimIfnet): Generator<Yield, void, void> {
  k.emitIf(IK.DETACH_BEGIN, ifp);
  ifp.deactivated = true;
  yield k.timing.stepNs;
  const un = ifp.dev.un;
  if (un !== null) queueMcastTask(k, un);
  k.emitDevice(DK.DRAIN_BEGIN, ifp.dev, { objectKind: OK.OBJECT_KIND_IFNET });
  if (!k.cfg.departureAfterDrain) k.emitIf(IK.DEPARTURE, ifp);
  while (ifp.psref > 0) yield k.psrefCv;
  k.emitDevice(DK.DRAIN_END, ifp.dev, { objectKind: OK.OBJECT_KIND_IFNET });
  if (k.cfg.departureAfterDrain) k.emitIf(IK.DEPARTURE, ifp);
  ifp.detached = true;
  k.emitIf(IK.DETACH_END, ifp);
}

function mcastHolder(un: Usbnet): string {
  return `${un.dev.xname}.mcasttask`;
}

/** usb_add_task of the multicast task: a no-op when already queued. */
function queueMcastTask(k: Kernel, un: Usbnet): void {
  if (un.mcastQueued) return;
  un.mcastQueued = true;
  k.emitRef(RK.ACQUIRE, OK.OBJECT_KIND_USB_TASK, `${un.dev.xname} usbtask`, mcastHolder(un), "multicast task", 1, un.dev.xname);
}

/** The queued multicast task ran or usb_rem_task_wait removed it. */
function dequeueMcastTask(k: Kernel, un: Usbnet): void {
  if (!un.mcastQueued) return;
  un.mcastQueued = false;
  k.emitRef(RK.RELEASE, OK.OBJECT_KIND_USB_TASK, `${un.dev.xname} usbtask`, mcastHolder(un), "multicast task", 0, un.dev.xname);
}

/**
 * A packet sent while the detach runs its early steps: ip_output takes a
 * psref with if_get (legal until if_deactivate) and drops it a little later,
 * possibly while if_detach already waits for it (docs/netbsd.md#measured).
 */
function packetInFlight(k: Kernel, dev: SimDevice): void {
  const holder = `${dev.xname}.ip_output`;
  if (!ifGet(k, dev, holder, "packet in flight")) return;
  k.sched.after(k.timing.stepNs * 3, () => {
    if (!k.panicked && !dev.freed) ifPut(k, dev, holder, "packet in flight");
  });
}

/** if_get: fails on a deactivated interface (if_byindex hides it). */
export function ifGet(k: Kernel, dev: SimDevice, holder: string, desc: string): boolean {
  const ifp = dev.ifp;
  if (ifp === null || dev.freed || ifp.deactivated || ifp.detached) {
    if (ifp === null || dev.freed || !k.bugs.strikes("acquire-after-detach", dev.xname, dev.nicId, holder)) {
      k.emitRef(RK.ACQUIRE_FAILED, OK.OBJECT_KIND_IFNET, dev.xname, holder, desc, ifp?.psref ?? 0, dev.xname);
      return false;
    }
  }
  ifp.psref++;
  k.emitRef(RK.ACQUIRE, OK.OBJECT_KIND_IFNET, ifp.name, holder, desc, ifp.psref, dev.xname);
  return true;
}

export function ifPut(k: Kernel, dev: SimDevice, holder: string, desc: string): void {
  const ifp = dev.ifp!;
  ifp.psref--;
  k.emitRef(RK.RELEASE, OK.OBJECT_KIND_IFNET, ifp.name, holder, desc, ifp.psref, dev.xname);
  k.sched.broadcast(k.psrefCv);
}

/** usbnet_busy from an entry point that first checks unp_dying. */
export function usbnetBusy(k: Kernel, dev: SimDevice, holder: string, desc: string): boolean {
  const un = dev.un;
  if (un === null || !un.attached || un.dying || dev.freed) {
    if (un === null || dev.freed || !k.bugs.strikes("acquire-after-detach", dev.xname, dev.nicId, holder)) {
      k.emitRef(RK.ACQUIRE_FAILED, OK.OBJECT_KIND_USBNET, dev.xname, holder, desc, un?.refcnt ?? 0, dev.xname);
      return false;
    }
  }
  un.refcnt++;
  k.emitRef(RK.ACQUIRE, OK.OBJECT_KIND_USBNET, dev.xname, holder, desc, un.refcnt, dev.xname);
  return true;
}

export function usbnetUnbusy(k: Kernel, dev: SimDevice, holder: string, desc: string): void {
  const un = dev.un!;
  un.refcnt--;
  k.emitRef(RK.RELEASE, OK.OBJECT_KIND_USBNET, dev.xname, holder, desc, un.refcnt, dev.xname);
  k.sched.broadcast(un.detachCv);
}

/** ifconfig up: usbnet_init opens the pipes and posts the rx chain. */
export function ifUp(k: Kernel, dev: SimDevice, accessor: string): boolean {
  const ifp = dev.ifp;
  if (ifp === null || ifp.deactivated || dev.freed) return false;
  k.emitIf(IK.ACCESS, ifp, accessor);
  if (ifp.running) return true;
  ifp.running = true;
  k.emitIf(IK.UP, ifp);
  const un = dev.un;
  if (un !== null && !un.stopping) {
    for (let i = 0; i < RX_XFERS; i++) {
      const x = `${dev.xname}.rx${i}`;
      un.xfers.push(x);
      k.emitRef(RK.ACQUIRE, OK.OBJECT_KIND_TRANSFER, `${dev.xname} bulk-in`, x, "rx xfer", un.xfers.length, dev.xname);
    }
  }
  return true;
}

/** usbnet_stop / dp8390_stop: abort the pipes (in-flight xfers complete CANCELLED), clear IFF_RUNNING. */
export function ifStop(k: Kernel, dev: SimDevice, countersFirst: boolean): void {
  const ifp = dev.ifp;
  if (ifp === null || !ifp.running) return;
  const un = dev.un;
  if (un !== null) {
    while (un.xfers.length > 0) {
      const x = un.xfers.pop()!;
      k.emitRef(RK.RELEASE, OK.OBJECT_KIND_TRANSFER, `${dev.xname} bulk-in`, x, "rx xfer", un.xfers.length, dev.xname);
    }
  }
  ifp.running = false;
  if (countersFirst) k.emitIf(IK.COUNTERS, ifp);
  k.emitIf(IK.DOWN, ifp);
}

/** Vetoes a detach without DETACH_FORCE when configured to and the node is open. */
function vetoes(k: Kernel, vfs: Vfs, dev: SimDevice, flags: DetachFlags): boolean {
  if (flags.force) return k.bugs.strikes("forced-detach-veto", dev.xname, dev.nicId);
  return k.cfg.vetoBusyDetach && vfs.isOpen(dev);
}

// The drivers are classes, their generator methods on the prototype: one
// function per method for every machine. A generator method of an object
// literal made per machine is a closure of its own, and V8 gives each such
// generator function its own map for the generators it makes; that map, in
// old space, points back at the closure and so at the whole machine, which
// every minor GC then kept (each short shrink run's machine promoted whole).

export class CdceDriver implements Driver {
  readonly name = "cdce";
  readonly module = "if_cdce";
  constructor(private readonly vfs: Vfs) {}

  *attach(k: Kernel, dev: SimDevice): Generator<Yield, void, void> {
    // cdce_attach: descriptors, data interface alt settings, MAC string.
    yield k.timing.attachNs;
    const un = new Usbnet(dev);
    dev.un = un;
    un.attached = true;
    ifAttach(k, dev);
  }

  // usbnet_detach.
  *detach(k: Kernel, dev: SimDevice, flags: DetachFlags): Generator<Yield, number, void> {
    const vfs = this.vfs;
    if (vetoes(k, vfs, dev, flags)) return EBUSY;
    yield* vfs.vdevgone(dev);
    const un = dev.un;
    if (un === null || !un.attached) return 0;
    const traffic = dev.ifp !== null && dev.ifp.traffic;
    un.dying = true;
    k.emitDevice(DK.DETACH_STEP, dev, { step: STEP.DETACH_STEP_DYING });
    // The stack keeps sending until if_deactivate: psrefs in the early steps are legal.
    if (traffic) packetInFlight(k, dev);
    if (dev.ifp !== null && dev.ifp.running) {
      un.stopping = true;
      k.emitDevice(DK.DETACH_STEP, dev, { step: STEP.DETACH_STEP_STOP });
      yield k.timing.stepNs;
      ifStop(k, dev, false);
    }
    // usb_rem_task_wait(mcasttask)
    k.emitDevice(DK.DETACH_STEP, dev, { step: STEP.DETACH_STEP_TASK_WAIT });
    dequeueMcastTask(k, un);
    yield k.timing.stepNs;
    if (traffic) packetInFlight(k, dev);
    k.emitDevice(DK.DETACH_STEP, dev, { step: STEP.DETACH_STEP_ETHER_IFDETACH });
    if (dev.ifp !== null) yield* ifDetach(k, dev.ifp);
    if (k.bugs.draw("task-after-if-detach", dev.xname, dev.nicId)) {
      // The bug: no second usb_rem_task_wait; the task if_detach's multicast purge queued runs
      // on the task thread while usbnet_detach goes on, and takes IFNET_LOCK without checking unp_dying.
      // With no task queued the skipped wait had nothing to wait for: no strike.
      if (un.mcastQueued) {
        k.bugs.struck("task-after-if-detach");
        k.sched.after(0, mcastTask, { k, dev });
      }
    } else {
      k.emitDevice(DK.DETACH_STEP, dev, { step: STEP.DETACH_STEP_TASK_WAIT_AGAIN });
      dequeueMcastTask(k, un);
      yield k.timing.stepNs;
    }
    // unp_refcnt--; while (unp_refcnt >= 0) cv_wait(&unp_detachcv)
    k.emitDevice(DK.DRAIN_BEGIN, dev, { objectKind: OK.OBJECT_KIND_USBNET });
    if (k.bugs.draw("detach-wait-timeout", dev.xname, dev.nicId)) {
      const deadline = k.now + k.timing.usbDetachWaitNs;
      while (un.refcnt > 0 && k.now < deadline) yield new TimedWait(un.detachCv, deadline - k.now);
      // Only a wait that ran out went on differently from the correct one.
      if (un.refcnt > 0) {
        k.bugs.struck("detach-wait-timeout");
        k.log(LOG.WARN, `${dev.xname}: didn't detach`);
        k.console(`${dev.xname}: didn't detach\n`);
      }
    } else {
      while (un.refcnt > 0) yield un.detachCv;
    }
    k.emitDevice(DK.DRAIN_END, dev, { objectKind: OK.OBJECT_KIND_USBNET });
    k.emitDevice(DK.DETACH_STEP, dev, { step: STEP.DETACH_STEP_REFS_DRAINED });
    un.attached = false;
    return 0;
  }

  deactivate(k: Kernel, dev: SimDevice): number {
    // usbnet_activate
    if (dev.ifp !== null) ifDeactivate(k, dev.ifp);
    if (dev.un !== null) {
      dev.un.dying = true;
      dev.un.stopping = true;
    }
    return 0;
  }
}

function mcastTask(a: unknown): void {
  const { k, dev } = a as { k: Kernel; dev: SimDevice };
  if (k.panicked || dev.ifp === null) return;
  const prev = k.hostThread;
  k.hostThread = "usbtask-dr";
  try {
    if (dev.un !== null) dequeueMcastTask(k, dev.un);
    k.emitIf(IK.ACCESS, dev.ifp, "multicast task");
  } finally {
    k.hostThread = prev;
  }
}

export class NeDriver implements Driver {
  readonly name = "ne";
  readonly module = "if_ne";
  constructor(private readonly vfs: Vfs) {}

  *attach(k: Kernel, dev: SimDevice): Generator<Yield, void, void> {
    // pcmcia_function_enable, ne2000_attach (reset, MAC from the PROM).
    yield k.timing.attachNs;
    ifAttach(k, dev);
  }

  // ne_pcmcia_detach → ne2000_detach → dp8390_detach.
  *detach(k: Kernel, dev: SimDevice, flags: DetachFlags): Generator<Yield, number, void> {
    const vfs = this.vfs;
    if (vetoes(k, vfs, dev, flags)) return EBUSY;
    yield* vfs.vdevgone(dev);
    if (dev.ifp === null) return 0;
    if (dev.ifp.running) ifStop(k, dev, false);
    yield k.timing.stepNs;
    yield* ifDetach(k, dev.ifp);
    return 0;
  }

  deactivate(k: Kernel, dev: SimDevice): number {
    // dp8390_activate: if_deactivate and nothing else.
    if (dev.ifp === null) return 0;
    ifDeactivate(k, dev.ifp);
    if (k.bugs.strikes("sleep-in-interrupt", dev.xname, dev.nicId)) {
      // The bug: the handler waits for the interface's psref holders at splhigh.
      k.emitDevice(DK.DRAIN_BEGIN, dev, { objectKind: OK.OBJECT_KIND_IFNET });
      k.emitDevice(DK.DRAIN_END, dev, { objectKind: OK.OBJECT_KIND_IFNET });
    }
    return 0;
  }
}
