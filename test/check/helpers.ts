// Shared assertions for checker tests.

import type { ExecutionContext } from "ava";
import { checkRecords, formatVerdict, type CheckResult, type Deadlines } from "../../src/check/index.js";
import type { TraceBuilder } from "./builder.js";

export interface RunOpts {
  profile?: "netbsd" | "linux";
  deadlines?: Partial<Deadlines>;
  endTNs?: number;
  decoded?: boolean;
}

export function run(b: TraceBuilder, o: RunOpts = {}): CheckResult {
  const records = o.decoded ? b.decodedRecords() : b.records();
  const opts: Parameters<typeof checkRecords>[1] = { profile: o.profile ?? "netbsd" };
  if (o.deadlines) opts.deadlines = o.deadlines;
  if (o.endTNs !== undefined) opts.endTNs = o.endTNs;
  return checkRecords(records, opts);
}

export function dump(res: CheckResult): string {
  return res.verdicts.map(formatVerdict).join("\n");
}

/** No verdict at all, and each named rule was judged and passed. */
export function assertClean(t: ExecutionContext, res: CheckResult, passed: readonly string[] = []): void {
  t.deepEqual(res.verdicts.map((v) => v.rule), [], dump(res));
  for (const id of passed) {
    const r = res.summary.rules.find((x) => x.id === id);
    t.is(r?.status, "passed", `rule ${id} should have been judged and passed, is ${r?.status}`);
  }
}

/** The first verdict is `rule` on the given device/QEMU id, naming the holders when given. */
export function assertFirst(
  t: ExecutionContext,
  res: CheckResult,
  rule: string,
  who: { device?: string; nicId?: string; holders?: readonly string[]; side?: "host" | "guest" | "channel" },
): void {
  const v = res.verdicts[0];
  t.truthy(v, `expected a ${rule} verdict, got none`);
  if (!v) return;
  t.is(v.rule, rule, dump(res));
  if (who.device !== undefined) t.is(v.device, who.device, dump(res));
  if (who.nicId !== undefined) t.is(v.nicId, who.nicId, dump(res));
  if (who.holders !== undefined) t.deepEqual([...v.holders].sort(), [...who.holders].sort(), dump(res));
  if (who.side !== undefined) t.is(v.side, who.side);
  t.true(v.history.length > 0, "a verdict carries the events that led there");
  t.is(res.summary.rules.find((r) => r.id === rule)?.status, "violated");
}
