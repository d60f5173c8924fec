// `npm run bench -- --help` lists the suites with what each measures; a name
// that is no suite is refused, with the list, before any suite runs.

import test from "ava";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";

const BENCH = resolve("dist/scripts/bench");
const suites = readdirSync(BENCH).filter((f) => f.endsWith(".js") && f !== "index.js").map((f) => f.slice(0, -3));

function bench(...args: string[]) {
  // spawnSync kills the child at the timeout: nothing outlives the test.
  return spawnSync(process.execPath, [resolve(BENCH, "index.js"), ...args], { encoding: "utf8", timeout: 30_000 });
}

function listed(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^ {2}(\S+) +(.+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

test("--help: usage, every suite with a line of what it measures, exit 0", (t) => {
  t.true(suites.length > 10);
  for (const flag of ["--help", "-h"]) {
    const r = bench(flag);
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /^usage: npm run bench \[-- SUITE \.\.\.\]/);
    const lines = listed(r.stdout);
    t.deepEqual([...lines.keys()], suites);
    for (const [name, about] of lines) t.notRegex(about, /says nothing about itself/, name);
    t.regex(lines.get("qmp") ?? "", /\(starts QEMU\)/);
  }
});

test("an unknown suite: named on the first line, the list after it, exit 2, and nothing run", (t) => {
  const r = bench("sim", "nosuch");
  t.is(r.status, 2);
  t.is(r.stderr.split("\n")[0], 'bench: no suite "nosuch"');
  t.deepEqual([...listed(r.stderr).keys()], suites);
  t.notRegex(r.stdout, /== sim ==/);
});
