// Host side: QEMU accepts and finalises commands and does not exit on its own; the profile matches the guest.
// Judged in src/model/checker.ts by onHostResult, onDeviceDeleted, onMachine, onHello, the finalise deadline.

import { BOTH, rule } from "./define.js";

export const HOST_RULES = [
  rule({
    id: "qemu-accepts-command",
    severity: "error",
    side: "host",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["host-result"],
    statement:
      "QEMU accepts every device_add / device_del plugstorm sends.",
    basis: "docs/netbsd.md#qemu",
  }),
  rule({
    id: "host-remove-finalised",
    severity: "error",
    side: "host",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["qmp-device-deleted", "deadline:host-remove"],
    statement:
      "Every device_del is finalised by a DEVICE_DELETED event within the deadline.",
    basis: "docs/netbsd.md#qemu",
    liveness: true,
  }),
  rule({
    id: "host-action-completes",
    severity: "error",
    side: "host",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["host-result"],
    statement:
      "Every host action completes (no lost QMP connection, no command timeout).",
    basis: "docs/netbsd.md#qemu",
  }),
  rule({
    id: "machine-does-not-crash",
    severity: "fatal",
    side: "host",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["machine:exited"],
    statement:
      "The machine (QEMU) does not exit on its own.",
    basis: "docs/netbsd.md#qemu",
  }),
  rule({
    id: "machine-responsive",
    severity: "error",
    side: "host",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["machine:unresponsive", "machine:responsive"],
    statement:
      "The machine keeps answering the host's QMP heartbeat; while it does not (stopped, hung), no deadline runs.",
    basis: "docs/netbsd.md#qemu",
  }),
  rule({
    id: "profile-matches-guest",
    severity: "warning",
    side: "host",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["hello"],
    statement:
      "The model profile matches the operating system the guest says it runs.",
    basis: "docs/netbsd.md#telemetry",
  }),
] as const;
