// The model's layout is a promise to its reviewers: each rule family's file
// holds its rules and names where they are tested, and those tests do name
// every rule of the family. A rule moved, added or left untested breaks this.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { RULES } from "../../src/model/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const rulesDir = join(root, "src/model/rules");
const families = readdirSync(rulesDir).filter((f) => f.endsWith(".ts") && f !== "define.ts");

/** The test files a family's header points to ("Tests: test/a.test.ts (...), test/b.test.ts."). */
function testsOf(text: string): string[] {
  const header = text.slice(0, text.indexOf("\nimport "));
  const at = header.indexOf("Tests:");
  if (at < 0) return [];
  const tail = header.slice(at).split("\n").map((l) => l.replace(/^\/\/\s?/, "")).join(" ");
  return [...tail.matchAll(/test\/[a-z0-9/-]+\.test\.ts/g)].map((m) => m[0]);
}

test("every rule id is defined in exactly one family file", (t) => {
  const where = new Map<string, string[]>();
  for (const f of families) {
    const text = readFileSync(join(rulesDir, f), "utf8");
    for (const m of text.matchAll(/^\s+id: "([a-z0-9-]+)",$/gm)) where.set(m[1]!, [...(where.get(m[1]!) ?? []), f]);
  }
  for (const r of RULES) t.deepEqual(where.get(r.id), [where.get(r.id)?.[0]], `${r.id}: defined in ${where.get(r.id)?.join(", ") ?? "no family file"}`);
  t.is(where.size, RULES.length);
});

test("every family names its tests, they exist, and they name each of its rules", (t) => {
  for (const f of families) {
    const text = readFileSync(join(rulesDir, f), "utf8");
    const tests = testsOf(text);
    t.true(tests.length > 0, `${f}: no "Tests:" in its header`);
    const bodies = tests.map((p) => {
      t.true(existsSync(join(root, p)), `${f}: ${p} does not exist`);
      return existsSync(join(root, p)) ? readFileSync(join(root, p), "utf8") : "";
    });
    for (const m of text.matchAll(/^\s+id: "([a-z0-9-]+)",$/gm)) {
      t.true(bodies.some((b) => b.includes(`"${m[1]}"`)), `${f}: rule ${m[1]} is named by none of ${tests.join(", ")}`);
    }
  }
});
