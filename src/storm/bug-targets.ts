// What a sim storm's bug list (machine.bugs, --bug) may say: a bug's target
// must name something the storm will have, and the entries of one bug must
// agree on its chance. The sim itself takes any target: one naming nothing
// only disarms the bug, and the run passed as if the bug had been looked for.

import { KIND_DRIVERS, chanceClash, parseBug, type BugSpec } from "../sim/index.js";
import type { NicKind, StormSpec } from "./spec.js";

/** What a bug's target may name in one storm: its NICs (QEMU ids), their guest devices, its reference holders. */
export interface BugTargets {
  has(name: string): boolean;
  /** Those names, in words, for a message. */
  readonly text: string;
}

/** Names listed in a message at most (the rest as "…"). */
const LISTED = 6;

type TargetStorm = Pick<StormSpec, "nics" | "schedule" | "holders">;

export function bugTargets(storm: TargetStorm): BugTargets {
  return storm.schedule.steps === null ? randomTargets(storm) : explicitTargets(storm.schedule.steps);
}

/**
 * A random schedule names its NICs nic0, nic1, ... one per cycle (schedule.ts),
 * its holders h-<nic>-<kind> (with .0, .1, ... when a hold takes more than one
 * reference, as the agents name them); a device's unit is at most the number
 * of NICs before it.
 */
function randomTargets(storm: TargetStorm): BugTargets {
  // Bounds a storm limited by its duration alone too (validate.ts gives it MAX_CYCLES).
  const cycles = storm.schedule.cycles;
  const drivers = driversOf(storm.nics.mix.map((m) => m.kind));
  // Two holders of one kind share their name: the larger count names them all.
  const holderCounts = new Map<string, number>();
  for (const h of storm.holders) holderCounts.set(h.kind, Math.max(h.count, holderCounts.get(h.kind) ?? 0));
  const range = (prefix: string): string => (cycles === 1 ? `${prefix}0` : `${prefix}0 … ${prefix}${cycles - 1}`);
  const holders = [...holderCounts].flatMap(([kind, count]) => holderIds(`h-nicN-${kind}`, count));
  const parts = [`its NICs (${range("nic")})`];
  if (drivers.size > 0) parts.push(`their devices (${[...drivers].map(range).join(", ")})`);
  if (holders.length > 0) parts.push(`its holders (${listed(holders)})`);
  return {
    has(name) {
      const nic = /^nic(\d+)$/.exec(name);
      if (nic) return Number(nic[1]) < cycles;
      const dev = /^([a-z]+)(\d+)$/.exec(name);
      if (dev && drivers.has(dev[1]!)) return Number(dev[2]) < cycles;
      const holder = /^h-nic(\d+)-([a-z]+)(?:\.(\d+))?$/.exec(name);
      if (!holder || Number(holder[1]) >= cycles) return false;
      const count = holderCounts.get(holder[2]!);
      if (count === undefined) return false;
      return count === 1 ? holder[3] === undefined : holder[3] !== undefined && Number(holder[3]) < count;
    },
    text: words(parts),
  };
}

function explicitTargets(steps: NonNullable<StormSpec["schedule"]["steps"]>): BugTargets {
  const nics = new Set<string>();
  const units = new Map<string, number>();
  const holders = new Set<string>();
  for (const s of steps) {
    if (s.op === "add") {
      nics.add(s.nic);
      const d = driverOf(s.kind);
      if (d !== undefined) units.set(d, (units.get(d) ?? 0) + 1);
    } else if (s.op === "hold") for (const id of holderIds(s.holder, s.count)) holders.add(id);
  }
  const devices = new Set<string>();
  for (const [d, n] of units) for (let i = 0; i < n; i++) devices.add(`${d}${i}`);
  const parts = [`its NICs (${listed(nics) || "none"})`];
  if (devices.size > 0) parts.push(`their devices (${listed(devices)})`);
  if (holders.size > 0) parts.push(`its holders (${listed(holders)})`);
  return { has: (name) => nics.has(name) || devices.has(name) || holders.has(name), text: words(parts) };
}

/** The first LISTED names, then "…" for the rest. */
function listed(names: Iterable<string>): string {
  const all = [...names];
  return all.slice(0, LISTED).join(", ") + (all.length > LISTED ? ", …" : "");
}

/** The holder ids an agent gives a hold of count references: the name alone for one, name.0, name.1, ... for more. */
function holderIds(name: string, count: number): string[] {
  return count === 1 ? [name] : Array.from({ length: count }, (_, i) => `${name}.${i}`);
}

function driverOf(kind: NicKind): string | undefined {
  return (KIND_DRIVERS as Partial<Record<NicKind, string>>)[kind];
}

function driversOf(kinds: readonly NicKind[]): Set<string> {
  const out = new Set<string>();
  for (const k of kinds) {
    const d = driverOf(k);
    if (d !== undefined) out.add(d);
  }
  return out;
}

function words(parts: string[]): string {
  return parts.length === 1 ? parts[0]! : `${parts.slice(0, -1).join(", ")} or ${parts.at(-1)}`;
}

/**
 * Each entry of a sim storm's bug list that cannot be armed as written, by
 * its index, with why: a chance other than an earlier entry's for the same
 * bug, or a target naming nothing in the storm. Entries that do not parse
 * are left out (parseBug's callers say why).
 */
export function bugListIssues(bugs: readonly string[], targets: BugTargets): Array<{ index: number; message: string }> {
  const issues: Array<{ index: number; message: string }> = [];
  const first = new Map<string, BugSpec>();
  bugs.forEach((b, index) => {
    let spec: BugSpec;
    try {
      spec = parseBug(b);
    } catch {
      return;
    }
    const earlier = first.get(spec.name);
    const clash = earlier && chanceClash(spec, earlier);
    if (clash) issues.push({ index, message: clash });
    else if (!earlier) first.set(spec.name, spec);
    if (spec.target !== undefined && !targets.has(spec.target)) {
      issues.push({ index, message: `target "${spec.target}" names nothing in this storm; a target is one of ${targets.text}` });
    }
  });
  return issues;
}
