// Shrinking: a storm that broke a rule on the sim machine is cut down to a
// minimal explicit step list that still breaks the same rule. A greedy search
// (take the first smaller candidate that still fails, shrink again from it:
// the walk fast-check's shrinking made); the candidates are ours: whole NIC
// cycles out, then runs of steps, then single steps made simpler (shorter
// sleeps and holds, fewer references).

import { judgeStorm, runStorm, type JudgeOptions, type RunResult } from "./runner.js";
import { FrameMemo } from "../telemetry/index.js";
import { countAdds } from "./schedule.js";
import type { Step, StormSpec } from "./spec.js";
import { validateStorm } from "./validate.js";
import { specToInput, stormToYaml } from "./write.js";

export class ShrinkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShrinkError";
  }
}

export interface ShrinkOptions {
  /** The rule the minimal storm must still break; default the first rule the storm breaks. */
  rule?: string;
  seed?: number;
  /** Storm runs allowed (default 2000); the best storm found so far is returned when they run out. */
  maxRuns?: number;
  signal?: AbortSignal;
  onProgress?: (p: { runs: number; steps: number; originalSteps: number }) => void;
  /**
   * After each storm run, the storm it ran: the first is the storm as given,
   * the last (final: true) the minimal storm run in full for the result
   * (ShrinkResult.final). Benchmarks replay them. A candidate met again is
   * not run again: runs can exceed the calls.
   */
  onRun?: (run: { spec: StormSpec; seed: number; failed: boolean; final?: boolean }) => void;
}

export interface ShrinkResult {
  rule: string;
  seed: number;
  originalSteps: number;
  steps: Step[];
  /** The minimal storm, validated: run it with runStorm to see the violation. */
  spec: StormSpec;
  /** The same storm as YAML, ready to save. */
  yaml: string;
  runs: number;
  /** The run of the minimal storm. */
  final: RunResult;
}

/** Drops steps about NICs not plugged at that point, so every candidate is a valid storm. */
export function normalizeSteps(steps: readonly Step[]): Step[] {
  const plugged = new Set<string>();
  const out: Step[] = [];
  for (const s of steps) {
    if (s.op === "add") {
      if (plugged.has(s.nic)) continue;
      plugged.add(s.nic);
    } else if ("nic" in s && s.nic !== "") {
      if (!plugged.has(s.nic)) continue;
      if (s.op === "remove" || s.op === "sick") plugged.delete(s.nic);
    }
    out.push(s);
  }
  // Trailing sleeps change nothing but the end time; keep one so liveness deadlines can expire.
  return out;
}

/**
 * Each step's JSON, made once per step object: candidates share most of their
 * step objects with the list they came from, and the search compares and
 * keys the same steps over and over. (Steps are never changed once made.)
 */
const stepJson = new WeakMap<Step, string>();
function jsonOf(s: Step): string {
  let j = stepJson.get(s);
  if (j === undefined) {
    j = JSON.stringify(s);
    stepJson.set(s, j);
  }
  return j;
}

/** A step list's key: its steps' JSON in order, so lists alike as JSON have the same key (no step's JSON holds a raw newline). */
function keyOf(steps: readonly Step[]): string {
  let k = "";
  for (const s of steps) k += jsonOf(s) + "\n";
  return k;
}

function same(a: readonly Step[], b: readonly Step[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const s = a[i]!;
    const t = b[i]!;
    // The same object needs no JSON.
    if (s !== t && jsonOf(s) !== jsonOf(t)) return false;
  }
  return true;
}

/** Candidates already given, of the first SEEN_KEPT: a candidate like one of them is not given again. */
const SEEN_KEPT = 64;

/**
 * Whether c is a candidate not given yet (unlike the list it came from and the
 * candidates kept in seen), keeping it if there is room. Loops, not closures
 * over the generator's state: a shrink makes a generator for every list it
 * moves to, and their closures were most of what the search allocated.
 */
function fresh(c: Step[], steps: readonly Step[], seen: Step[][]): boolean {
  if (same(c, steps)) return false;
  for (let i = 0; i < seen.length; i++) if (same(seen[i]!, c)) return false;
  if (seen.length < SEEN_KEPT) seen.push(c);
  return true;
}

/** The NICs the list adds, each once, in the order first added. */
function nicsAdded(steps: readonly Step[]): string[] {
  const nics: string[] = [];
  const seen = new Set<string>();
  for (const s of steps) {
    if (s.op !== "add" || seen.has(s.nic)) continue;
    seen.add(s.nic);
    nics.push(s.nic);
  }
  return nics;
}

