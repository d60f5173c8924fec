import test from "ava";
import fc from "fast-check";
import { formatElapsedMs, formatMs, formatNs } from "../../src/model/index.js";

test("one duration style: largest unit at or above 1, three significant digits, no trailing zeros", (t) => {
  const cases: Array<[number, string]> = [
    [0, "0 ns"],
    [850, "850 ns"],
    [999.6, "1000 ns"],
    [12_400, "12.4 µs"],
    [3_100_000, "3.1 ms"],
    [4_000_000, "4 ms"],
    [49_876_000, "49.9 ms"],
    [2.5e9, "2.5 s"],
    [20e9, "20 s"],
    [59.4e9, "59.4 s"],
    [125e9, "2 min 5 s"],
    [600e9, "10 min"],
    [119.7e9, "2 min"],
    [-3e6, "-3 ms"],
  ];
  for (const [ns, want] of cases) t.is(formatNs(ns), want, `${ns} ns`);
  t.is(formatMs(1500), "1.5 s");
  t.is(formatNs(NaN), "NaN");
});

test("elapsed time for progress lines: 42s, 3m07s, 2h05m, ? when unknown", (t) => {
  t.is(formatElapsedMs(42_000), "42s");
  t.is(formatElapsedMs(187_000), "3m07s");
  t.is(formatElapsedMs(7_500_000), "2h05m");
  t.is(formatElapsedMs(NaN), "?");
  t.is(formatElapsedMs(-1), "?");
});

/** formatNs as written before whole numbers took their own path (toFixed, then parsed back), for the test below. */
function formatNsByToFixed(ns: number): string {
  const digits = (v: number): string => String(+v.toFixed(Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2));
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

test("formatNs writes a whole number of its unit as toFixed did, and every other value too", (t) => {
  // Whole units (deadlines: 5 s, 250 ms, 1.5 s), their neighbours, and any double.
  const whole = fc.tuple(fc.integer({ min: -999, max: 999 }), fc.constantFrom(1e3, 1e6, 1e9)).map(([n, unit]) => n * unit);
  const near = whole.chain((ns) => fc.constantFrom(ns, ns + 1, ns - 1, ns + 0.5, ns * 1.0000001));
  fc.assert(fc.property(fc.oneof(whole, near, fc.double({ min: -120e9, max: 120e9, noNaN: true })), (ns) => formatNs(ns) === formatNsByToFixed(ns)), { numRuns: 20000 });
  for (const ns of [-0, 1e3, 999e3, 1e6, 100e6, 999e6, 1e9, 59e9, 60e9, 5e9, 250e6]) t.is(formatNs(ns), formatNsByToFixed(ns), `${ns} ns`);
});
