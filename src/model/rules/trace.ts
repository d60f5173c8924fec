// The trace itself: every byte reads back as records. Judged where records
// are read (src/check TraceChecker.damaged, from the reader's damaged regions),
// not by the model's checker, which sees events and cannot see their absence.
// Tests: test/trace/damage.test.ts.

import { BOTH, rule } from "./define.js";

export const TRACE_RULES = [
  rule({
    id: "trace-intact",
    severity: "error",
    side: "channel",
    principle: null,
    profiles: BOTH,
    needs: [],
    watches: ["trace:damage"],
    statement:
      "Every byte of the trace reads back as records; a region the reader had to skip was not checked, so the trace cannot pass.",
    basis: "docs/netbsd.md#trace-damage",
    judgedBy: "trace-reader",
  }),
] as const;
