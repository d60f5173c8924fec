// Device nodes: open files on a specfs vnode, vdevgone → VOP_REVOKE, and the
// deadfs answers a revoked vnode gives (docs/netbsd.md#vdevgone, #deadfs). Each simulated
// NIC driver exports one character node, /dev/<xname>, with d_devtounit set,
// so cdev_open takes device_lookup_acquire around d_open.

import { EBADF, EIO, ENXIO, ENOENT, type Kernel, OK, RK, type SimDevice, VK } from "./kernel.js";
import type { Yield } from "./scheduler.js";

export class SimVnode {
  readonly opens = new Set<string>();
  dead = false;
  closing = false;
  constructor(readonly path: string, readonly dev: SimDevice) {}
}

interface OpenFile {
  holder: string;
  vnode: SimVnode;
  ops: number;
}

const IO_OPS = ["read", "write", "ioctl", "poll"] as const;
const DEADFS_ERR: Record<string, number> = { open: ENXIO, read: EIO, write: EIO, ioctl: EBADF, poll: 0, close: 0 };

export class Vfs {
  /** Live (not revoked) vnodes by path. */
  private readonly vnodes = new Map<string, SimVnode>();
  /** Open files by holder + path. */
  readonly files = new Map<string, OpenFile>();

  constructor(readonly k: Kernel) {}

  get openCount(): number {
    return this.files.size;
  }

  /** A holder with an open file on path, if any (oldest first). */
  holderOf(path: string): string | undefined {
    for (const f of this.files.values()) if (f.vnode.path === path) return f.holder;
    return undefined;
  }

  isOpen(dev: SimDevice): boolean {
    const v = this.vnodes.get(dev.nodePath);
    return v !== undefined && v.dev === dev && v.opens.size > 0;
  }

  /** open(2) of a device node by a process: returns an errno. */
  *open(path: string, holder: string): Generator<Yield, number, void> {
    const k = this.k;
    const key = `${holder}\u0000${path}`;
    if (this.files.has(key)) return EBADF;
    const m = /^\/dev\/([a-z]+[0-9]+)$/.exec(path);
    const dev = m === null ? undefined : k.lookup(m[1]!);
    if (dev === undefined || dev.committed || dev.freed) {
      k.emitVnode(VK.OPEN, path, dev?.xname ?? "", "open", m === null ? ENOENT : ENXIO, holder);
      return m === null ? ENOENT : ENXIO;
    }
    // cdev_open: devsw reference, then device_lookup_acquire around d_open.
    const devsw = `cdevsw ${dev.driver}`;
    k.emitRef(RK.ACQUIRE, OK.OBJECT_KIND_DEVSW, devsw, holder, "cdev_open", 1, dev.xname);
    const ok = yield* k.deviceLookupAcquire(dev);
    if (!ok) {
      k.emitRef(RK.ACQUIRE_FAILED, OK.OBJECT_KIND_DEVICE, dev.xname, holder, "cdev_open", dev.localcount, dev.xname);
      k.emitRef(RK.RELEASE, OK.OBJECT_KIND_DEVSW, devsw, holder, "cdev_open", 0, dev.xname);
      k.emitVnode(VK.OPEN, path, dev.xname, "open", ENXIO, holder);
      return ENXIO;
    }
    k.emitRef(RK.ACQUIRE, OK.OBJECT_KIND_DEVICE, dev.xname, holder, "cdev_open", dev.localcount, dev.xname);
    k.emitVnode(VK.METHOD_CALL, path, dev.xname, "open", 0, holder);
    k.deviceRelease(dev);
    k.emitRef(RK.RELEASE, OK.OBJECT_KIND_DEVICE, dev.xname, holder, "cdev_open", dev.localcount, dev.xname);
    k.emitRef(RK.RELEASE, OK.OBJECT_KIND_DEVSW, devsw, holder, "cdev_open", 0, dev.xname);
    let v = this.vnodes.get(path);
    if (v === undefined || v.dev !== dev) {
      v = new SimVnode(path, dev);
      this.vnodes.set(path, v);
    }
    v.opens.add(holder);
    k.emitRef(RK.ACQUIRE, OK.OBJECT_KIND_VNODE, path, holder, "open file", v.opens.size, dev.xname);
    k.emitVnode(VK.OPEN, path, dev.xname, "open", 0, holder);
    const f: OpenFile = { holder, vnode: v, ops: 0 };
    this.files.set(key, f);
    if (k.timing.nodeIoNs > 0) k.sched.after(k.timing.nodeIoNs, ioTick, { vfs: this, f });
    return 0;
  }

