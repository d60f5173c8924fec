// What a clean run must show, read from the guest frames the harness decoded:
// every hot-added NIC attached once, detached successfully once, freed once,
// in NetBSD's order (the free inside config_detach or deferred past it); every reference released; nothing sleeping in interrupt.

import { plugstorm } from "../../src/gen/plugstorm.js";
import type { Harness } from "./harness.js";

const T = plugstorm.telemetry.v1;
const DK = T.DeviceEvent.Kind;
const RK = T.RefEvent.Kind;
const ENOENT = 2;

export function lifecycleProblems(h: Harness): string[] {
  const problems: string[] = [];
  const added = new Set<string>();
  for (const r of h.records) {
    if (r.action?.kind === plugstorm.trace.v1.HostAction.Kind.ADD_NIC && r.action.nicId) added.add(r.action.nicId);
  }
  const deleted = new Set<string>();
  for (const r of h.records) {
    if (r.qmpEvent?.event === "DEVICE_DELETED") deleted.add((JSON.parse(r.qmpEvent.data ?? "{}") as { device: string }).device);
  }
  const perNic = new Map<string, number[]>();
  const ledger = new Map<string, number>();
  for (const f of h.frames) {
    if (f.panic) problems.push(`panic: ${f.panic.message}`);
    const d = f.device;
    if (d) {
      const serial = d.serial ?? "";
      let seq = perNic.get(serial);
      if (seq === undefined) perNic.set(serial, (seq = []));
      const k = d.kind ?? 0;
      // Encode the outcome of DETACH_END into the sequence: 50 = success, 52 = ENOENT.
      seq.push(k === DK.DETACH_END ? 50 + (d.error ?? 0) : k);
      if ((k === DK.DETACH_BEGIN || (k === DK.DRAIN_BEGIN)) && d.context !== T.ExecContext.EXEC_CONTEXT_THREAD)
        problems.push(`${d.name}: ${DK[k]} outside thread context`);
      if (k === DK.DEACTIVATE && d.context !== T.ExecContext.EXEC_CONTEXT_INTERRUPT) problems.push(`${d.name}: deactivate outside interrupt context`);
    }
    const r = f.ref;
    if (r && r.kind !== RK.ACQUIRE_FAILED) {
      const key = `${r.objectKind}|${r.object}|${r.holder}`;
      ledger.set(key, (ledger.get(key) ?? 0) + (r.kind === RK.ACQUIRE ? 1 : -1));
    }
  }
  for (const nic of added) {
    const seq = perNic.get(nic) ?? [];
    const count = (k: number): number => seq.filter((x) => x === k).length;
    if (count(DK.ATTACH_BEGIN) !== 1 || count(DK.ATTACH_END) !== 1) problems.push(`${nic}: attached ${count(DK.ATTACH_BEGIN)}/${count(DK.ATTACH_END)} times`);
    if (count(50) !== 1) problems.push(`${nic}: detached successfully ${count(50)} times`);
    if (count(DK.FREE) !== 1) problems.push(`${nic}: freed ${count(DK.FREE)} times`);
    const other = seq.filter((x) => x >= 50 && x !== 50 && x !== 50 + ENOENT);
    if (other.length > 0) problems.push(`${nic}: detach errors ${other.map((x) => x - 50).join(",")}`);
    const iA = seq.indexOf(DK.ATTACH_END);
    const iD = seq.indexOf(50);
    const iF = seq.indexOf(DK.FREE);
    const last = seq.length - 1;
    // NetBSD frees inside config_detach (FREE, then DETACH_END(0) last), or
    // after it when another caller's iterator deferred the free (FREE last).
    const freeInside = iF === last - 1 && iD === last;
    const freeAfter = iD < iF && iF === last;
    if (!(iA < iD && iA < iF && (freeInside || freeAfter))) problems.push(`${nic}: lifecycle out of order: ${seq.map((x) => (x >= 50 ? `DETACH_END(${x - 50})` : DK[x])).join(" ")}`);
    if (!deleted.has(nic)) problems.push(`${nic}: no DEVICE_DELETED`);
  }
  for (const nic of perNic.keys()) if (!added.has(nic)) problems.push(`guest reported ${nic}, which the host never added`);
  for (const [key, n] of ledger) if (n !== 0) problems.push(`reference ${key} left at ${n}`);
  return problems;
}
