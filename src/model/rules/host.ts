// Host side: QEMU accepts and finalises commands and does not exit on its
// own; the profile matches the guest. The rules, then their check
// (HostMonitor: host results, DEVICE_DELETED, machine events, the Hello's
// OS, the finalise deadline).
// Tests: test/check/rules.test.ts (a breaking and a keeping trace per rule),
// test/check/behaviour.test.ts.

import type { Core, HostActionRef } from "../core.js";
import type { ModelEvent } from "../events.js";
import type { Payload } from "../state.js";
import type { Timer } from "../timers.js";
import { BOTH, fmtDur, rule } from "./define.js";

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

/** A host action as verdicts name it ("add nic3"). */
function actionText(a: HostActionRef | undefined, actionId: number): string {
  return a ? `${a.action}${a.nicId ? ` ${a.nicId}` : ""}` : `action ${actionId}`;
}

/** Judges what the host and QEMU report. */
export class HostMonitor {
  private readonly X_HOST_ACTION_COMPLETES: number;
  private readonly X_HOST_REMOVE_FINALISED: number;
  private readonly X_MACHINE_DOES_NOT_CRASH: number;
  private readonly X_MACHINE_RESPONSIVE: number;
  private readonly X_PROFILE_MATCHES_GUEST: number;
  private readonly X_QEMU_ACCEPTS_COMMAND: number;

  constructor(private readonly c: Core) {
    this.X_HOST_ACTION_COMPLETES = c.ix("host-action-completes");
    this.X_HOST_REMOVE_FINALISED = c.ix("host-remove-finalised");
    this.X_MACHINE_DOES_NOT_CRASH = c.ix("machine-does-not-crash");
    this.X_MACHINE_RESPONSIVE = c.ix("machine-responsive");
    this.X_PROFILE_MATCHES_GUEST = c.ix("profile-matches-guest");
    this.X_QEMU_ACCEPTS_COMMAND = c.ix("qemu-accepts-command");
  }

  onHostResult(e: ModelEvent & { type: "host-result" }): void {
    const c = this.c;
    const a = c.actions.take(e.actionId);
    const nic = a?.nic ?? (e.nicId ? c.nics.get(e.nicId) ?? null : null);
    switch (e.outcome) {
      case "refused": {
        const what = actionText(a, e.actionId);
        c.ex(this.X_QEMU_ACCEPTS_COMMAND);
        c.violate("qemu-accepts-command", `QEMU refused ${what}: ${e.message}`, { at: e, nic, nicId: e.nicId || a?.nicId || "" });
        if (nic && a?.action === "add") {
          c.timers.cancel(nic.attachTimer);
          nic.attachTimer = null;
          if (!nic.everLinked && c.nics.get(nic.id) === nic) c.nics.delete(nic.id);
        }
        if (nic && a?.action === "remove") {
          c.timers.cancel(nic.removeTimer);
          c.timers.cancel(nic.finaliseTimer);
          nic.removeEvent = null;
        }
        return;
      }
      case "removal-pending":
      case "never-finalised": {
        if (nic && (nic.finaliseReported || nic.deleted)) return;
        const what = actionText(a, e.actionId);
        c.ex(this.X_HOST_REMOVE_FINALISED);
        c.violate("host-remove-finalised", `${what}: ${e.outcome === "never-finalised" ? "the machine stopped before the removal was finalised" : "no DEVICE_DELETED within the deadline"}${e.message ? ` (${e.message})` : ""}`, { at: e, nic, nicId: e.nicId || a?.nicId || "" });
        if (nic) {
          nic.finaliseReported = true;
          c.timers.cancel(nic.finaliseTimer);
        }
        return;
      }
      case "failed":
        c.ex(this.X_HOST_ACTION_COMPLETES);
        c.violate("host-action-completes", `${actionText(a, e.actionId)} failed: ${e.message}`, { at: e, nic, nicId: e.nicId || a?.nicId || "" });
        return;
      default:
        c.ex(this.X_QEMU_ACCEPTS_COMMAND);
        c.ex(this.X_HOST_ACTION_COMPLETES);
        return;
    }
  }

  onDeviceDeleted(e: ModelEvent & { type: "qmp-device-deleted" }): void {
    const c = this.c;
    const nic = c.nics.get(e.nicId);
    if (nic === undefined) return;
    nic.deleted = true;
    c.ex(this.X_HOST_REMOVE_FINALISED);
    c.timers.cancel(nic.finaliseTimer);
    nic.finaliseTimer = null;
    c.maybeDropNic(nic);
  }

  onMachine(e: ModelEvent & { type: "machine" }): void {
    const c = this.c;
    c.machineSeen = true;
    if (e.kind === "started") {
      c.guestDeadAt = -1;
      return;
    }
    if (e.kind === "unresponsive" || e.kind === "responsive") {
      // The host could not reach the machine: its verdict, and no deadline runs meanwhile.
      c.ex(this.X_MACHINE_RESPONSIVE);
      if (e.kind === "unresponsive" && c.unreachableSince < 0) {
        c.unreachableSince = e.t;
        c.violate("machine-responsive", `the machine stopped answering the host's QMP heartbeat${e.text ? `: ${e.text}` : ""}; deadlines are suspended until it answers`, { at: e });
      } else if (e.kind === "responsive" && c.unreachableSince >= 0) {
        c.timers.shift(e.t - c.unreachableSince);
        c.unreachableSince = -1;
      }
      return;
    }
    if (e.kind === "exited") {
      c.ex(this.X_MACHINE_DOES_NOT_CRASH);
      c.violate("machine-does-not-crash", `the machine exited on its own (${e.signal ? `signal ${e.signal}` : `code ${e.exitCode}`})${e.text ? `: ${e.text}` : ""}`, { at: e });
    }
    if (c.guestDeadAt < 0) c.guestDeadAt = e.t;
  }

  onHello(e: ModelEvent & { type: "hello" }): void {
    const c = this.c;
    c.ex(this.X_PROFILE_MATCHES_GUEST);
    const expected = c.profile === "netbsd" ? ["netbsd", "sim-netbsd"] : ["linux"];
    if (e.os !== "unknown" && !expected.includes(e.os))
      c.violate("profile-matches-guest", `the guest says it runs ${e.os} but the run is checked with the ${c.profile} profile`, { at: e });
  }

  /** The finalise deadline: device_del without DEVICE_DELETED. */
  finaliseDeadline(tm: Timer<Payload>, p: Payload & { k: "finalise" }): void {
    const c = this.c;
    const nic = p.nic;
    nic.finaliseTimer = null;
    if (nic.deleted || nic.finaliseReported || nic.removeEvent === null) return;
    nic.finaliseReported = true;
    c.ex(this.X_HOST_REMOVE_FINALISED);
    c.violate("host-remove-finalised", `device_del ${nic.id}: no DEVICE_DELETED within ${fmtDur(c.deadlines.finaliseNs)}`, { at: nic.removeEvent, nic, tNs: tm.due });
    c.maybeDropNic(nic);
  }
}
