// Storm validation is linear in the file's size, and has a size limit.
import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScenarioError, loadStormFile, parseStorm } from "../../src/storm/index.js";

test("a duplicate key anywhere is reported where it is, with where the first one is", (t) => {
  const text = "machine: { type: sim }\nschedule:\n  cycles: 2\n  seed: 3\n  cycles: 4\nholders:\n  - { kind: ifnet, kind: device }\n";
  const e = t.throws(() => parseStorm(text, "dup.yaml"), { instanceOf: ScenarioError });
  t.regex(e!.message, /dup\.yaml:5:3: schedule\.cycles: duplicate key "cycles" \(first at line 3, column 3\)/);
  t.regex(e!.message, /dup\.yaml:7:20: holders\[0\]\.kind: duplicate key "kind" \(first at line 7, column 7\)/);
});

test("a mapping of 60k keys is refused in linear time, listing the first 50 problems", (t) => {
  // With yaml's own uniqueKeys check (every key against every earlier one) this took minutes.
  let text = "machine: { type: sim }\nschedule:\n";
  for (let i = 0; i < 60_000; i++) text += `  k${i}: 1\n`;
  text += "  k17: 2\n";
  t.true(text.length < 1024 * 1024);
  const e = t.throws(() => parseStorm(text, "many.yaml"), { instanceOf: ScenarioError });
  t.is(e!.issues.length, 1, "the duplicate is reported before anything else is looked at");
  t.regex(e!.message, /many\.yaml:60003:3: schedule\.k17: duplicate key "k17" \(first at line 20, column 3\)/);
  const e2 = t.throws(() => parseStorm(text.replace("  k17: 2\n", ""), "many.yaml"), { instanceOf: ScenarioError });
  t.is(e2!.issues.length, 60_000);
  t.is(e2!.message.split("\n").length, 51);
  t.regex(e2!.message, /\.\.\. and 59950 more problems$/);
});

test("a storm over 1 MiB is refused before it is parsed, naming the limit", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-size-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const big = "machine: { type: sim }\n# " + "x".repeat(2 * 1024 * 1024) + "\n";
  const path = join(dir, "big.yaml");
  writeFileSync(path, big);
  const e = await t.throwsAsync(loadStormFile(path), { instanceOf: ScenarioError });
  t.regex(e!.message, /big\.yaml: \(top level\): the file is 2097178 bytes, over the 1048576-byte \(1 MiB\) limit for storm files/);
  t.throws(() => parseStorm(big, "text"), { message: /text: \(top level\): the storm is 2097178 bytes, over the 1048576-byte \(1 MiB\) limit/ });
});
