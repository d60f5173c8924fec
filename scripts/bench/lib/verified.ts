// Verified hot-plug cycles read back from a run's trace: a cycle counts only
// when the guest's detach and free of that NIC were seen. Shared by the
// linux-guest and lanes benchmarks.
import { readFileSync } from "node:fs";
import { plugstorm } from "../../../src/gen/plugstorm.js";
import type { RunResult } from "../../../src/storm/index.js";
import { parseTrace } from "../../../src/trace/index.js";

const ActKind = plugstorm.trace.v1.HostAction.Kind;
const DevKind = plugstorm.telemetry.v1.DeviceEvent.Kind;

export interface Verified {
  /** Cycles whose NIC the guest was seen to detach and free. */
  verified: number;
  /** From the first host add to the last guest free: the hot-plug itself, not the boot before it. */
  seconds: number;
  /** Host add -> guest ATTACH_END, per NIC (trace time, ns). */
  attachNs: number[];
  /** Host remove -> guest FREE, per verified cycle (trace time, ns). */
  freeNs: number[];
  violations: number;
}

export function verifiedCycles(r: RunResult): Verified {
  const recs = parseTrace(readFileSync(r.traceFile!), r.traceFile!).records;
  // One pass, keyed by NIC serial and guest device name, so long storms stay linear.
  const addAt = new Map<string, number>();
  const removeAt = new Map<string, number>();
  const detaching = new Map<string, number>();
  const attachNs: number[] = [];
  const freeNs: number[] = [];
  let verified = 0;
  let firstAdd = NaN;
  let lastFree = NaN;
  for (const x of recs) {
    const t = Number(x.tNs);
    const a = x.action;
    if (a?.kind === ActKind.ADD_NIC && a.nicId) {
      addAt.set(a.nicId, t);
      if (Number.isNaN(firstAdd)) firstAdd = t;
    }
    else if (a?.kind === ActKind.REMOVE_NIC && a.nicId) removeAt.set(a.nicId, t);
    const d = x.guest?.device;
    if (!d) continue;
    if (d.kind === DevKind.ATTACH_END && d.serial && addAt.has(d.serial)) {
      attachNs.push(t - addAt.get(d.serial)!);
      addAt.delete(d.serial);
    } else if (d.kind === DevKind.DETACH_BEGIN && d.serial && removeAt.has(d.serial) && d.name) {
      detaching.set(d.name, removeAt.get(d.serial)!);
      removeAt.delete(d.serial);
    } else if (d.kind === DevKind.FREE && d.name && detaching.has(d.name)) {
      verified++;
      lastFree = t;
      freeNs.push(t - detaching.get(d.name)!);
      detaching.delete(d.name);
    }
  }
  const seconds = verified > 0 ? (lastFree - firstAdd) / 1e9 : r.durationMs / 1000;
  return { verified, seconds, attachNs, freeNs, violations: r.verdicts.filter((v) => v.failing).length };
}

/** Nearest-rank percentile of unsorted ns samples, printed in ms. */
export function pctMs(xs: readonly number[], p: number): string {
  if (xs.length === 0) return "-";
  const s = [...xs].sort((a, b) => a - b);
  return `${(s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! / 1e6).toFixed(0)}ms`;
}