/** The steps about none of the NICs in drop (drop's members from..to of nics). */
function withoutNics(steps: readonly Step[], nics: readonly string[], from: number, to: number): Step[] {
  const drop = new Set<string>();
  for (let i = from; i < to && i < nics.length; i++) drop.add(nics[i]!);
  const out: Step[] = [];
  for (const s of steps) if (!("nic" in s && drop.has(s.nic))) out.push(s);
  return out;
}

/** The steps without those at from..to. */
function withoutRun(steps: readonly Step[], from: number, to: number): Step[] {
  const out: Step[] = [];
  for (let i = 0; i < steps.length; i++) if (i < from || i >= to) out.push(steps[i]!);
  return out;
}

/** Smaller or simpler step lists than `steps`, biggest cuts first. */
export function* candidates(steps: readonly Step[]): Generator<Step[]> {
  const seen: Step[][] = [];
  // Whole NIC cycles, in order.
  const nics = nicsAdded(steps);
  for (let size = Math.max(1, Math.floor(nics.length / 2)); size >= 1; size = Math.floor(size / 2)) {
    for (let i = 0; i < nics.length; i += size) {
      const c = normalizeSteps(withoutNics(steps, nics, i, i + size));
      if (fresh(c, steps, seen)) yield c;
    }
    if (size === 1) break;
  }
  // Runs of steps (ddmin-style halving).
  for (let size = Math.max(1, Math.floor(steps.length / 2)); size >= 1; size = Math.floor(size / 2)) {
    for (let i = 0; i < steps.length; i += size) {
      const c = normalizeSteps(withoutRun(steps, i, i + size));
      if (fresh(c, steps, seen)) yield c;
    }
    if (size === 1) break;
  }
  // Simpler single steps.
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    const variants: Step[] = [];
    // Written out as the schedule and validateStorm write these steps (same
    // fields, same order), not spread: a spread's copy has a map of its own,
    // and the step code optimised for the storm's steps deopted on it (see
    // stormWith).
    if (s.op === "sleep" && s.ns > 1000) variants.push({ op: "sleep", ns: Math.max(1000, Math.round(s.ns / 2000) * 1000) });
    if (s.op === "hold" && s.count > 1) variants.push({ op: "hold", nic: s.nic, kind: s.kind, count: 1, forNs: s.forNs, holder: s.holder });
    if (s.op === "hold" && s.forNs > 1000) variants.push({ op: "hold", nic: s.nic, kind: s.kind, count: s.count, forNs: Math.max(1000, Math.round(s.forNs / 2000) * 1000), holder: s.holder });
    if (s.op === "sick" && s.delayNs > 0) variants.push({ op: "sick", nic: s.nic, module: s.module, delayNs: 0 });
    if (s.op === "sick") variants.push({ op: "remove", nic: s.nic });
    if (s.op === "detach" && s.force) variants.push({ op: "detach", nic: s.nic, force: false });
    // A plug with several device-side faults: each one left out in turn.
    if (s.op === "add" && s.faults !== undefined) {
      for (let j = 0; j < s.faults.length; j++) {
        const rest = s.faults.filter((_, k) => k !== j);
        const { faults: _all, ...plain } = s;
        variants.push(rest.length > 0 ? { ...plain, faults: rest } : plain);
      }
    }
    if (s.op === "device-fault" && s.fault.kind !== "malformed" && s.fault.kind !== "disconnect-after-control" && (s.fault.count ?? Infinity) > 1) {
      variants.push({ ...s, fault: { ...s.fault, count: 1 } });
    }
    for (const v of variants) {
      const c = steps.slice();
      c[i] = v;
      if (fresh(c, steps, seen)) yield c;
    }
  }
}

/**
 * Walks candidates() from steps, always moving to the first candidate that
 * still fails, until none does; `fails` keeps whatever bookkeeping it needs
 * (the best list found). The search itself knows nothing of machines. It is
 * the walk fast-check's shrinking made over our candidates (the start judged
 * first, then each list's candidates in turn, made lazily), written out: its
 * property and stream machinery cost more per candidate than judging a short
 * candidate adds to its run. Nothing in it is random.
 */
