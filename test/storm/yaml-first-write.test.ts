import test from "ava";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

// The yaml package's first stringify in a process made V8 throw away code it
// had optimised elsewhere (the trace decoder's string reads, the checker's
// host-action rules, Node's immediates), which a process that runs storms and
// then writes a shrunk storm paid for in its later runs. write.ts takes that
// first stringify when it loads. Checked in a child node that reports V8's
// deopts (--trace-deopt): after two storms have made the per-record code
// optimised, writing a storm as YAML must deopt nothing for a code dependency.
const storm = new URL("../../src/storm/index.js", import.meta.url).href;

const CHILD = `
const { validateStorm, runStorm, DEFAULT_STORM, expandSteps, specToInput, stormToYaml } = await import(${JSON.stringify(storm)});
const spec = validateStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule, cycles: 400 } });
await runStorm(spec, { out: null });
await runStorm(spec, { out: null });
const input = specToInput(spec, expandSteps(spec).slice(0, 8));
console.log("@@yaml-start");
const yaml = stormToYaml(input, "header");
console.log("@@yaml-end " + yaml.length);
`;

test("writing the first storm as YAML throws away no optimised code", (t) => {
  const out = execFileSync(process.execPath, ["--trace-deopt", "--input-type=module", "-e", CHILD], {
    cwd: fileURLToPath(new URL(".", import.meta.url)),
    encoding: "utf8",
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  const lines = out.split("\n");
  const from = lines.findIndex((l) => l.startsWith("@@yaml-start"));
  const to = lines.findIndex((l) => l.startsWith("@@yaml-end"));
  t.true(from >= 0 && to > from, "the child wrote both markers");
  // Deopts of the storms before the write are printed too: their presence shows the trace is on.
  t.true(lines.slice(0, from).some((l) => l.includes("deoptimiz")), "the child's V8 reported deopts before the write");
  const dropped = lines.slice(from, to).filter((l) => l.startsWith("[marking dependent code") && l.includes("code dependencies"));
  t.deepEqual(dropped, []);
});
