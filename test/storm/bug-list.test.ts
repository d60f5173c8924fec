// A sim storm's bug list (machine.bugs, --bug, fault steps): entries of one
// bug are one bug with their targets united; entries that disagree on its
// chance, and targets naming nothing in the storm, are refused where they
// are written, before anything runs.

import test from "ava";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseStorm, runStorm } from "../../src/storm/index.js";
import { BugSet } from "../../src/sim/bugs.js";
import { run, tempDir } from "../cli/helpers.js";
import { stormIssues } from "../helpers/storms.js";

/**
 * Two NICs, each holding an ifnet reference that it lets go of before its
 * removal (leak-ref's chance), then time for the deadlines. On two buses: a
 * leak blocks its bus's thread, which would keep the other's detach from
 * even beginning.
 */
function twoNics(bugs: string[]): string {
  return [
    "machine:",
    "  type: sim",
    `  bugs: [${bugs.join(", ")}]`,
    "schedule:",
    "  steps:",
    "    - add: { nic: a, kind: usb-net }",
    "    - add: { nic: b, kind: pcmcia-ne2000 }",
    "    - sleep: 600ms",
    "    - hold: { nic: a, kind: ifnet, for: 1ms }",
    "    - hold: { nic: b, kind: ifnet, for: 1ms }",
    "    - sleep: 10ms",
    "    - remove: a",
    "    - remove: b",
    "    - sleep: 3s",
    "deadlines: { detach: 1s }",
    "",
  ].join("\n");
}

test("two entries of one bug both apply: their targets are united", async (t) => {
  const leakedOn = async (bugs: string[]): Promise<string[]> => {
    const r = await runStorm(parseStorm(twoNics(bugs), "s.yaml"), { out: null });
    return r.verdicts.filter((v) => v.rule === "host-remove-frees").map((v) => v.report.nicId ?? "").sort();
  };
  t.deepEqual(await leakedOn(["leak-ref:a"]), ["a"]);
  t.deepEqual(await leakedOn(["leak-ref:a", "leak-ref:b"]), ["a", "b"]);
  // An entry without a target arms the bug for every subject, whatever the others name.
  t.deepEqual(await leakedOn(["leak-ref:a", "leak-ref"]), ["a", "b"]);
});

test("BugSet refuses a second chance for one bug, and says which entries disagree", (t) => {
  const chance = (): boolean => true;
  t.notThrows(() => new BugSet(["leak-ref:a", "leak-ref@1:b"], chance));
  t.throws(() => new BugSet(["leak-ref@0.5:a", "leak-ref@0.2:b"], chance), {
    message: /^leak-ref has chance 0\.5 in an earlier entry \(leak-ref@0\.5:a\) and 0\.2 here: one bug strikes with one chance/,
  });
});

test("machine.bugs: a second chance for one bug and a target naming nothing are refused at their line and column", (t) => {
  const text = twoNics(["leak-ref@0.5:a", "leak-ref@0.2:b", "lost-detach:nosuch"]);
  const issues = stormIssues(text);
  const line = text.split("\n")[2]!;
  t.deepEqual(issues.map((i) => [i.line, i.col, i.path]), [
    [3, line.indexOf("leak-ref@0.2") + 1, "machine.bugs[1]"],
    [3, line.indexOf("lost-detach") + 1, "machine.bugs[2]"],
  ]);
  t.regex(issues[0]!.message, /^leak-ref has chance 0\.5 in an earlier entry \(leak-ref@0\.5:a\) and 0\.2 here/);
  t.is(issues[1]!.message, 'target "nosuch" names nothing in this storm; a target is one of its NICs (a, b), their devices (cdce0, ne0) or its holders (h-a-ifnet, h-b-ifnet)');
  t.deepEqual(stormIssues(twoNics(["leak-ref:a", "leak-ref:ne0", "leak-ref:h-b-ifnet"])), []);
});

test("a random storm's targets are its NICs nic0..nicN-1, their devices and its holders", (t) => {
  const text = (bug: string): string =>
    ["machine: { type: sim, bugs: [" + bug + "] }", "nics: { mix: [{ kind: pcmcia-ne2000 }] }", "schedule: { cycles: 5 }", "holders: [{ kind: ifnet, count: 2 }]", ""].join("\n");
  for (const ok of ["nic0", "nic4", "ne4", "h-nic3-ifnet.1"]) t.deepEqual(stormIssues(text(`leak-ref:${ok}`)), [], ok);
  for (const bad of ["nic5", "cdce0", "ne5", "h-nic3-ifnet", "h-nic3-ifnet.2", "h-nic3-device.0"]) {
    const issues = stormIssues(text(`leak-ref:${bad}`));
    t.is(issues.length, 1, bad);
    t.is(issues[0]!.message, `target "${bad}" names nothing in this storm; a target is one of its NICs (nic0 … nic4), their devices (ne0 … ne4) or its holders (h-nicN-ifnet.0, h-nicN-ifnet.1)`);
  }
});

test("a fault step arming a bug with another chance than machine.bugs gave it is refused at its arg", (t) => {
  const text = twoNics(["leak-ref"]).replace("    - sleep: 600ms", "    - fault: { name: leak-ref, nic: a, arg: 0.5 }\n    - sleep: 600ms");
  const issues = stormIssues(text);
  t.is(issues.length, 1);
  t.like(issues[0], { line: 8, path: "schedule.steps[2].fault.arg" });
  t.regex(issues[0]!.message, /^leak-ref has chance 1 in an earlier entry \(leak-ref\) and 0\.5 here/);
  t.deepEqual(stormIssues(text.replace("arg: 0.5", "arg: 1")), []);
});

test("storm --bug: a target naming nothing, and a second chance, are refused naming the --bug, before anything runs", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "out");
  const target = await run(t, ["storm", "--bug", "leak-ref@0.5:nosuchtarget", "--out", out]);
  t.is(target.code, 2);
  t.is(
    target.stderr.split("\n")[0],
    'plugstorm storm: --bug leak-ref@0.5:nosuchtarget: target "nosuchtarget" names nothing in this storm; a target is one of its NICs (nic0 … nic1999), their devices (cdce0 … cdce1999, ne0 … ne1999) or its holders (h-nicN-ifnet.0, h-nicN-ifnet.1, h-nicN-device)',
  );
  const chance = await run(t, ["storm", "--bug", "leak-ref@0.5:nic3", "--bug", "leak-ref@0.2:nic7", "--out", out]);
  t.is(chance.code, 2);
  t.regex(chance.stderr.split("\n")[0]!, /^plugstorm storm: --bug leak-ref@0\.2:nic7: leak-ref has chance 0\.5 in an earlier entry \(leak-ref@0\.5:nic3\) and 0\.2 here/);
  const unknown = await run(t, ["storm", "--bug", "leakref", "--out", out]);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr.split("\n")[0]!, /^plugstorm storm: --bug leakref: no such sim bug; known: leak-ref, /);
  t.false(existsSync(out), "nothing was run");
});
