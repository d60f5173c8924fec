// A shrink stopped from outside (Ctrl-C) still writes the smallest failing
// storm it found, and says it stopped early: that storm may not be minimal.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { Io } from "../../src/cli/args.js";
import { shrinkCommand } from "../../src/cli/storm.js";
import { DEFAULT_STORM, shrinkStorm, stormToYaml, validateStorm, type StormInput } from "../../src/storm/index.js";
import { tempDir } from "../cli/helpers.js";

const INPUT: StormInput = { ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule, cycles: 40 }, machine: { type: "sim", bugs: ["leak-ref"] } };
const SPEC = validateStorm(INPUT);
const INTERRUPTED = /interrupted: the search stopped early; the storm written is the smallest failing one found so far, perhaps not minimal/;

test("shrinkStorm stopped by its signal returns the smallest failing storm so far, marked interrupted; one out of runs is not", async (t) => {
  const ac = new AbortController();
  let runs = 0;
  const r = await shrinkStorm(SPEC, {
    signal: ac.signal,
    onRun: () => {
      if (++runs === 5) ac.abort();
    },
  });
  t.true(r.interrupted);
  t.true(r.runs < 10, `${r.runs} runs`);
  t.true(r.final.failedRules.includes(r.rule), "what it returns still breaks the rule");
  t.regex(r.yaml, /^# The search was interrupted: this is the smallest failing storm found so far, perhaps not minimal/m);

  const capped = await shrinkStorm(SPEC, { maxRuns: 20 });
  t.false(capped.interrupted, "out of runs is not interrupted");
  t.false(capped.yaml.includes("interrupted"));
});

/** A stream that keeps what is written; isTTY so that shrink writes its progress. */
function sink(tty: boolean, onWrite: (s: string) => void = () => {}): Writable & { text: string; isTTY: boolean } {
  const w = new Writable({
    write(chunk, _enc, cb) {
      const s = String(chunk);
      w.text += s;
      onWrite(s);
      cb();
    },
  }) as Writable & { text: string; isTTY: boolean };
  w.text = "";
  w.isTTY = tty;
  return w;
}

// Serial: the Ctrl-C below goes to every shrink listening in this process.
test.serial("plugstorm shrink interrupted by Ctrl-C writes the storm found so far and says so; exit 1 as its help says", async (t) => {
  const dir = tempDir(t);
  const input = join(dir, "leaky.yaml");
  writeFileSync(input, stormToYaml(INPUT));
  const outFile = join(dir, "min.yaml");
  let progress = 0;
  // The third progress line comes after the third run: Ctrl-C there, as a person would, mid-search.
  const err = sink(true, (s) => {
    if (s.includes("shrinking:") && ++progress === 3) process.emit("SIGINT", "SIGINT");
  });
  const out = sink(false);
  const code = await shrinkCommand([input, "--out", outFile], { out, err } as unknown as Io);
  t.is(code, 1, err.text);
  t.true(progress >= 3);
  t.regex(out.text, /^rule \S+: \d+ steps -> \d+ \(\d+ runs\)$/m);
  t.regex(out.text, INTERRUPTED);
  t.regex(out.text, new RegExp(`^written: ${outFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
  t.regex(readFileSync(outFile, "utf8"), /^# The search was interrupted/m);
  t.is(process.listenerCount("SIGINT"), 0, "shrink took its Ctrl-C handler away");
});

test.serial("plugstorm shrink that runs to its end says nothing of an interruption", async (t) => {
  const dir = tempDir(t);
  const input = join(dir, "leaky.yaml");
  writeFileSync(input, stormToYaml(INPUT));
  const out = sink(false);
  const code = await shrinkCommand([input, "--out", join(dir, "min.yaml"), "--max-runs", "20"], { out, err: sink(false) } as unknown as Io);
  t.is(code, 1);
  t.false(INTERRUPTED.test(out.text), out.text);
});
