// The checker as the runner uses it: records in (with their trace index),
// verdicts out, each verdict ready as a trace record, a report entry and a
// line for people.

import { plugstorm } from "../gen/plugstorm.js";
import { TraceChecker, formatVerdict, toReportVerdict, verdictToRecord } from "../check/index.js";
import { DEADLINE_FIELDS, RULES, type Deadlines, type Verdict } from "../model/index.js";
import type { ReportVerdict } from "../report/index.js";
import type { StormSpec } from "./spec.js";


export interface StormVerdict {
  rule: string;
  side: "host" | "guest" | "channel";
  severity: "warning" | "error" | "fatal";
  device: string;
  nicId: string;
  holders: string[];
  message: string;
  recordIndex: number;
  tNs: number;
  /** Errors and fatal verdicts fail a run; warnings do not. */
  failing: boolean;
  /** One line for people. */
  text: string;
  /** As a trace record body. */
  record: plugstorm.trace.v1.IVerdict;
  /** As src/report takes it. */
  report: ReportVerdict;
}

/** A storm's deadlines (ms per phase) as the model's (ns per field). */
export function modelDeadlines(d: StormSpec["deadlines"]): Deadlines {
  return modelDeadlinesFromMs(d) as Deadlines;
}

/** Some deadlines in ms per phase as the model's partial deadlines (the model's defaults fill the rest). */
export function modelDeadlinesFromMs(ms: Partial<Record<keyof typeof DEADLINE_FIELDS, number>>): Partial<Deadlines> {
  const out: Partial<Deadlines> = {};
  for (const [phase, v] of Object.entries(ms) as [keyof typeof DEADLINE_FIELDS, number | undefined][]) {
    if (v !== undefined) out[DEADLINE_FIELDS[phase]] = v * 1e6;
  }
  return out;
}

export function toStormVerdict(v: Verdict): StormVerdict {
  return stormVerdict(v, [...v.holders], formatVerdict(v), verdictToRecord(v), toReportVerdict(v));
}

/**
 * A verdict as a judged run keeps it: what the run's stop and failed rules
 * depend on, the fields only people and reports read left empty (its trace
 * record names the rule: a judged run writes no trace).
 */
function toJudgedVerdict(v: Verdict): StormVerdict {
  return stormVerdict(v, v.holders, "", { rule: v.rule }, { rule: v.rule, message: v.message });
}

function stormVerdict(v: Verdict, holders: string[], text: string, record: plugstorm.trace.v1.IVerdict, report: ReportVerdict): StormVerdict {
  return {
    rule: v.rule,
    side: v.side,
    severity: v.severity,
    device: v.device,
    nicId: v.nicId,
    holders,
    message: v.message,
    recordIndex: v.recordIndex,
    tNs: v.tNs,
    failing: v.severity !== "warning",
    text,
    record,
    report,
  };
}

export class LiveChecker {
  private readonly checker: TraceChecker;
  private readonly model: StormSpec["model"];
  private atFinish: Verdict[] | null = null;
  private closed = false;
  private summarised: { summary: unknown } | null = null;

  /**
   * lean: a judged run's checker (the shrinker's): its verdicts carry no
   * history, message, text or report entry (nothing shows them; the run is
   * judged by their rules and severities alone), and it keeps no latencies
   * (nothing reads a judged run's summary).
   */
  constructor(spec: StormSpec, lean = false) {
    this.checker = new TraceChecker({
      profile: spec.model,
      deadlines: deadlinesOf(spec.deadlines),
      onVerdict: (v) => this.atFinish?.push(v),
      histories: !lean,
      causes: !lean,
      latencies: !lean,
      texts: !lean,
    });
    this.model = spec.model;
    this.convert = lean ? toJudgedVerdict : toStormVerdict;
  }

  private readonly convert: (v: Verdict) => StormVerdict;

  /** The rules this run's model profile checks (for its report): a copy made when asked, as a shrink's runs never ask. */
  get rules(): string[] {
    return [...rulesOf(this.model)];
  }

  push(rec: plugstorm.trace.v1.IRecord, index: number): StormVerdict[] {
    const out = this.checker.push(rec, index);
    return out.length === 0 ? NO_VERDICTS : convertAll(out, this.convert);
  }

  /** Judges the deadlines due by endNs; returns only the verdicts that judging gave. */
  finish(endNs: number): StormVerdict[] {
    this.atFinish = [];
    this.checker.close(endNs);
    this.closed = true;
    const fresh = this.atFinish;
    this.atFinish = null;
    return fresh.length === 0 ? NO_VERDICTS : convertAll(fresh, this.convert);
  }

  /**
   * The checker's summary once finish() has run (null before): made when first
   * read, as a shrink's runs never read theirs. The check is over by then, so
   * it is the summary finish() would have made.
   */
  get summary(): unknown {
    if (!this.closed) return null;
    return (this.summarised ??= { summary: this.checker.finish().summary }).summary;
  }
}

/**
 * The verdicts of a record or a finish that gave none. An array of objects
 * (elements kind PACKED_ELEMENTS), as every non-empty list of verdicts is: a
 * plain [] is an array of small integers to V8, a map of its own, and the
 * run's code that goes through either (the recorder, the end of a run) was
 * optimised for one and deopted on the other.
 */
const NO_VERDICTS: StormVerdict[] = [null as unknown as StormVerdict].slice(1);

/**
 * The verdicts converted, in an array of PACKED_ELEMENTS as NO_VERDICTS is.
 * Not Array.prototype.map: its builtin makes a packed array but its inlined
 * form in optimised code makes a holey one, so once the function calling it
 * was optimised (a shrink's fifth round) the run's code iterating the result,
 * optimised for packed arrays, deopted on the first verdict (and was not
 * optimised again for seven more rounds).
 */
function convertAll(vs: readonly Verdict[], convert: (v: Verdict) => StormVerdict): StormVerdict[] {
  const out: StormVerdict[] = [];
  for (let i = 0; i < vs.length; i++) out.push(convert(vs[i]!));
  return out;
}

/**
 * A storm's deadlines as the model's, converted once per deadlines object: a
 * shrink's candidates share their storm's, and starts a checker for each.
 * The checker only reads them (it fills in its defaults in a copy of its own).
 */
const deadlinesBySpec = new WeakMap<StormSpec["deadlines"], Deadlines>();
function deadlinesOf(d: StormSpec["deadlines"]): Deadlines {
  let m = deadlinesBySpec.get(d);
  if (!m) {
    // Frozen: the model then resolves it once and trusts its cache (see
    // resolvedDeadlines), where a partial that may change is checked again
    // each checker.
    m = Object.freeze(modelDeadlines(d));
    deadlinesBySpec.set(d, m);
  }
  return m;
}

/** The rules a model profile checks, worked out once per profile (a shrink starts thousands of checkers). */
const rulesByModel = new Map<string, readonly string[]>();
function rulesOf(model: StormSpec["model"]): readonly string[] {
  let ids = rulesByModel.get(model);
  if (!ids) {
    ids = RULES.filter((r) => r.profiles.includes(model)).map((r) => r.id);
    rulesByModel.set(model, ids);
  }
  return ids;
}
