// Durations on the live page, by the same rule as the reports
// (src/report/format.ts formatNs): three significant digits and the largest
// unit under which the value is at least 1, so the page, the text summary
// and report.html say "1.59 s" and "250 ms" alike. test/serve checks the two
// agree; the page cannot import the report's TypeScript.

/** A duration in ns: 850 ns, 12.4 µs, 3.10 ms, 2.50 s, 2 min 5.00 s. */
export function formatDuration(ns) {
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${sig3(ns / 1e3)} µs`;
  if (a < 1e9) return `${sig3(ns / 1e6)} ms`;
  if (a < 60e9) return `${sig3(ns / 1e9)} s`;
  const m = Math.floor(ns / 60e9);
  return `${m} min ${sig3((ns - m * 60e9) / 1e9)} s`;
}

function sig3(v) {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}
