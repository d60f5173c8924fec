// Telemetry channel: frames arrive, none lost, commands acknowledged.
// Judged in src/model/checker.ts by onChannel, onHeartbeat, onGuestFrame, the telemetry deadline.

import { BOTH, rule } from "./define.js";

export const CHANNEL_RULES = [
  rule({
    id: "no-frames-lost",
    severity: "warning",
    side: "channel",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["channel", "heartbeat"],
    statement:
      "No telemetry frame is lost, corrupted or dropped by the agent (verdicts after a loss may rest on missing events).",
    basis: "docs/netbsd.md#telemetry",
  }),
  rule({
    id: "guest-telemetry-present",
    severity: "error",
    side: "channel",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["deadline:machine:started"],
    statement:
      "Guest telemetry arrives within the deadline after the machine starts when NICs are added.",
    basis: "docs/netbsd.md#telemetry",
    liveness: true,
  }),
  rule({
    id: "commands-acknowledged",
    severity: "warning",
    side: "channel",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["channel:ack-timeout"],
    statement:
      "The guest agent acknowledges every command within its deadline.",
    basis: "docs/netbsd.md#telemetry",
  }),
] as const;
