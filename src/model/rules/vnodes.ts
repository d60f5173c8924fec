// Device nodes: after the revoke only deadfs answers, with its fixed errors,
// and d_close runs once per open. The rules and their check, together: the
// checker resolves the device a vnode event names and hands it to NodeMonitor.
// Tests: test/check/rules.test.ts, test/check/races.test.ts, and point 6 of
// test/check/netbsd-orders.test.ts.

import type { VnodeEvent } from "../events.js";
import { NETBSD, rule, type Judge } from "./define.js";

export const VNODE_RULES = [
  rule({
    id: "no-method-after-revoke",
    severity: "fatal",
    side: "guest",
    principle: 6,
    profiles: NETBSD,
    needs: ["vnodes"],
    watches: ["vnode:open", "vnode:method-call"],
    statement:
      "After vdevgone revoked a device node, no driver method (open, read, write, ioctl, close ...) is called on it again; the revoke's own forced close is not a call after it.",
    basis: "docs/netbsd.md#vdevgone docs/netbsd.md#deadfs docs/netbsd.md#bug-revoke-close",
  }),
  rule({
    id: "deadfs-answers",
    severity: "error",
    side: "guest",
    principle: 6,
    profiles: NETBSD,
    needs: ["vnodes"],
    watches: ["vnode:deadfs-call"],
    statement:
      "Calls on a revoked node are answered by deadfs: open ENXIO, read EIO (0 on a tty), write EIO, ioctl EBADF, close/poll 0. Without the tty flag a read may answer 0 or EIO.",
    basis: "docs/netbsd.md#deadfs",
  }),
  rule({
    id: "close-once",
    severity: "error",
    side: "guest",
    principle: 6,
    profiles: NETBSD,
    needs: ["vnodes"],
    watches: ["vnode:close", "vnode:method-call"],
    statement:
      "d_close runs once per open of a node: a file is closed once, and the process's last close and the revoke's forced close never both reach the driver.",
    basis: "docs/netbsd.md#vdevgone docs/netbsd.md#bug-revoke-close",
  }),
] as const;

const EIO = 5;
const ENXIO = 6;
const EBADF = 9;

const DEADFS_TTY_READ: readonly number[] = [0];
const DEADFS_READ: readonly number[] = [EIO];
/** deadfs answers (dead_vnops.c); ops not listed are not judged. Without the tty flag a read may be either. */
const DEADFS_ERRNO: Readonly<Record<string, readonly number[]>> = {
  open: [ENXIO],
  read: [EIO, 0],
  write: [EIO],
  ioctl: [EBADF],
  close: [0],
  poll: [0],
};

/** Open files on one node, counted per holder. */
type Fds = Map<string, number>;

function addFd(fds: Fds, holder: string): void {
  fds.set(holder, (fds.get(holder) ?? 0) + 1);
}

/** Closes one of holder's files; false when it has none open. */
function takeFd(fds: Fds, holder: string): boolean {
  const n = fds.get(holder) ?? 0;
  if (n <= 0) return false;
  if (n === 1) fds.delete(holder);
  else fds.set(holder, n - 1);
  return true;
}

/** One node of a live device. */
export interface NodeState {
  opens: Fds;
  revoked: boolean;
  /** d_close reached the driver since the node was last opened. */
  dclosed: boolean;
  /** Revoked while open and not yet d_closed: the revoke's own forced close is due. */
  forcedDue: boolean;
}

/** A device's nodes by path. */
export type DeviceNodes = Map<string, NodeState>;

export function nodeOf(nodes: DeviceNodes, path: string): NodeState {
  let vs = nodes.get(path);
  if (vs === undefined) nodes.set(path, (vs = { opens: new Map(), revoked: false, dclosed: false, forcedDue: false }));
  return vs;
}

/**
 * Judges vnode events. Memory is O(open files): files on nodes of devices
 * not known (trace began mid-run) and files left on deadfs by a revoke are
 * kept by path until their last close, beyond the device's free.
 */
export class NodeMonitor<Ctx> {
  private readonly loose = new Map<string, Fds>();
  private readonly dead = new Map<string, Fds>();

  constructor(private readonly judge: Judge<Ctx>) {}