export async function searchSmallest(steps: Step[], fails: (steps: Step[]) => Promise<boolean>): Promise<void> {
  if (!(await fails(steps))) return;
  for (let current = steps; ; ) {
    let next: Step[] | undefined;
    for (const c of candidates(current)) {
      if (await fails(c)) {
        next = c;
        break;
      }
    }
    if (next === undefined) return;
    current = next;
  }
}

const TRUE = Promise.resolve(true);
const FALSE = Promise.resolve(false);

function explicitSpec(spec: StormSpec, steps: Step[], seed: number): StormSpec {
  const s = spec.schedule;
  const schedule: StormSpec["schedule"] = {
    cycles: countAdds(steps),
    durationNs: 0,
    rate: s.rate,
    maxInFlight: s.maxInFlight,
    dwell: s.dwell,
    seed,
    steps,
  };
  // Drawn faults are in the steps now (device-fault steps, add.faults).
  return stormWith(spec, schedule, undefined);
}

/**
 * Every field stormWith writes out. A field added to StormSpec and not
 * written there would be dropped from every shrink's storms without a word:
 * this line stops the build until it is.
 */
type StormWithFields = "name" | "description" | "machine" | "nics" | "schedule" | "holders" | "traffic" | "detach" | "unload" | "sick" | "surprise" | "faults" | "deadlines" | "model" | "stopOnFirstViolation";
const stormWithWritesEveryField: [Exclude<keyof StormSpec, StormWithFields>] extends [never] ? true : never = true;
void stormWithWritesEveryField;

/**
 * The storm with another schedule and faults, stopping at its first
 * violation: the storm a shrink's run is given. Written out field by field,
 * not spread: V8 gives an object spread's copy a map of its own (a clone with
 * no place in the map tree), and a new one whenever the spread's cache loses
 * it, so every run's code that had been optimised for the last one (the
 * steps, the schedule, the pacing, all reading the storm) was thrown away and
 * compiled again, shrink after shrink. A literal's map is its allocation
 * site's, the same for every run. The fields keep the validated storm's order
 * (validateStorm's), with surprise and faults only when present.
 */
function stormWith(spec: StormSpec, schedule: StormSpec["schedule"], faults: StormSpec["faults"]): StormSpec {
  const { surprise } = spec;
  if (surprise === undefined && faults === undefined) {
    return { name: spec.name, description: spec.description, machine: spec.machine, nics: spec.nics, schedule, holders: spec.holders, traffic: spec.traffic, detach: spec.detach, unload: spec.unload, sick: spec.sick, deadlines: spec.deadlines, model: spec.model, stopOnFirstViolation: true };
  }
  if (faults === undefined) {
    return { name: spec.name, description: spec.description, machine: spec.machine, nics: spec.nics, schedule, holders: spec.holders, traffic: spec.traffic, detach: spec.detach, unload: spec.unload, sick: spec.sick, surprise, deadlines: spec.deadlines, model: spec.model, stopOnFirstViolation: true };
  }
  if (surprise === undefined) {
    return { name: spec.name, description: spec.description, machine: spec.machine, nics: spec.nics, schedule, holders: spec.holders, traffic: spec.traffic, detach: spec.detach, unload: spec.unload, sick: spec.sick, faults, deadlines: spec.deadlines, model: spec.model, stopOnFirstViolation: true };
  }
  return { name: spec.name, description: spec.description, machine: spec.machine, nics: spec.nics, schedule, holders: spec.holders, traffic: spec.traffic, detach: spec.detach, unload: spec.unload, sick: spec.sick, surprise, faults, deadlines: spec.deadlines, model: spec.model, stopOnFirstViolation: true };
}

