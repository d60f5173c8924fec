import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCampaign } from "../../src/campaign/index.js";
import { ScenarioError } from "../../src/storm/index.js";

const STORM = `name: tiny
machine: { type: sim }
nics:
  mix:
    - { kind: usb-net, count: 2 }
schedule: { cycles: 10, maxInFlight: 2, seed: 3 }
`;

function dir(t: { teardown(f: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), "plugstorm-campaign-v-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  writeFileSync(join(d, "tiny.yaml"), STORM);
  return d;
}

async function issues(text: string, base: string): Promise<string[]> {
  try {
    await parseCampaign(text, "c.yaml", base);
  } catch (e) {
    if (e instanceof ScenarioError) return e.message.split("\n");
    throw e;
  }
  throw new Error("expected the campaign to be rejected");
}

test("storms × machines × seeds × repetitions expand into jobs with stable ids", async (t) => {
  const d = dir(t);
  const text = `name: c
storms:
  - tiny.yaml
  - name: inline
    storm: { machine: { type: sim }, schedule: { cycles: 5 } }
    seeds: [9]
machines:
  - { name: a, machine: { type: sim } }
  - { name: b, machine: { bugs: [leak-ref] } }
seeds: 1..3
repetitions: 2
parallelism: 3
budget: 2m
attempts: 4
shrink: false
`;
  const c = await parseCampaign(text, "c.yaml", d);
  t.is(c.jobs.length, 3 * 2 * 2 + 1 * 2 * 2);
  t.deepEqual(c.machines, ["a", "b"]);
  t.is(c.parallelism, 3);
  t.is(c.budgetMs, 120_000);
  t.is(c.attempts, 4);
  t.is(c.shrinkRuns, 0);
  t.truthy(c.jobs.find((j) => j.id === "tiny.b.s2.r2"));
  t.truthy(c.jobs.find((j) => j.id === "inline.a.s9.r1"));
  const leaky = c.jobs.find((j) => j.id === "tiny.b.s1.r1")!;
  t.deepEqual((leaky.input.machine as { bugs?: string[] }).bugs, ["leak-ref"]);
  const clean = c.jobs.find((j) => j.id === "tiny.a.s1.r1")!;
  t.not(leaky.hash, clean.hash);
  // The same file gives the same ids and hashes (what --resume relies on).
  const again = await parseCampaign(text, "c.yaml", d);
  t.deepEqual(again.jobs.map((j) => [j.id, j.hash]), c.jobs.map((j) => [j.id, j.hash]));
  t.is(new Set(c.jobs.map((j) => j.id)).size, c.jobs.length);
});

test("every problem is reported with file, line, column and field, before anything runs", async (t) => {
  const d = dir(t);
  const lines = await issues(
    `name: c
storms:
  - missing.yaml
  - name: inline
    storm: { machine: { type: sim }, nics: { mix: [ { kind: usb-nett } ] } }
machines:
  - { name: a, machine: { typo: 1 } }
seeds: 5..2
paralelism: 2
`,
    d,
  );
  t.true(lines.some((l) => l.startsWith("c.yaml:3:5: storms[0]: missing.yaml: no such file")), lines.join("\n"));
  t.true(lines.some((l) => /^c\.yaml:5:\d+: storms\[1\]\.storm\.nics\.mix\[0\]\.kind: expected one of .*did you mean "usb-net"/.test(l)), lines.join("\n"));
  t.true(lines.some((l) => /^c\.yaml:7:\d+: machines\[0\]\.machine\.typo: unknown key "typo"/.test(l)), lines.join("\n"));
  t.true(lines.some((l) => /^c\.yaml:8:8: seeds: expected a range A\.\.B with A <= B/.test(l)), lines.join("\n"));
  t.true(lines.some((l) => /^c\.yaml:9:1: paralelism: unknown key .*did you mean "parallelism"/.test(l)), lines.join("\n"));
});

test("a storm file's own problems keep that file's positions", async (t) => {
  const d = dir(t);
  writeFileSync(join(d, "bad.yaml"), "name: bad\nmachine: { type: sim }\nschedule: { cycles: -1 }\n");
  const lines = await issues("storms: [bad.yaml]\n", d);
  t.true(lines.some((l) => l.startsWith(`${join(d, "bad.yaml")}:3:21: schedule.cycles: expected an integer`)), lines.join("\n"));
});

test("a machine override that does not fit a storm names the storm and the machine", async (t) => {
  const d = dir(t);
  writeFileSync(join(d, "pc.yaml"), "name: pc\nmachine: { type: sim }\nnics: { mix: [ { kind: pcmcia-ne2000 } ] }\n");
  const lines = await issues(`storms: [pc.yaml]\nmachines:\n  - { name: q, machine: { type: qemu, profile: bare } }\n`, d);
  t.true(lines.some((l) => l.includes(`storm "pc" (c.yaml:1:10) on machine "q" (c.yaml:3:5)`) && l.includes("PCMCIA")), lines.join("\n"));
});

test("seeds: a number, a list, a range, { from, count }; duplicates and bad names are refused", async (t) => {
  const d = dir(t);
  for (const [s, n] of [["7", 1], ["[1, 4, 9]", 3], ['"10..19"', 10], ["{ from: 100, count: 5 }", 5]] as const) {
    const c = await parseCampaign(`storms: [tiny.yaml]\nseeds: ${s}\n`, "c.yaml", d);
    t.is(c.jobs.length, n, s);
  }
  const lines = await issues(`storms: [tiny.yaml, tiny.yaml]\nseeds: [1, 1]\n`, d);
  t.true(lines.some((l) => /seeds\[1\]: seed 1 is listed twice/.test(l)));
  t.true(lines.some((l) => /storms\[1\]: a storm named "tiny" is listed already/.test(l)));
});
