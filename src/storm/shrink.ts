// Shrinking: a storm that broke a rule on the sim machine is cut down to a
// minimal explicit step list that still breaks the same rule. A greedy search
// (take the first smaller candidate that still fails, shrink again from it:
// the walk fast-check's shrinking made); the candidates are ours: whole NIC
// cycles out, then runs of steps, then single steps made simpler (shorter
// sleeps and holds, fewer references).

import { judgeStorm, runStorm, type JudgeOptions, type Judgement, type RunResult } from "./runner.js";
import { FrameMemo } from "../telemetry/index.js";
import { Candidates, StepTable, type Listed } from "./candidates.js";
import { countAdds } from "./schedule.js";
import type { Step, StormSpec } from "./spec.js";
import { validateStorm } from "./validate.js";
import { isRuleId } from "../model/index.js";
import { specToInput, stormToYaml } from "./write.js";

export class ShrinkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShrinkError";
  }
}

export interface ShrinkOptions {
  /**
   * The rule the minimal storm must still break; default the first rule the
   * storm breaks. A rule that breaks only after another (a consequence of
   * it, docs/cascades.md) is shrunk too: its runs go on past other rules'
   * violations, and so does the minimal storm (stopOnFirstViolation false).
   */
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
  /**
   * The caller's signal ended the search before it had tried every cut:
   * steps (and the storm, its YAML) are the smallest failing storm found by
   * then, smaller than the original but perhaps not minimal.
   */
  interrupted: boolean;
  /** The run of the minimal storm. */
  final: RunResult;
  /** Set when the rule broke only after another's violation: that first rule (the storm as given). */
  after?: string;
  /** Set when the rule's first violation in the minimal storm is a consequence (docs/cascades.md): its cause's rule. */
  consequenceOf?: string;
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

/** Smaller or simpler step lists than `steps`, biggest cuts first (Candidates, one at a time). */
export function* candidates(steps: readonly Step[]): Generator<Step[]> {
  const table = new StepTable();
  const cands = new Candidates(table.list(steps.slice()), table);
  for (let c = cands.next(); c !== undefined; c = cands.next()) yield c.steps;
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
  const table = new StepTable();
  await walk(table.list(steps), table, (c) => fails(c.steps), NEVER);
}

const NEVER = (): boolean => false;

/**
 * searchSmallest over lists as the search holds them (their keys made with
 * the candidates). `over` says the search is over: every later judgement
 * would be false (a shrink out of runs or interrupted), so the candidates
 * left are not made.
 */
async function walk(start: Listed, table: StepTable, fails: (c: Listed) => Promise<boolean>, over: () => boolean): Promise<void> {
  if (!(await fails(start))) return;
  for (let current = start; !over(); ) {
    // Not for-of: no iterator to close when the loop leaves early.
    const cands = new Candidates(current, table);
    let next: Listed | undefined;
    for (let c = cands.next(); c !== undefined; c = cands.next()) {
      if (await fails(c)) {
        next = c;
        break;
      }
      if (over()) return;
    }
    if (next === undefined) return;
    current = next;
  }
}

const TRUE = Promise.resolve(true);
const FALSE = Promise.resolve(false);

/** stopOnFirst false: the storm goes on past its first violation (a rule sought that breaks after another). */
function explicitSpec(spec: StormSpec, steps: Step[], seed: number, stopOnFirst: boolean): StormSpec {
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
  return stormWith(spec, schedule, undefined, stopOnFirst);
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
 * violation unless told not to: the storm a shrink's run is given. Written out field by field,
 * not spread: V8 gives an object spread's copy a map of its own (a clone with
 * no place in the map tree), and a new one whenever the spread's cache loses
 * it, so every run's code that had been optimised for the last one (the
 * steps, the schedule, the pacing, all reading the storm) was thrown away and
 * compiled again, shrink after shrink. A literal's map is its allocation
 * site's, the same for every run. The fields keep the validated storm's order
 * (validateStorm's), with surprise and faults only when present.
 */
function stormWith(spec: StormSpec, schedule: StormSpec["schedule"], faults: StormSpec["faults"], stopOnFirst: boolean): StormSpec {
  const { surprise } = spec;
  if (surprise === undefined && faults === undefined) {
    return { name: spec.name, description: spec.description, machine: spec.machine, nics: spec.nics, schedule, holders: spec.holders, traffic: spec.traffic, detach: spec.detach, unload: spec.unload, sick: spec.sick, deadlines: spec.deadlines, model: spec.model, stopOnFirstViolation: stopOnFirst };
  }
  if (faults === undefined) {
    return { name: spec.name, description: spec.description, machine: spec.machine, nics: spec.nics, schedule, holders: spec.holders, traffic: spec.traffic, detach: spec.detach, unload: spec.unload, sick: spec.sick, surprise, deadlines: spec.deadlines, model: spec.model, stopOnFirstViolation: stopOnFirst };
  }
  if (surprise === undefined) {
    return { name: spec.name, description: spec.description, machine: spec.machine, nics: spec.nics, schedule, holders: spec.holders, traffic: spec.traffic, detach: spec.detach, unload: spec.unload, sick: spec.sick, faults, deadlines: spec.deadlines, model: spec.model, stopOnFirstViolation: stopOnFirst };
  }
  return { name: spec.name, description: spec.description, machine: spec.machine, nics: spec.nics, schedule, holders: spec.holders, traffic: spec.traffic, detach: spec.detach, unload: spec.unload, sick: spec.sick, surprise, faults, deadlines: spec.deadlines, model: spec.model, stopOnFirstViolation: stopOnFirst };
}

/** Whether a judged run was stopped from outside (Ctrl-C, a signal, a time limit): its verdicts say nothing about the storm. */
function stoppedShort(r: Judgement): boolean {
  return r.stop.kind === "interrupted" || r.stop.kind === "signal" || r.stop.kind === "time-limit";
}

/** Runs the storm on the sim machine and cuts it down to a minimal storm breaking the same rule. */
export async function shrinkStorm(spec: StormSpec, opts: ShrinkOptions = {}): Promise<ShrinkResult> {
  if (spec.machine.type !== "sim") {
    throw new ShrinkError(`shrinking runs the storm hundreds of times and needs the deterministic sim machine; this storm runs on ${spec.machine.type}`);
  }
  if (opts.rule !== undefined && !isRuleId(opts.rule)) throw new ShrinkError(`no rule ${JSON.stringify(opts.rule)} (plugstorm model rules lists them)`);
  const seed = opts.seed ?? spec.schedule.seed;
  const firstSpec = stormWith(spec, spec.schedule, spec.faults, true);
  // The search's runs are judged (judgeStorm): the same runs, verdicts and
  // stops as runStorm's, without what only a person or a report reads; the
  // minimal storm is run in full once at the end for the result. The judged
  // runs, all of one seed, share a FrameMemo: each sim agent opens with the
  // same frames and is answered alike (the memo lives as long as this shrink).
  // stopAtRule: set below when the rule sought breaks only after another.
  const judging: JudgeOptions = { seed, signal: opts.signal, frameMemo: new FrameMemo(), stopAtRule: undefined };
  const first = await judgeStorm(firstSpec, judging);
  opts.onRun?.({ spec: firstSpec, seed, failed: first.failedRules.length > 0 });
  if (stoppedShort(first)) throw new ShrinkError("interrupted");
  const rule = opts.rule ?? first.failedRules[0];
  if (rule === undefined) throw new ShrinkError(`the storm breaks no rule with seed ${seed}: nothing to shrink`);
  let runs = 1;
  let judgedRun = first;
  // A rule that breaks after another (often as its consequence) was never
  // reached by a run stopped at the first violation: the runs go on until
  // it breaks. The search then keeps a candidate whatever breaks first in it.
  let after: string | undefined;
  if (!first.failedRules.includes(rule)) {
    if (first.stop.kind !== "violation") throw new ShrinkError(`the storm does not break rule ${rule} with seed ${seed} (it breaks: ${first.failedRules.join(", ") || "nothing"})`);
    judging.stopAtRule = rule;
    judgedRun = await judgeStorm(firstSpec, judging);
    runs++;
    opts.onRun?.({ spec: firstSpec, seed, failed: judgedRun.failedRules.includes(rule) });
    if (stoppedShort(judgedRun)) throw new ShrinkError("interrupted");
    if (!judgedRun.failedRules.includes(rule)) {
      throw new ShrinkError(`the storm does not break rule ${rule} with seed ${seed}, not even after its first violation (it breaks: ${judgedRun.failedRules.join(", ") || "nothing"})`);
    }
    after = first.failedRules[0];
  }
  const stopOnFirst = after === undefined;
  const original = normalizeSteps(judgedRun.executed);
  const maxRuns = opts.maxRuns ?? 2000;
  let best: Step[] = original;

  // The search comes back to the same candidates (after each simpler step it
  // tries the same cuts again: no steps, the plug without the hold...). A run
  // on the sim machine is a function of its steps and seed, so a candidate met
  // before is judged by its first run: it counts as a run (the budget and the
  // report count candidates judged, as before) but is not run again (no onRun).
  // Kept per candidate (by its key, Listed.key: alike for lists alike as
  // JSON, a string V8 hashes natively): whether it broke the rule. No run's result is kept: only the
  // minimal storm's is returned, and it is made by running that storm once
  // more at the end.
  const judged = new Map<string, boolean>();
  const judgedAs = (steps: Step[], hit: boolean): boolean => {
    if (hit && steps.length <= best.length) best = steps;
    opts.onProgress?.({ runs, steps: best.length, originalSteps: original.length });
    return hit;
  };
  const run = async (steps: Step[], key: string): Promise<boolean> => {
    const candidate = explicitSpec(spec, steps, seed, stopOnFirst);
    const r = await judgeStorm(candidate, judging);
    const hit = r.failedRules.includes(rule);
    opts.onRun?.({ spec: candidate, seed, failed: hit });
    // Only a run that ended by itself says what the candidate does.
    if (r.stop.kind === "completed" || r.stop.kind === "violation") judged.set(key, hit);
    return judgedAs(steps, hit);
  };
  // Not an async function: a candidate met before (a third of a shrink's)
  // is answered with a settled promise, no async frame made for it.
  // Once out of runs (or interrupted), every judgement is false and nothing
  // else: the search stops there.
  const over = (): boolean => runs >= maxRuns || opts.signal?.aborted === true;
  const fails = (c: Listed): Promise<boolean> => {
    if (over()) return FALSE;
    runs++;
    const hit = judged.get(c.key);
    if (hit === undefined) return run(c.steps, c.key);
    return judgedAs(c.steps, hit) ? TRUE : FALSE;
  };

  // The original must fail as an explicit list too (it is the starting point).
  const table = new StepTable();
  const start = table.list(original);
  if (!(await fails(start))) {
    throw new ShrinkError(`the executed steps of seed ${seed} did not break ${rule} again when replayed: the run is not reproducible`);
  }
  await walk(start, table, fails, over);
  // The walk ends early only out of runs or by the signal: one that came after its end cut nothing short.
  const interrupted = opts.signal?.aborted === true && runs < maxRuns;
  const minimal = explicitSpec(spec, best, seed, stopOnFirst);
  // The result of the minimal storm: the run that judged it, again, in full
  // (a sim run is a function of its steps and seed). Not the caller's signal:
  // a shrink interrupted still returns the best storm found and its run.
  const final = await runStorm(minimal, after === undefined ? { out: null, seed } : { out: null, seed, stopAtRule: rule });
  opts.onRun?.({ spec: minimal, seed, failed: final.failedRules.includes(rule), final: true });
  const cause = final.verdicts.find((v) => v.failing && v.rule === rule)?.report.cause?.rule;
  const header = [
    `Shrunk by plugstorm from storm "${spec.name}" seed ${seed}:`,
    `${original.length} steps -> ${best.length}, still breaks rule ${rule} (${runs} runs).`,
    ...(interrupted ? ["The search was interrupted: this is the smallest failing storm found so far, perhaps not minimal (shrink it again to go on)."] : []),
    ...(after !== undefined ? [`The storm broke ${after} first: this one runs on past its first violation to reach ${rule}.`] : []),
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
    interrupted,
    final,
    ...(after !== undefined ? { after } : {}),
    ...(cause !== undefined ? { consequenceOf: cause } : {}),
  };
}
