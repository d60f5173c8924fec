// A negative number given to an option is that option's bad value, said in the
// option's own words; parseArgs alone calls it an "ambiguous" argument.

import test from "ava";
import { join } from "node:path";
import { run, tempDir } from "./helpers.js";

const firstLine = (s: string): string => s.split("\n")[0]!;

test("a negative value gets the option's own message as the first line, exit 2, in every command", async (t) => {
  const dir = tempDir(t);
  const trace = join(dir, "absent.pstrace");
  const cases: [string[], string][] = [
    [["storm", "--seed", "-5"], 'plugstorm storm: --seed expects an integer from 0 to 4294967295, got "-5"'],
    [["storm", "--time-limit", "-1s"], 'plugstorm storm: --time-limit expects a duration'],
    [["storm", "--max-trace-bytes", "-1"], 'plugstorm storm: --max-trace-bytes expects a size'],
    [["storm", "--wall-clock-start", "-1"], 'plugstorm storm: --wall-clock-start expects an integer >= 0, got "-1"'],
    [["shrink", "x.yaml", "--max-runs", "-3"], 'plugstorm shrink: --max-runs expects an integer >= 1, got "-3"'],
    [["check", trace, "--examples", "-1"], 'plugstorm check: --examples expects a whole number of verdicts per rule (0 for all), got "-1"'],
    [["trace", "cat", trace, "--from", "-1"], 'plugstorm trace cat: --from expects a trace time'],
    [["serve", trace, "--speed", "-1"], 'plugstorm serve: --speed: speed must be a number > 0'],
    [["campaign", "scripts/campaigns/two-guests.yaml", "--queue", "redis://127.0.0.1:1", "--redis-wait", "-5"], 'plugstorm campaign: --redis-wait expects an integer >= 1, got "-5"'],
    [["worker", "--queue", "redis://127.0.0.1:1", "--max-stalled", "-1"], 'plugstorm worker: --max-stalled expects an integer >= 1, got "-1"'],
    [["qmp", "/nonexistent.sock", "query-status", "--timeout", "-.5"], 'plugstorm qmp: --timeout expects an integer >= 1, got "-.5"'],
  ];
  for (const [args, want] of cases) {
    const r = await run(t, args);
    const what = args.join(" ");
    t.is(r.code, 2, what);
    t.true(firstLine(r.stderr).startsWith(want), `${what}: ${r.stderr}`);
    t.notRegex(r.stderr, /ambiguous/, what);
  }
});

test("an option followed by another option, or by nothing, says which option lacks its value", async (t) => {
  const out = await run(t, ["storm", "--out", "--json"]);
  t.is(out.code, 2);
  t.is(firstLine(out.stderr), 'plugstorm storm: --out expects a value, but the option --json follows it (a value that starts with "-" is written --out=--json)');
  const short = await run(t, ["shrink", "x.yaml", "-o", "-q"]);
  t.is(short.code, 2);
  t.is(firstLine(short.stderr), 'plugstorm shrink: -o expects a value, but the option -q follows it (a value that starts with "-" is written --out=-q)');
  const last = await run(t, ["storm", "--json", "--seed"]);
  t.is(last.code, 2);
  t.is(firstLine(last.stderr), "plugstorm storm: --seed expects a value");
  // The written-out form the message offers is taken as the value.
  const joined = await run(t, ["storm", "--seed=-5"]);
  t.is(firstLine(joined.stderr), 'plugstorm storm: --seed expects an integer from 0 to 4294967295, got "-5"');
});
