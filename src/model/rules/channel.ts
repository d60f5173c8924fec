// Telemetry channel: frames arrive, none lost, commands acknowledged. The
// rules, then their check (ChannelMonitor: guest frames, heartbeats, channel
// events, the deadline for the first telemetry).
// Tests: test/check/rules.test.ts (a breaking and a keeping trace per rule),
// test/check/behaviour.test.ts.

import type { Core } from "../core.js";
import type { At, HostAddEvent, ModelEvent } from "../events.js";
import type { Payload } from "../state.js";
import type { Timer } from "../timers.js";
import { BOTH, fmtDur, rule } from "./define.js";

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

/** Judges the telemetry channel. */
export class ChannelMonitor {
  private readonly X_COMMANDS_ACKNOWLEDGED: number;
  private readonly X_GUEST_TELEMETRY_PRESENT: number;
  private readonly X_NO_FRAMES_LOST: number;
  /** The agent's drop counters as last reported (they only grow within one Hello). */
  private lastDropped = 0;
  private lastEventsLost = 0;

  constructor(private readonly c: Core) {
    this.X_COMMANDS_ACKNOWLEDGED = c.ix("commands-acknowledged");
    this.X_GUEST_TELEMETRY_PRESENT = c.ix("guest-telemetry-present");
    this.X_NO_FRAMES_LOST = c.ix("no-frames-lost");
  }

  onGuestFrame(): void {
    const c = this.c;
    if (c.guestFrames === 0) {
      c.timers.cancel(c.telemetryTimer);
      c.ex(this.X_GUEST_TELEMETRY_PRESENT);
    }
    c.guestFrames++;
  }

  onHeartbeat(e: ModelEvent & { type: "heartbeat" }): void {
    const c = this.c;
    c.ex(this.X_NO_FRAMES_LOST);
    const dropped = e.framesDropped - this.lastDropped;
    const lost = e.eventsLost - this.lastEventsLost;
    this.lastDropped = Math.max(this.lastDropped, e.framesDropped);
    this.lastEventsLost = Math.max(this.lastEventsLost, e.eventsLost);
    if (dropped > 0 || lost > 0) {
      c.framesLost += Math.max(0, dropped);
      c.violate("no-frames-lost", `the guest agent reports ${dropped > 0 ? `${dropped} frame(s) dropped` : ""}${dropped > 0 && lost > 0 ? " and " : ""}${lost > 0 ? `${lost} kernel event(s) lost` : ""}`, { at: e });
    }
  }

  onChannel(e: ModelEvent & { type: "channel" }): void {
    const c = this.c;
    switch (e.kind) {
      case "seq-gap":
        c.ex(this.X_NO_FRAMES_LOST);
        c.framesLost += Math.max(0, e.lost);
        c.violate("no-frames-lost", `${e.lost} telemetry frame(s) lost (seq gap)${e.message ? `: ${e.message}` : ""}`, { at: e });
        return;
      case "corrupt":
      case "oversize":
        c.ex(this.X_NO_FRAMES_LOST);
        c.corrupt++;
        c.violate("no-frames-lost", `${e.kind === "corrupt" ? "corrupt" : "oversize"} telemetry frame, ${e.bytesSkipped} byte(s) skipped${e.message ? `: ${e.message}` : ""}`, { at: e });
        return;
      case "ack-timeout":
        c.ex(this.X_COMMANDS_ACKNOWLEDGED);
        c.violate("commands-acknowledged", `a command was not acknowledged in time${e.message ? `: ${e.message}` : ""}`, { at: e });
        return;
      case "connected":
        if (c.guestFrames === 0 && c.telemetryTimer === null) this.armTelemetry(e);
        return;
      default:
        return;
    }
  }

  armTelemetry(from: At): void {
    const c = this.c;
    c.timers.cancel(c.telemetryTimer);
    c.telemetryDue = from.t + c.deadlines.telemetryNs;
    c.telemetryTimer = c.timers.arm(c.telemetryDue, { k: "telemetry", from });
  }

  noTelemetry(t: number, at: At): void {
    const c = this.c;
    c.telemetryFired = true;
    c.violate("guest-telemetry-present", `no guest telemetry at all within ${fmtDur(c.deadlines.telemetryNs)} of the machine start while ${c.nicsAdded} NIC(s) were added: is the guest agent running and the channel connected?`, { at, tNs: t });
  }

  onHello(): void {
    this.lastDropped = 0;
    this.lastEventsLost = 0;
  }

  onMachine(e: ModelEvent & { type: "machine" }): void {
    const c = this.c;
    if (e.kind === "started" && c.guestFrames === 0) this.armTelemetry(e);
  }

  /** A NIC added after the telemetry deadline passed with none: now it is a verdict. */
  onHostAdd(e: HostAddEvent): void {
    const c = this.c;
    if (c.telemetryArmed && c.guestFrames === 0 && !c.telemetryFired) this.noTelemetry(e.t, e);
  }

  /** The telemetry deadline: no guest frame since the machine started. */
  deadline(tm: Timer<Payload>, p: Payload & { k: "telemetry" }): void {
    const c = this.c;
    c.telemetryTimer = null;
    if (c.guestFrames > 0 || c.telemetryFired) return;
    c.ex(this.X_GUEST_TELEMETRY_PRESENT);
    if (c.nicsAdded > 0) this.noTelemetry(tm.due, p.from);
    else c.telemetryArmed = true;
  }
}
