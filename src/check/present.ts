// What `plugstorm check` prints: the rules broken in the order they first
// broke (counts beside), then findings: each cause with its consequences
// (docs/cascades.md), a few examples per rule.

import { groupCascades } from "../model/index.js";
import { formatVerdict, verdictWhere, type CheckedVerdict } from "./index.js";

export interface RuleFirst {
  rule: string;
  /** Worst severity among its verdicts. */
  severity: "warning" | "error" | "fatal";
  count: number;
  /** Verdicts that are consequences of another (docs/cascades.md). */
  consequences: number;
  /** Its first verdict and that verdict's position in the list. */
  first: CheckedVerdict;
  firstOrdinal: number;
}

const RANK = { warning: 0, error: 1, fatal: 2 } as const;

/** Rules with verdicts, ordered by their first verdict. */
export function rulesByFirstOccurrence(verdicts: readonly CheckedVerdict[]): RuleFirst[] {
  const by = new Map<string, RuleFirst>();
  verdicts.forEach((v, i) => {
    let r = by.get(v.rule);
    if (!r) by.set(v.rule, (r = { rule: v.rule, severity: v.severity, count: 0, consequences: 0, first: v, firstOrdinal: i }));
    r.count++;
    if (v.cause) r.consequences++;
    if (RANK[v.severity] > RANK[r.severity]) r.severity = v.severity;
  });
  return [...by.values()];
}

/** Full verdicts shown per rule unless told otherwise (check --examples; the storm's console). */
export const DEFAULT_EXAMPLES = 3;

export interface CheckTextOptions {
  /** Full verdicts shown per rule; 0 for all. */
  examples: number;
  /** Only this rule's verdicts. */
  rule?: string;
}

function who(v: CheckedVerdict): string {
  return v.device ? `${v.device}${v.nicId ? ` (${v.nicId})` : ""}` : v.nicId || "-";
}

/** The per-rule summary: one line per rule, in order of first occurrence. */
export function formatRuleSummary(rules: readonly RuleFirst[]): string[] {
  if (rules.length === 0) return [];
  const w = Math.max(4, ...rules.map((r) => r.rule.length));
  const cw = Math.max(5, ...rules.map((r) => String(r.count).length + 1));
  const out = [`rules broken, in the order they first broke:`, `  ${"sev".padEnd(7)} ${"rule".padEnd(w)}  ${"count".padStart(cw)}  first`];
  for (const r of rules) {
    const cons = r.consequences > 0 ? ` [${r.consequences === r.count ? "all" : r.consequences} consequence${r.consequences === 1 ? "" : "s"} of earlier causes]` : "";
    out.push(`  ${r.severity.toUpperCase().padEnd(7)} ${r.rule.padEnd(w)}  ${`${r.count}×`.padStart(cw)}  ${who(r.first)} ${verdictWhere(r.first)}${cons}`);
  }
  return out;
}

/**
 * The findings: each cause as a full verdict (up to `examples` per rule),
 * with its consequences one line each under it (up to `examples` per rule
 * too); what was left out is counted, never silently dropped.
 */
export function formatFindings(verdicts: readonly CheckedVerdict[], opts: CheckTextOptions): string[] {
  const out: string[] = [];
  const limit = new ExampleLimit(opts.examples);
  for (const g of groupCascades(verdicts)) {
    const cause = verdicts[g.cause]!;
    const cons = g.consequences;
    const wanted = opts.rule === undefined || cause.rule === opts.rule;
    const consWanted = opts.rule === undefined ? cons : cons.filter((i) => verdicts[i]!.rule === opts.rule);
    const head = wanted && limit.take(cause.rule);
    if (head) out.push(`${g.cause + 1}. ${formatVerdict(cause)}`);
    if (consWanted.length === 0) continue;
    if (!head) {
      // Consequences of a cause not shown still say what they hang from.
      out.push(`${g.cause + 1}. (cause not shown: ${cause.rule} on ${who(cause)} ${verdictWhere(cause)})`);
    }
    const lines: string[] = [];
    for (const i of consWanted) {
      const v = verdicts[i]!;
      if (!limit.take(v.rule)) continue;
      lines.push(`     ${i + 1}. ${v.severity.toUpperCase()} ${v.rule}: ${who(v)} ${verdictWhere(v)}: ${v.message.split("\n")[0]}`);
    }
    const count = `   ${cons.length} consequence${cons.length === 1 ? "" : "s"} of it${consWanted.length < cons.length ? ` (${consWanted.length} of rule ${opts.rule})` : ""}`;
    // A heading with nothing under it reads as a list lost: say why it is empty (the count below says how many per rule).
    if (lines.length === 0) out.push(`${count}, none shown (limit ${opts.examples} per rule reached)`);
    else out.push(`${count}:`, ...lines);
  }
  const left = limit.omittedText("--examples 0 shows all, --rule ID one rule");
  if (left) out.push(left);
  return out;
}

/**
 * How many full verdicts of each rule are shown (check's --examples; the
 * storm's console too), and what was left out, counted per rule.
 */
export class ExampleLimit {
  private readonly shown = new Map<string, number>();
  private readonly omitted = new Map<string, number>();

  /** perRule: full verdicts shown per rule; 0 for all. */
  constructor(readonly perRule: number) {}

  /** Whether one more verdict of the rule is shown; counts it as left out if not. */
  take(rule: string): boolean {
    const n = this.shown.get(rule) ?? 0;
    if (this.perRule > 0 && n >= this.perRule) {
      this.omitted.set(rule, (this.omitted.get(rule) ?? 0) + 1);
      return false;
    }
    this.shown.set(rule, n + 1);
    return true;
  }

  /** The line counting what was left out, with how to see it; "" when nothing was. */
  omittedText(howToSeeAll: string): string {
    if (this.omitted.size === 0) return "";
    const parts = [...this.omitted].map(([r, n]) => `${n} ${r}`);
    return `not shown (limit ${this.perRule} per rule; ${howToSeeAll}): ${parts.join(", ")}`;
  }
}
