// shrink --rule R for a rule the storm breaks only after another (here as
// the consequence of a leak that blocks the USB thread): the runs go on past
// the first violation until R breaks, and so does the minimal storm. An
// unknown rule is refused as check --rule refuses it; --quiet prints only
// the file written.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ShrinkError, parseStorm, shrinkStorm } from "../../src/storm/index.js";
import { run, tempDir } from "../cli/helpers.js";

/** A leak on a, then more NICs on the same bus: the adds after it never attach (host-add-attaches, consequences of host-remove-frees). */
const LEAKY = [
  "machine: { type: sim, bugs: [leak-ref] }",
  "schedule:",
  "  steps:",
  "    - add: { nic: a, kind: usb-net }",
  "    - hold: { nic: a, kind: ifnet, for: 1ms }",
  "    - sleep: 5ms",
  "    - add: { nic: c, kind: usb-net }",
  "    - remove: c",
  "    - remove: a",
  "    - add: { nic: b, kind: usb-net }",
  "    - sleep: 5ms",
  "deadlines: { attach: 1s, detach: 1s }",
  "",
].join("\n");

test("a rule broken only after another is shrunk: runs go on to it, the minimal storm keeps going past its first violation", async (t) => {
  const spec = parseStorm(LEAKY, "leaky.yaml");
  const r = await shrinkStorm(spec, { rule: "host-add-attaches", maxRuns: 300 });
  t.is(r.rule, "host-add-attaches");
  t.is(r.after, "host-remove-frees");
  t.is(r.consequenceOf, "host-remove-frees");
  t.true(r.steps.length < r.originalSteps, `${r.originalSteps} -> ${r.steps.length}`);
  t.false(r.spec.stopOnFirstViolation, "a run of the written storm reaches the rule");
  t.regex(r.yaml, /^stopOnFirstViolation: false$/m);
  t.regex(r.yaml, /^# The storm broke host-remove-frees first: this one runs on past its first violation to reach host-add-attaches\.$/m);
  t.deepEqual(r.final.failedRules, ["host-remove-frees", "host-add-attaches"]);

  // The first rule broken shrinks as it always did: its runs stop at the first violation.
  const first = await shrinkStorm(spec, { maxRuns: 300 });
  t.is(first.rule, "host-remove-frees");
  t.is(first.after, undefined);
  t.true(first.spec.stopOnFirstViolation);
});

test("shrink says why it cannot: an unknown rule, and a rule not broken even past the first violation", async (t) => {
  const spec = parseStorm(LEAKY, "leaky.yaml");
  await t.throwsAsync(shrinkStorm(spec, { rule: "nosuch" }), { instanceOf: ShrinkError, message: 'no rule "nosuch" (plugstorm model rules lists them)' });
  await t.throwsAsync(shrinkStorm(spec, { rule: "free-once" }), {
    instanceOf: ShrinkError,
    message: "the storm does not break rule free-once with seed 1, not even after its first violation (it breaks: host-remove-frees, host-add-attaches)",
  });
});

test("plugstorm shrink: --rule names a rule as check's does, --quiet prints only the file written", async (t) => {
  const dir = tempDir(t);
  const storm = join(dir, "leaky.yaml");
  writeFileSync(storm, LEAKY);
  const nosuch = await run(t, ["shrink", join(dir, "none.pstrace"), "--rule", "nosuch"]);
  t.is(nosuch.code, 2);
  t.is(nosuch.stderr.split("\n")[0], 'plugstorm shrink: --rule: no rule "nosuch" (plugstorm model rules lists them)');
  const check = await run(t, ["check", join(dir, "none.pstrace"), "--rule", "nosuch"]);
  t.is(check.stderr.split("\n")[0], 'plugstorm check: --rule: no rule "nosuch" (plugstorm model rules lists them)');

  const out = join(dir, "min.yaml");
  const quiet = await run(t, ["shrink", storm, "--rule", "host-add-attaches", "--quiet", "-o", out]);
  t.is(quiet.code, 1, quiet.stderr);
  t.is(quiet.stdout, `${out}\n`);
  t.is(quiet.stderr, "");
  t.regex(readFileSync(out, "utf8"), /still breaks rule host-add-attaches/);
  const loud = await run(t, ["shrink", storm, "--rule", "host-add-attaches", "-o", out]);
  t.is(loud.code, 1, loud.stderr);
  t.regex(loud.stdout, /^rule host-add-attaches: \d+ steps -> \d+ \(\d+ runs\)\n {2}the storm broke host-remove-frees first: the shrunk storm runs on past its first violation\n {2}there host-add-attaches is a consequence of host-remove-frees \(docs\/cascades\.md\): --rule host-remove-frees shrinks the cause\nwritten: /);
});