  /** close(2): the last close of a live vnode reaches d_close; a revoked one answers from deadfs. */
  close(path: string, holder: string): number {
    const k = this.k;
    const key = `${holder}\u0000${path}`;
    const f = this.files.get(key);
    if (f === undefined) return EBADF;
    this.files.delete(key);
    const v = f.vnode;
    v.opens.delete(holder);
    if (v.dead) {
      this.deadOrDriver(f, "close");
    } else if (v.opens.size === 0) {
      k.emitVnode(VK.METHOD_CALL, path, v.dev.xname, "close", 0, holder);
    }
    k.emitVnode(VK.CLOSE, path, v.dead ? "" : v.dev.xname, "close", 0, holder);
    k.emitRef(RK.RELEASE, OK.OBJECT_KIND_VNODE, path, holder, "open file", v.opens.size, v.dead ? "" : v.dev.xname);
    return 0;
  }

  /** One I/O call by an open file's process. */
  io(f: OpenFile, op: string): void {
    if (f.vnode.dead) {
      this.deadOrDriver(f, op);
    } else {
      this.k.emitVnode(VK.METHOD_CALL, f.vnode.path, f.vnode.dev.xname, op, 0, f.holder);
    }
  }

  private deadOrDriver(f: OpenFile, op: string): void {
    const k = this.k;
    const v = f.vnode;
    if (k.bugs.strikes("method-after-revoke", v.dev.xname, v.dev.nicId, f.holder)) {
      // The bug: the vnode kept its specfs ops, so the driver method runs on a revoked node.
      k.emitVnode(VK.METHOD_CALL, v.path, v.dev.xname, op, 0, f.holder);
      return;
    }
    k.emitVnode(VK.DEADFS_CALL, v.path, "", op, DEADFS_ERR[op] ?? EBADF, f.holder);
  }

  /**
   * vdevgone for the device's node: VOP_REVOKE of its live vnode, which waits
   * for a close in progress, forces one d_close if the node is open, and
   * leaves the vnode to deadfs.
   */
  *vdevgone(dev: SimDevice): Generator<Yield, void, void> {
    const k = this.k;
    const v = this.vnodes.get(dev.nodePath);
    if (v === undefined || v.dev !== dev) return;
    const racing = v.opens.size > 0 && k.bugs.strikes("dclose-twice", dev.xname, dev.nicId);
    if (racing) {
      // The bug: revoke neither waits for a close in progress (sd_closing) nor
      // sees it: the process's last close reaches d_close while the revoke,
      // which saw the node open, forces another one.
      const holder = [...v.opens][0]!;
      this.close(v.path, holder);
    } else {
      while (v.closing) yield k.specCv;
    }
    // spec_node_revoke's forced VOP_CLOSE reaches d_close once, before the vnode goes dead (REVOKE).
    if (v.opens.size > 0 || racing) k.emitVnode(VK.METHOD_CALL, v.path, dev.xname, "close", 0, "", true);
    k.emitVnode(VK.REVOKE, v.path, dev.xname, "revoke", 0, "");
    v.dead = true;
    this.vnodes.delete(v.path);
  }
}

function ioTick(a: unknown): void {
  const { vfs, f } = a as { vfs: Vfs; f: OpenFile };
  const k = vfs.k;
  // A closed file ends the process's I/O loop.
  if (k.panicked || !vfs.files.has(`${f.holder}\u0000${f.vnode.path}`)) return;
  vfs.io(f, IO_OPS[f.ops++ % IO_OPS.length]!);
  k.sched.after(k.timing.nodeIoNs, ioTick, a);
}
