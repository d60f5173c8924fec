// What a rule is. Each rule family lives in its own file next to this one,
// as Linux's RV monitors do: its rules (statement, basis in docs/netbsd.md,
// what the guest must observe, the events it watches), then the monitor that
// judges them over the checker's state (../core.ts), and a pointer to its
// tests. A new rule of a family is an entry and its check in that one file;
// its id joins the closed RuleId type, so the checker cannot name a rule that
// does not exist. A new family is a new file, listed in ../rules.ts and
// routed to by ../checker.ts.
import type { CapabilityName } from "../events.js";
import type { RuleId } from "../rules.js";

export type ProfileName = "netbsd" | "linux";
export type Severity = "warning" | "error" | "fatal";
export type Side = "host" | "guest" | "channel";

/** "refs" is satisfied by either kernel-refs or agent-refs. */
export type Observation = CapabilityName | "refs";

export interface Rule<Id extends string = string> {
  id: Id;
  statement: string;
  /** Principle 1..7 of the detach protocol, or null for host/channel/correspondence rules. */
  principle: number | null;
  /** Space-separated `docs/<file>.md#<anchor>` references to the facts the rule rests on. */
  basis: string;
  profiles: readonly ProfileName[];
  severity: Severity;
  side: Side;
  /** What the guest must be able to observe for the rule to be judged at all. */
  needs: readonly Observation[];
  /** The events that can break it: "type:kind", "type:*", or "deadline:<event that armed it>". */
  watches: readonly string[];
  /** Judged on a deadline (trace time), not on a single event. */
  liveness: boolean;
  /**
   * Who judges it: the model's checker (from events), or the trace reader
   * (src/check, from what it could not read). Default "model".
   */
  judgedBy: "model" | "trace-reader";
}

export const BOTH: readonly ProfileName[] = ["netbsd", "linux"];
export const NETBSD: readonly ProfileName[] = ["netbsd"];

/** A rule definition; keeps the id's literal type so the ids form a closed union. */
export function rule<const Id extends string>(
  d: Omit<Rule<Id>, "liveness" | "judgedBy"> & { liveness?: boolean; judgedBy?: Rule["judgedBy"] },
): Rule<Id> {
  return { ...d, liveness: d.liveness ?? false, judgedBy: d.judgedBy ?? "model" };
}

/** What a rule family's own check (e.g. rules/vnodes.ts NodeMonitor) needs from the checker. */
export interface Judge<Ctx> {
  /** Counts one judged case of the rule. */
  ex(id: RuleId): void;
  /** Reports a violation (the rule counts as judged). */
  violate(id: RuleId, message: string, ctx: Ctx): void;
  observes(cap: CapabilityName): boolean;
}

/** A duration for verdict messages: the project's one style. */
export { formatNs as fmtDur } from "../duration.js";
