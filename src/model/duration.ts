// How the project writes a duration for people, one style everywhere (issue
// #16): the largest unit that keeps the number at or above 1, three
// significant digits at most, trailing zeros dropped: 850 ns, 12.4 µs,
// 3.1 ms, 2.5 s, 20 s, 2 min 5 s. Here, at the bottom of the dependency
// order, because verdict messages need it and the model imports nothing.

/** A duration in ns: 850 ns, 12.4 µs, 3.1 ms, 2.5 s, 2 min 5 s. */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return String(ns);
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${digits(ns / 1e3)} µs`;
  if (a < 1e9) return `${digits(ns / 1e6)} ms`;
  if (a < 60e9) return `${digits(ns / 1e9)} s`;
  const sign = ns < 0 ? "-" : "";
  const m = Math.floor(a / 60e9);
  const s = Math.round((a - m * 60e9) / 1e9);
  return s === 60 ? `${sign}${m + 1} min` : s === 0 ? `${sign}${m} min` : `${sign}${m} min ${s} s`;
}

/** A duration in ms as formatNs writes it. */
export function formatMs(ms: number): string {
  return formatNs(ms * 1e6);
}

/**
 * Elapsed wall time for progress lines, fixed width as it ticks: 42s, 3m07s,
 * 2h05m; "?" when unknown (NaN, negative).
 */
export function formatElapsedMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

function digits(v: number): string {
  // A whole number (most deadlines, in their unit) is its own text: no
  // toFixed and parse, two runtime calls, for each verdict that names one.
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  // +toFixed drops trailing zeros; 999.95 rounds to "1000": still one unit.
  return String(+v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2));
}
