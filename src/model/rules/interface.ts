// Interface: nothing touches an interface after if_detach, and no usb_task queued across it is left behind.
// Judged in src/model/checker.ts by the ifnet automaton (automata.ts), onIf, judgeTasks.

import { BOTH, NETBSD, rule } from "./define.js";

export const INTERFACE_RULES = [
  rule({
    id: "no-ifnet-access-after-if-detach",
    severity: "fatal",
    side: "guest",
    principle: 3,
    profiles: BOTH,
    needs: ["ifnet"],
    watches: ["ifnet:access", "ifnet:up", "ifnet:down"],
    statement:
      "Nothing touches an interface (ioctl, task, output, up/down) after if_detach returned.",
    basis: "docs/netbsd.md#usbnet-detach docs/netbsd.md#bug-task-across-if-detach",
  }),
  rule({
    id: "usb-task-waited",
    severity: "fatal",
    side: "guest",
    principle: 3,
    profiles: NETBSD,
    needs: ["detach-steps", "refs"],
    watches: ["ref:usb-task", "device:detach-step", "device:drain-begin", "device:detach-end", "device:free"],
    statement:
      "usbnet_detach waits for its usb_tasks after if_detach: no task queued on the device is still pending once the detach passes its second task wait (or reaches its unp_refcnt drain).",
    basis: "docs/netbsd.md#usbnet-detach docs/netbsd.md#bug-task-across-if-detach",
  }),
] as const;
