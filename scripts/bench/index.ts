// `npm run bench`: runs every benchmark module beside this file, in name order,
// or only those named on the command line (`npm run bench -- qmp check`).
// Each module exports `run()`, measures its own baseline in the same run and
// prints ratios: absolute numbers from a shared 2-core machine mean little alone.
import { readdirSync } from "node:fs";
import { dirname, join, basename } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const wanted = new Set(process.argv.slice(2));
const modules = readdirSync(here)
  .filter((f) => f.endsWith(".js") && f !== "index.js")
  .map((f) => basename(f, ".js"))
  .filter((name) => wanted.size === 0 || wanted.has(name))
  .sort();

if (modules.length === 0) {
  console.error(`bench: nothing matches ${[...wanted].join(", ") || "(no benchmark modules built)"}`);
  process.exit(2);
}

let failures = 0;
for (const name of modules) {
  console.log(`\n== ${name} ==`);
  try {
    const mod = (await import(pathToFileURL(join(here, `${name}.js`)).href)) as { run?: () => Promise<void> };
    if (typeof mod.run !== "function") throw new Error(`scripts/bench/${name}.ts exports no run()`);
    await mod.run();
  } catch (err) {
    failures++;
    console.error(`bench ${name} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  }
}
process.exit(failures === 0 ? 0 : 1);
