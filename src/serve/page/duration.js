// Durations on the live page, by the same rule as the reports
// (src/model/duration.ts formatNs): three significant digits and the largest
// unit under which the value is at least 1, so the page, the text summary
// and report.html say "1.59 s" and "250 ms" alike. test/serve checks the two
// agree; the page cannot import the report's TypeScript.

/** A duration in ns: 850 ns, 12.4 µs, 3.1 ms, 2.5 s, 2 min 5 s. */
export function formatDuration(ns) {
  if (!Number.isFinite(ns)) return String(ns);
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${sig3(ns / 1e3)} µs`;
  if (a < 1e9) return `${sig3(ns / 1e6)} ms`;
  if (a < 60e9) return `${sig3(ns / 1e9)} s`;
  const sign = ns < 0 ? "-" : "";
  const m = Math.floor(a / 60e9);
  const s = Math.round((a - m * 60e9) / 1e9);
  return s === 60 ? `${sign}${m + 1} min` : s === 0 ? `${sign}${m} min` : `${sign}${m} min ${s} s`;
}

function sig3(v) {
  const a = Math.abs(v);
  // +toFixed drops trailing zeros, as the reports do.
  return String(+v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2));
}
