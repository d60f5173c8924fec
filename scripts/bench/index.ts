// `npm run bench`: runs every benchmark module beside this file, in name order,
// or only those named on the command line (`npm run bench -- qmp check`).
// Each module exports `run()`, measures its own baseline in the same run and
// prints ratios: absolute numbers from a shared 2-core machine mean little alone.
import { readdirSync } from "node:fs";
import { dirname, join, basename } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

interface Suite {
  run?: () => Promise<void>;
  about?: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const suites = readdirSync(here)
  .filter((f) => f.endsWith(".js") && f !== "index.js")
  .map((f) => basename(f, ".js"))
  .sort();
const load = async (name: string): Promise<Suite> => (await import(pathToFileURL(join(here, `${name}.js`)).href)) as Suite;

/** The usage, with each suite's own line of what it measures (its `about`). */
async function usage(): Promise<string> {
  const width = Math.max(0, ...suites.map((s) => s.length));
  const lines: string[] = [];
  for (const name of suites) lines.push(`  ${name.padEnd(width)}  ${(await load(name)).about ?? "(says nothing about itself: scripts/bench/" + name + ".ts)"}`);
  return (
    "usage: npm run bench [-- SUITE ...]    (or: node dist/scripts/bench/index.js [SUITE ...])\n\n" +
    "Runs every suite in name order, or the suites named. Each measures its own baseline in\n" +
    "the same run and prints ratios. Run the suites that start QEMU under\n" +
    "flock /tmp/plugstorm-qemu.lock. Exit: 0 all ran, 1 a suite failed, 2 unknown suite.\n\n" +
    `suites:\n${lines.join("\n")}\n`
  );
}

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write(await usage());
  process.exit(0);
}
if (suites.length === 0) {
  console.error("bench: no benchmark modules built (npm run build)");
  process.exit(2);
}
const unknown = args.filter((a) => !suites.includes(a));
if (unknown.length > 0) {
  // Said before anything runs: a misspelt suite would otherwise be skipped after minutes of the others.
  process.stderr.write(`bench: no suite ${unknown.map((a) => JSON.stringify(a)).join(", ")}\n\n${await usage()}`);
  process.exit(2);
}
const modules = args.length === 0 ? suites : suites.filter((s) => args.includes(s));

let failures = 0;
for (const name of modules) {
  console.log(`\n== ${name} ==`);
  try {
    const mod = await load(name);
    if (typeof mod.run !== "function") throw new Error(`scripts/bench/${name}.ts exports no run()`);
    await mod.run();
  } catch (err) {
    failures++;
    console.error(`bench ${name} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  }
}
process.exit(failures === 0 ? 0 : 1);
