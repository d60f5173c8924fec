// A checked verdict as src/report takes it: one builder for the live runner
// (without the history, which a storm's report does not carry per verdict)
// and for `plugstorm check --report` (with the rule's statement and history).

import type { ReportVerdict } from "../report/index.js";
import type { CheckedVerdict } from "./index.js";

export interface ReportVerdictOptions {
  /** Attach the rule's statement and the events that led there. */
  history?: boolean;
}

export function toReportVerdict(v: CheckedVerdict, opts: ReportVerdictOptions = {}): ReportVerdict {
  return {
    rule: v.rule,
    side: v.side,
    severity: v.severity,
    device: v.device,
    nicId: v.nicId,
    holders: [...v.holders],
    message: v.message,
    tNs: v.tNs,
    recordIndex: v.recordIndex,
    ...(opts.history === true ? { statement: v.statement, history: v.history.map((h) => ({ text: h.text, tNs: h.tNs })) } : {}),
    ...(v.cause ? { cause: { ...v.cause } } : {}),
  };
}