/** Runs the storm on the sim machine and cuts it down to a minimal storm breaking the same rule. */
export async function shrinkStorm(spec: StormSpec, opts: ShrinkOptions = {}): Promise<ShrinkResult> {
  if (spec.machine.type !== "sim") {
    throw new ShrinkError(`shrinking runs the storm hundreds of times and needs the deterministic sim machine; this storm runs on ${spec.machine.type}`);
  }
  const seed = opts.seed ?? spec.schedule.seed;
  const firstSpec = stormWith(spec, spec.schedule, spec.faults);
  // The search's runs are judged (judgeStorm): the same runs, verdicts and
  // stops as runStorm's, without what only a person or a report reads; the
  // minimal storm is run in full once at the end for the result. The judged
  // runs, all of one seed, share a FrameMemo: each sim agent opens with the
  // same frames and is answered alike (the memo lives as long as this shrink).
  const judging: JudgeOptions = { seed, signal: opts.signal, frameMemo: new FrameMemo() };
  const first = await judgeStorm(firstSpec, judging);
  opts.onRun?.({ spec: firstSpec, seed, failed: first.failedRules.length > 0 });
  if (first.stop.kind === "interrupted" || first.stop.kind === "signal" || first.stop.kind === "time-limit") throw new ShrinkError("interrupted");
  const rule = opts.rule ?? first.failedRules[0];
  if (rule === undefined) throw new ShrinkError(`the storm breaks no rule with seed ${seed}: nothing to shrink`);
  if (!first.failedRules.includes(rule)) {
    throw new ShrinkError(`the storm does not break rule ${rule} with seed ${seed} (it breaks: ${first.failedRules.join(", ") || "nothing"})`);
  }
  const original = normalizeSteps(first.executed);
  const maxRuns = opts.maxRuns ?? 2000;
  let runs = 1;
  let best: Step[] = original;

  // The search comes back to the same candidates (after each simpler step it
  // tries the same cuts again: no steps, the plug without the hold...). A run
  // on the sim machine is a function of its steps and seed, so a candidate met
  // before is judged by its first run: it counts as a run (the budget and the
  // report count candidates judged, as before) but is not run again (no onRun).
  // Kept per candidate (by its steps' JSON, keyOf, a string V8 hashes
  // natively): whether it broke the rule. No run's result is kept: only the
  // minimal storm's is returned, and it is made by running that storm once
  // more at the end.
  const judged = new Map<string, boolean>();
  const judgedAs = (steps: Step[], hit: boolean): boolean => {
    if (hit && steps.length <= best.length) best = steps;
    opts.onProgress?.({ runs, steps: best.length, originalSteps: original.length });
    return hit;
  };
  const run = async (steps: Step[], key: string): Promise<boolean> => {
    const candidate = explicitSpec(spec, steps, seed);
    const r = await judgeStorm(candidate, judging);
    const hit = r.failedRules.includes(rule);
    opts.onRun?.({ spec: candidate, seed, failed: hit });
    // Only a run that ended by itself says what the candidate does.
    if (r.stop.kind === "completed" || r.stop.kind === "violation") judged.set(key, hit);
    return judgedAs(steps, hit);
  };
  // Not an async function: a candidate met before (a third of a shrink's)
  // is answered with a settled promise, no async frame made for it.
  const fails = (steps: Step[]): Promise<boolean> => {
    if (runs >= maxRuns || opts.signal?.aborted) return FALSE;
    runs++;
    const key = keyOf(steps);
    const hit = judged.get(key);
    if (hit === undefined) return run(steps, key);
    return judgedAs(steps, hit) ? TRUE : FALSE;
  };

  // The original must fail as an explicit list too (it is the starting point).
  if (!(await fails(original))) {
    throw new ShrinkError(`the executed steps of seed ${seed} did not break ${rule} again when replayed: the run is not reproducible`);
  }
  await searchSmallest(original, fails);
  const minimal = explicitSpec(spec, best, seed);
  // The result of the minimal storm: the run that judged it, again, in full
  // (a sim run is a function of its steps and seed). Not the caller's signal:
  // a shrink interrupted still returns the best storm found and its run.
  const final = await runStorm(minimal, { out: null, seed });
  opts.onRun?.({ spec: minimal, seed, failed: final.failedRules.includes(rule), final: true });
  const header = [
    `Shrunk by plugstorm from storm "${spec.name}" seed ${seed}:`,
    `${original.length} steps -> ${best.length}, still breaks rule ${rule} (${runs} runs).`,
  ].join("\n");
  const input = specToInput(minimal, best, `${spec.name}-shrunk`);
  const yaml = stormToYaml(input, header);
  let validated: StormSpec | undefined;
  return {
    rule,
    seed,
    originalSteps: original.length,
    steps: best,
    // The input the YAML was written from, validated as parseStorm would the
    // YAML (the writer's tests keep the two alike) without reading the YAML
    // back. Validated when first read: no caller in plugstorm reads it (the
    // CLI and campaigns write the YAML), and validation was a few % of a short
    // shrink. An own enumerable getter, so a spread or structured clone of
    // the result still carries it.
    get spec(): StormSpec {
      return (validated ??= validateStorm(input));
    },
    yaml,
    runs,
    final,
  };
}
