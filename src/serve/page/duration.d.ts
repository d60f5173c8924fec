/** A duration in ns, by the reports' rule (src/report/format.ts formatNs). */
export function formatDuration(ns: number): string;
