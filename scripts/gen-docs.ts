// Writes the model's generated documents into docs/: the rules table and the
// automata diagrams. They are committed so people can read them without a
// build; test/docs checks they match the code (`npm run docs` refreshes them).
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { modelDocs } from "./docs-content.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
mkdirSync(join(root, "docs"), { recursive: true });
for (const [name, text] of Object.entries(modelDocs())) {
  writeFileSync(join(root, "docs", name), text);
  console.log(`docs/${name}`);
}
