// `plugstorm ... | head`: every command ends quietly when its reader goes away,
// with the status a Unix tool killed by SIGPIPE has (141), and a storm still
// finishes its trace.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseTrace } from "../../src/trace/index.js";
import { run, runReaderGone, tempDir } from "./helpers.js";

const STORM = `name: pipe
machine:
  type: sim
nics:
  mix:
    - { kind: usb-net, count: 2 }
schedule:
  cycles: 30
  maxInFlight: 2
  dwell: { uniform: { min: 1ms, max: 5ms } }
  seed: 3
holders:
  - { kind: ifnet, count: 1, probability: 0.5, hold: { uniform: { min: 1ms, max: 5ms } } }
`;

async function traceOf(t: Parameters<typeof run>[0]): Promise<string> {
  const dir = tempDir(t);
  const file = join(dir, "s.yaml");
  writeFileSync(file, STORM);
  const r = await run(t, ["storm", file, "--out", join(dir, "out"), "--bug", "leak-ref", "-q"]);
  t.is(r.code, 1, r.stderr);
  return join(dir, "out", "trace.pstrace");
}

test("every printing command ends quietly with 141 when stdout's reader is gone", async (t) => {
  const trace = await traceOf(t);
  const commands = [
    ["model", "rules"],
    ["model", "diagram"],
    ["check", trace],
    ["check", trace, "--json"],
    ["trace", "cat", trace],
    ["trace", "cat", trace, "--json"],
    ["storm", "--help"],
    ["--help"],
  ];
  for (const args of commands) {
    const r = await runReaderGone(t, args, { stdout: true });
    const what = args.join(" ");
    t.is(r.code, 141, `${what}: ${r.stderr}`);
    t.is(r.stderr, "", `${what} prints nothing about the closed pipe`);
  }
});

test("trace cat calls a failed write a write error, not a read error", async (t) => {
  const trace = await traceOf(t);
  // A full disk, not a closed pipe: the message must name the output.
  const r = await run(t, ["trace", "cat", trace], { wrap: ["bash", "-c", 'exec "$@" > /dev/full', "--"] });
  t.is(r.code, 2);
  t.notRegex(r.stderr, /cannot read/);
  t.regex(r.stderr, /cannot write output/);
});

test("a storm whose progress reader goes away still writes a whole trace, then exits 141", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "s.yaml");
  writeFileSync(file, STORM.replace("cycles: 30", "cycles: 1000000"));
  const out = join(dir, "out");
  const r = await runReaderGone(t, ["storm", file, "--out", out], { stderr: true });
  t.is(r.code, 141);
  const parsed = parseTrace(readFileSync(join(out, "trace.pstrace")));
  t.is(parsed.status.tail, "clean");
  t.is(parsed.records.filter((x) => x.mark).at(-1)?.mark?.name, "storm-end");
  t.regex(r.stdout, /output closed|stopped early/);
});

test("model diagram renders with the dot that set-up installs, as --help says", async (t) => {
  const help = await run(t, ["model", "--help"]);
  t.regex(help.stdout, /scripts\/setup-host installs/);
  t.regex(readFileSync("scripts/setup-host", "utf8"), /^\s+graphviz$/m);
  const r = await run(t, ["model", "diagram"], { wrap: ["bash", "-c", 'set -o pipefail; "$@" | dot -Tsvg', "--"] });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /<svg/);
});
