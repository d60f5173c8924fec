import test from "ava";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

// The shrinker wrote its minimal storm's YAML from a spread copy of the storm
// with its name overwritten. The copy has the map of every storm a run reads,
// so V8 turned that map's name field from constant to mutable, and code
// optimised on storms before it (the step loop's waiting steps, the sim's bus
// explore among them) was thrown away at a process's first shrink. Checked in
// a child node that traces V8's field generalizations (--trace-generalization,
// which needs --no-sparkplug in this V8): during a shrink, no field turns
// mutable in the shrinker's or the YAML writer's code.
const storm = new URL("../../src/storm/index.js", import.meta.url).href;

const CHILD = `
const { validateStorm, DEFAULT_STORM, shrinkStorm } = await import(${JSON.stringify(storm)});
const spec = { ...validateStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule, cycles: 40 } }), machine: { type: "sim", bugs: ["leak-ref"] } };
const r = await shrinkStorm(spec, { maxRuns: 150 });
console.log("@@shrink-end " + r.runs);
`;

test("a shrink turns no storm field mutable in the shrinker or the YAML writer", (t) => {
  const out = execFileSync(process.execPath, ["--no-sparkplug", "--trace-generalization", "--input-type=module", "-e", CHILD], {
    cwd: fileURLToPath(new URL(".", import.meta.url)),
    encoding: "utf8",
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  // V8 writes its trace through its own buffered stdio, out of order with the
  // child's own lines: the whole output is read (the child only shrinks).
  const lines = out.split("\n");
  t.true(lines.some((l) => l.includes("@@shrink-end")), "the child finished its shrink");
  const traced = lines.filter((l) => l.includes("[generalizing]"));
  // The trace is on: a shrink's runs generalize fields elsewhere (the sim's, the checker's).
  t.true(traced.length > 0, "the child's V8 traced generalizations");
  const madeMutable = traced.filter((l) => /const\}->\S*mutable\}/.test(l) && /storm\/(shrink|write)\.js/.test(l));
  t.deepEqual(madeMutable, []);
});
