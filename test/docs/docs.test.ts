import test from "ava";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { modelDocs } from "../../scripts/docs-content.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

for (const [name, text] of Object.entries(modelDocs())) {
  test(`docs/${name} matches the model (npm run docs refreshes it)`, (t) => {
    let committed: string;
    try {
      committed = readFileSync(join(root, "docs", name), "utf8");
    } catch {
      t.fail(`docs/${name} is missing: run npm run docs`);
      return;
    }
    t.is(committed, text);
  });
}

test("the rules document lists every rule id of the model", async (t) => {
  const { RULES } = await import("../../src/model/index.js");
  const md = modelDocs()["rules.md"] ?? "";
  for (const rule of RULES) t.true(md.includes(`\`${rule.id}\``), rule.id);
});
