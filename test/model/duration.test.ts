import test from "ava";
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
