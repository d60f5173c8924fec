// An injected sim bug counts its strikes (each time it changed what the
// kernel did), and one that never struck is said: the run did not test it,
// however clean. In the result, the summary, report.json, --json and the
// trace's marks; --quiet and --json, which print no summary, warn on stderr.

import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_STORM, parseStorm, runStorm, validateStorm } from "../../src/storm/index.js";
import { BUG_TRIGGERS } from "../../src/sim/index.js";
import { run, tempDir } from "../cli/helpers.js";

const withBugs = (...bugs: string[]) => validateStorm({ ...DEFAULT_STORM, machine: { type: "sim", bugs } });

test("the built-in storm gives acquire-after-detach no strike: 0 strikes, what it needs, a warning in the summary, report.json and a mark", async (t) => {
  const out = join(tempDir(t), "run");
  const r = await runStorm(withBugs("acquire-after-detach"), { out });
  t.is(r.status, "clean", "judged by the rules alone: none broke");
  t.is(r.exitCode, 0);
  t.deepEqual(r.bugStrikes, [{ bug: "acquire-after-detach", strikes: 0, needs: BUG_TRIGGERS["acquire-after-detach"] }]);
  t.regex(r.reportText!, /^ {2}machine: sim · bugs: acquire-after-detach\n {2}warning: bug acquire-after-detach never struck: its trigger needs a reference taken on a device whose detach has begun/m);
  const json = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as { bugStrikes: unknown };
  t.deepEqual(json.bugStrikes, r.bugStrikes);
  const cat = await run(t, ["trace", "cat", join(out, "trace.pstrace")]);
  t.regex(cat.stdout, /mark name=bug-strikes detail="\{\\"acquire-after-detach\\":0\}"/);
});

test("leak-ref strikes on the built-in storm: counted, said in the summary and marked", async (t) => {
  const out = join(tempDir(t), "run");
  const r = await runStorm(withBugs("leak-ref", "double-detach-race"), { out });
  t.is(r.status, "violations");
  const [leak, race] = r.bugStrikes;
  t.is(leak!.bug, "leak-ref");
  t.true(leak!.strikes > 0, `${leak!.strikes}`);
  t.is(leak!.needs, undefined);
  t.like(race, { bug: "double-detach-race", strikes: 0 });
  t.regex(r.reportText!, new RegExp(`^ {2}bug leak-ref struck ${leak!.strikes} times?$`, "m"));
  t.regex(r.reportText!, /^ {2}warning: bug double-detach-race never struck: its trigger needs a second detach of a device while one runs/m);
  const cat = await run(t, ["trace", "cat", join(out, "trace.pstrace")]);
  t.regex(cat.stdout, new RegExp(`mark name=bug-strikes detail="\\{\\\\"leak-ref\\\\":${leak!.strikes},\\\\"double-detach-race\\\\":0\\}"`));
});

test("a bug drawn where it changes nothing is no strike: a race needs a second detach, a timed-out wait a reference held past it", async (t) => {
  // The sick case on a USB NIC with an ifnet reference held across the pull: the unload's detach and the unplug's overlap.
  const sick = (bug: string, holders: string) =>
    parseStorm(["machine: { type: sim, bugs: [" + bug + "] }", "nics: { mix: [{ kind: usb-net }] }", "schedule: { cycles: 10 }", `holders: [${holders}]`, "sick: { probability: 1 }", "deadlines: { detach: 70s }", ""].join("\n"), "s.yaml");
  const strikes = async (bug: string, holders: string): Promise<number> => (await runStorm(sick(bug, holders), { out: null })).bugStrikes[0]!.strikes;
  t.true((await strikes("double-detach-race", "{ kind: ifnet, hold: until-removal }")) > 0);
  t.true((await strikes("free-under-sleeper", "{ kind: ifnet, hold: until-removal }")) > 0);
  // Every detach draws the race; with nothing held each is over before the other comes.
  t.is(await strikes("double-detach-race", "{ kind: ifnet, hold: 1ms }"), 0);
  t.is(await strikes("detach-wait-timeout", "{ kind: usbnet, hold: 59s }"), 0);
  // One drain a cycle runs out (the other detach of the device sleeps in config_detach_enter).
  t.is(await strikes("detach-wait-timeout", "{ kind: usbnet, hold: 61s }"), 10);
});

test("storm --quiet and --json print no summary: a bug that never struck is a warning on stderr; --json carries bugStrikes", async (t) => {
  const dir = tempDir(t);
  const quiet = await run(t, ["storm", "--bug", "dclose-twice", "--quiet", "--out", join(dir, "q")]);
  t.is(quiet.code, 0, quiet.stderr);
  t.is(quiet.stdout, `${join(dir, "q")}\n`);
  t.is(quiet.stderr, `warning: bug dclose-twice never struck: its trigger needs ${BUG_TRIGGERS["dclose-twice"]}\n`);
  const json = await run(t, ["storm", "--bug", "dclose-twice", "--json", "--out", join(dir, "j")]);
  t.is(json.code, 0, json.stderr);
  t.deepEqual((JSON.parse(json.stdout) as { bugStrikes: unknown }).bugStrikes, [{ bug: "dclose-twice", strikes: 0, needs: BUG_TRIGGERS["dclose-twice"] }]);
  t.regex(json.stderr, /^warning: bug dclose-twice never struck/m);
  const plain = await run(t, ["storm", "--bug", "dclose-twice", "--out", join(dir, "p")]);
  t.is(plain.code, 0, plain.stderr);
  t.regex(plain.stdout, /^ {2}warning: bug dclose-twice never struck/m);
  t.notRegex(plain.stderr, /never struck/, "said once, in the summary");
});
