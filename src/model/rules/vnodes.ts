// Device nodes: after the revoke only deadfs answers, with its fixed errors, and d_close runs once per open.
// Judged in src/model/checker.ts by onVnode, revokeNode.

import { NETBSD, rule } from "./define.js";

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
