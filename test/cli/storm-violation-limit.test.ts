// A cascade gives a storm thousands of verdicts of one rule: its console shows
// as many of each rule as `check` does and counts the rest, with the command
// that shows them all; --json keeps every verdict.

import test from "ava";
import { join } from "node:path";
import { DEFAULT_EXAMPLES } from "../../src/check/present.js";
import { run, tempDir } from "./helpers.js";

function countBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return m;
}

test("storm --bug leak-ref shows at most DEFAULT_EXAMPLES violations per rule and says how to see the rest", async (t) => {
  const dir = tempDir(t);
  const json = await run(t, ["storm", "--bug", "leak-ref", "--json", "--out", join(dir, "json")]);
  t.is(json.code, 1, json.stderr);
  const all = (JSON.parse(json.stdout) as { verdicts: Array<{ rule: string; severity: string }> }).verdicts.filter((v) => v.severity !== "warning");
  const perRule = countBy(all, (v) => v.rule);
  // The storm must break some rule more often than the limit, or this proves nothing.
  t.true([...perRule.values()].some((n) => n > DEFAULT_EXAMPLES), JSON.stringify([...perRule]));

  const out = join(dir, "console");
  const r = await run(t, ["storm", "--bug", "leak-ref", "--out", out]);
  t.is(r.code, 1);
  const shown = countBy(
    r.stderr.split("\n").filter((l) => l.startsWith("violation: ")),
    (l) => /^violation: \S+ \[\w+\] ([\w-]+):/.exec(l)![1]!,
  );
  for (const [rule, n] of perRule) t.is(shown.get(rule) ?? 0, Math.min(n, DEFAULT_EXAMPLES), rule);
  const over = [...perRule].filter(([, n]) => n > DEFAULT_EXAMPLES).map(([rule, n]) => `${n - DEFAULT_EXAMPLES} ${rule}`);
  const left = r.stderr.split("\n").filter((l) => l.startsWith("not shown "));
  t.deepEqual(left, [
    `not shown (limit ${DEFAULT_EXAMPLES} per rule; plugstorm check ${join(out, "trace.pstrace")} --examples 0 shows all): ${over.join(", ")}`,
  ]);
});