  /** One vnode event; `vs` is the named device's node, undefined when the device is not known. */
  on(e: VnodeEvent, vs: NodeState | undefined, ctx: Ctx): void {
    const j = this.judge;
    switch (e.kind) {
      case "open": {
        // A failed open made no file: refused by device_lookup_acquire,
        // d_open or deadfs (ENXIO), so it is neither a reference nor a call
        // that reached the driver after revoke.
        if (e.error !== 0) return;
        j.ex("no-method-after-revoke");
        if (vs === undefined) {
          let loose = this.loose.get(e.path);
          if (loose === undefined) this.loose.set(e.path, (loose = new Map()));
          addFd(loose, e.holder);
          return;
        }
        if (vs.revoked) {
          j.violate("no-method-after-revoke", `open of ${e.path} reached the driver after revoke`, ctx);
          return;
        }
        if (vs.opens.size === 0) vs.dclosed = false;
        addFd(vs.opens, e.holder);
        return;
      }
      case "close": {
        if (vs !== undefined && !vs.revoked && takeFd(vs.opens, e.holder)) {
          j.ex("close-once");
          return;
        }
        // A file left on deadfs by a revoke closes with 0 at any later time,
        // also after the device was freed (docs/netbsd.md#deadfs).
        const dead = this.dead.get(e.path);
        if (dead !== undefined && takeFd(dead, e.holder)) {
          if (dead.size === 0) this.dead.delete(e.path);
          j.ex("close-once");
          return;
        }
        if (vs !== undefined) {
          j.violate("close-once", `${e.path} closed by ${e.holder || "?"} which has it not open (closed twice?)`, ctx);
          return;
        }
        const loose = this.loose.get(e.path);
        if (loose !== undefined && takeFd(loose, e.holder)) {
          if (loose.size === 0) this.loose.delete(e.path);
          j.ex("close-once");
        }
        // Otherwise a file opened before the trace began or on a device not known: not judged.
        return;
      }
      case "revoke":
        if (vs !== undefined) this.revokeNode(e.path, vs);
        else this.revokeLoose(e.path);
        return;
      case "method-call": {
        if (e.op === "open" && vs !== undefined && !vs.revoked) vs.dclosed = false;
        if (e.op === "close" && vs !== undefined) {
          // specfs calls d_close once, at the node's last close; the revoke
          // forces that one close itself if the node is still open
          // (docs/netbsd.md#vdevgone). Two are the sd_closing race (#bug-revoke-close).
          if (vs.dclosed) {
            j.violate("close-once", `d_close of ${e.path} ran a second time${e.forced ? " (forced by the revoke)" : ""} after the driver's close already ran: the last close and the revoke both reached the driver`, ctx);
            return;
          }
          j.ex("close-once");
          vs.dclosed = true;
          // Without the forced flag, the first d_close after a revoke of an open node is the revoke's own.
          const forced = j.observes("vnode-flags") ? e.forced : vs.forcedDue || !vs.revoked;
          vs.forcedDue = false;
          j.ex("no-method-after-revoke");
          if (vs.revoked && !forced) j.violate("no-method-after-revoke", `driver method close called on ${e.path} after revoke`, ctx);
          return;
        }
        j.ex("no-method-after-revoke");
        if (vs?.revoked) j.violate("no-method-after-revoke", `driver method ${e.op || "?"} called on ${e.path} after revoke`, ctx);
        return;
      }
      case "deadfs-call": {
        // A deadfs answer proves the node was revoked, also when the revoke itself was not seen.
        if (e.op !== "open") {
          if (vs !== undefined) {
            if (!vs.revoked) this.revokeNode(e.path, vs);
          } else this.revokeLoose(e.path);
        }
        const ok = e.op === "read" && j.observes("vnode-flags") ? (e.tty ? DEADFS_TTY_READ : DEADFS_READ) : DEADFS_ERRNO[e.op];
        if (ok === undefined) return;
        j.ex("deadfs-answers");
        if (!ok.includes(e.error)) j.violate("deadfs-answers", `deadfs answered ${e.op} on ${e.path} with error ${e.error}, expected ${ok[0]}`, ctx);
        return;
      }
    }
  }

  /** Files still open on a node whose revoke was not reported outlive the softc, so a later deadfs answer or close is judged. */
  deviceFreed(nodes: DeviceNodes): void {
    for (const [path, vs] of nodes) {
      if (vs.revoked || vs.opens.size === 0) continue;
      let loose = this.loose.get(path);
      if (loose === undefined) this.loose.set(path, (loose = new Map()));
      for (const [holder, n] of vs.opens) loose.set(holder, (loose.get(holder) ?? 0) + n);
    }
  }

  /** VOP_REVOKE: the node's open files stay open on deadfs, beyond the device's free, until closed. */
  private revokeNode(path: string, vs: NodeState): void {
    vs.forcedDue = !vs.revoked && vs.opens.size > 0 && !vs.dclosed;
    vs.revoked = true;
    this.moveToDead(path, vs.opens);
    vs.opens.clear();
  }

  private revokeLoose(path: string): void {
    const loose = this.loose.get(path);
    if (loose === undefined) return;
    this.loose.delete(path);
    this.moveToDead(path, loose);
  }

  private moveToDead(path: string, fds: Fds): void {
    if (fds.size === 0) return;
    let dead = this.dead.get(path);
    if (dead === undefined) this.dead.set(path, (dead = new Map()));
    for (const [holder, n] of fds) dead.set(holder, (dead.get(holder) ?? 0) + n);
  }
}
