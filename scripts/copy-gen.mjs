#!/usr/bin/env node
// tsc does not emit the generated .js (it reads their .d.ts): copy them into dist.
import { cpSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const from = join(root, "src", "gen");
const to = join(root, "dist", "src", "gen");
if (existsSync(from)) {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) {
    if (f.endsWith(".js") || f.endsWith(".d.ts")) cpSync(join(from, f), join(to, f));
  }
}
// Static assets served or read at run time (the live page, D scripts) live beside their code.
for (const dir of ["src/serve/page", "src/report/assets"]) {
  const src = join(root, dir);
  if (existsSync(src)) cpSync(src, join(root, "dist", dir), { recursive: true });
}
