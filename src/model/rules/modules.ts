// Modules: an unload detaches and frees the instances it lists, or is vetoed,
// in time; an unload racing a removal completes. The rules and their check
// (ModuleMonitor) together; the checker owns the timers and the devices and
// lends them through ModuleHost. sick-case-completes is also judged by the
// checker's detach deadline, for the detach side of the race.
// Tests: test/check/rules.test.ts, point 5 of test/check/netbsd-orders.test.ts.

import type { DeviceState } from "../automata.js";
import type { At, ModuleEvent } from "../events.js";
import { BOTH, fmtDur, rule, type Judge } from "./define.js";

export const MODULE_RULES = [
  rule({
    id: "unload-frees-instances",
    severity: "error",
    side: "guest",
    principle: 4,
    profiles: BOTH,
    needs: ["modules"],
    watches: ["module:unload-end"],
    statement:
      "A module unload ends successfully only after every instance it listed is detached and freed; otherwise it is vetoed. The agent's list is trusted: a built-in module's FINI detaches nothing.",
    basis: "docs/netbsd.md#modules",
  }),
  rule({
    id: "unload-completes",
    severity: "error",
    side: "guest",
    principle: 4,
    profiles: BOTH,
    needs: ["modules"],
    watches: ["deadline:module:unload-begin"],
    statement:
      "A module unload returns (success or veto) within the deadline.",
    basis: "docs/netbsd.md#modules",
    liveness: true,
  }),
  rule({
    id: "sick-case-completes",
    severity: "error",
    side: "guest",
    principle: 5,
    profiles: BOTH,
    needs: ["modules", "detach-phases"],
    watches: ["deadline:module:unload-begin", "deadline:device:detach-begin"],
    statement:
      "When a module unload and a card removal detach the same device, both paths complete within the deadline: one detach wins, the other waits and sees ENOENT.",
    basis: "docs/netbsd.md#config-detach-enter docs/netbsd.md#modules",
    liveness: true,
  }),
] as const;

/** An unload between its UNLOAD_BEGIN and UNLOAD_END. */
export interface PendingUnload<Tm> {
  name: string;
  event: ModuleEvent;
  /** The instances the agent listed: trusted, empty for a built-in module. */
  instances: string[];
  timer: Tm | null;
}

/** What the module rules read and mark on a live device. */
export interface ModuleDev<Tm> {
  name: string;
  state: DeviceState;
  unload: PendingUnload<Tm> | null;
  livenessReported: boolean;
}

export interface ModuleHost<D extends ModuleDev<Tm>, Ctx, Tm> extends Judge<Ctx> {
  device(name: string): D | undefined;
  /** The QEMU id of the NIC the host removed under this device, or "" when it was not removed. */
  removedNic(d: D): string;
  /** A device of this name, already freed, had been removed by the host. */
  removedAfterFree(name: string): boolean;
  /** Adds the event to the device's history. */
  record(d: D, e: ModuleEvent): void;
  holders(d: D): { ids: string[]; text: string };
  ctx(at: At, d: D | null, holders: string[], tNs?: number): Ctx;
  arm(due: number, u: PendingUnload<Tm>): Tm;
  cancel(t: Tm | null): void;
  readonly unloadNs: number;
}

export class ModuleMonitor<D extends ModuleDev<Tm>, Ctx, Tm> {
  private readonly pending = new Map<string, PendingUnload<Tm>>();

  constructor(private readonly host: ModuleHost<D, Ctx, Tm>) {}

  on(e: ModuleEvent): void {
    const h = this.host;
    switch (e.kind) {
      case "load":
      case "unload-wait":
        return;
      case "unload-begin": {
        h.ex("no-sleep-in-interrupt");
        // The agent's list is trusted: an empty one detaches nothing, and a
        // built-in module's FINI is empty whatever is attached (docs/netbsd.md#modules).
        const instances = e.builtin ? [] : e.instances;
        const u: PendingUnload<Tm> = { name: e.name, event: e, instances, timer: null };
        u.timer = h.arm(e.t + h.unloadNs, u);
        const prev = this.pending.get(e.name);
        if (prev) h.cancel(prev.timer);
        this.pending.set(e.name, u);
        for (const n of instances) {
          const d = h.device(n);
          if (d) {
            d.unload = u;
            h.record(d, e);
          }
        }
        return;
      }
      case "unload-end": {
        const u = this.pending.get(e.name);
        if (u === undefined) return;
        this.pending.delete(e.name);
        h.cancel(u.timer);
        h.ex("unload-completes");
        if (u.instances.some((n) => this.removed(n))) h.ex("sick-case-completes");
        h.ex("unload-frees-instances");
        const freeSeen = h.observes("free");
        for (const n of u.instances) {
          const d = h.device(n);
          if (d === undefined || d.unload !== u) continue;
          d.unload = null;
          h.record(d, e);
          if (e.error === 0 && (freeSeen || d.state !== "detached")) {
            const held = h.holders(d);
            h.violate("unload-frees-instances", `module ${e.name} unloaded while its instance ${d.name} is ${d.state}${held.text ? `; held: ${held.text}` : ""}`, h.ctx(e, d, held.ids));
          }
        }
        return;
      }
    }
  }

  /** The unload's deadline passed and the checker can judge it (the guest was alive and reporting). */
  deadline(u: PendingUnload<Tm>, due: number): void {
    const h = this.host;
    if (this.pending.get(u.name) !== u) return;
    let racing: D | undefined;
    for (const n of u.instances) {
      const d = h.device(n);
      if (d !== undefined && h.removedNic(d) !== "") {
        racing = d;
        break;
      }
    }
    const rule = racing ? "sick-case-completes" : "unload-completes";
    if (racing?.livenessReported) return;
    const held = racing ? h.holders(racing) : { ids: [], text: "" };
    h.violate(rule, `module ${u.name} unload did not return within ${fmtDur(h.unloadNs)}${racing ? ` while ${racing.name} (${h.removedNic(racing)}) was removed` : ""}${held.text ? `; held: ${held.text}` : ""}`, h.ctx(u.event, racing ?? null, held.ids, due));
    if (racing) racing.livenessReported = true;
  }

  private removed(name: string): boolean {
    const d = this.host.device(name);
    return d !== undefined ? this.host.removedNic(d) !== "" : this.host.removedAfterFree(name);
  }
}
