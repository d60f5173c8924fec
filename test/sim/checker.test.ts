import test from "ava";
import { checkRecords, formatVerdict } from "../../src/check/index.js";
import { BUG_RULES } from "../../src/model/index.js";
import { BUG_NAMES } from "../../src/sim/index.js";
import { lifecycleProblems } from "./expect.js";
import { Harness } from "./harness.js";
import { runBugScenario, sickCase } from "./scenarios.js";
import { runStorm } from "./storm.js";

function verdictsOf(h: Harness): ReturnType<typeof checkRecords>["verdicts"] {
  return checkRecords(h.records, { profile: "netbsd" }).verdicts;
}

function show(vs: ReturnType<typeof verdictsOf>): string {
  return vs.slice(0, 3).map(formatVerdict).join("\n");
}

test("every sim bug has a rule in the model and every BUG_RULES entry is a sim bug", (t) => {
  t.deepEqual(Object.keys(BUG_RULES).sort(), [...BUG_NAMES].sort());
});

for (const bug of BUG_NAMES) {
  test(`bug ${bug} is caught first by ${BUG_RULES[bug] ?? "?"}`, async (t) => {
    const h = await runBugScenario(bug, bug);
    const vs = verdictsOf(h);
    t.true(vs.length > 0, `no verdict for ${bug}`);
    t.is(vs[0]!.rule, BUG_RULES[bug] ?? "(no rule)", show(vs));
  });

  test(`the ${bug} scenario without the bug is clean`, async (t) => {
    const h = await runBugScenario(null, bug);
    const vs = verdictsOf(h);
    t.deepEqual(vs.map((v) => v.rule), [], show(vs));
  });
}

test("the lifecycle expectations notice a double free", async (t) => {
  const h = await runBugScenario("unload-double-free", "unload-double-free");
  t.true(lifecycleProblems(h).some((p) => /freed 2 times/.test(p)), lifecycleProblems(h).join("\n"));
});

for (const kind of ["usb-net", "pcmcia-ne2000"] as const) {
  for (const order of ["unload-first", "remove-first"] as const) {
    test(`sick case ${kind} ${order} gives no verdict`, async (t) => {
      const h = new Harness({ seed: 21 });
      try {
        await h.start();
        await sickCase(h, kind, order);
      } finally {
        await h.stop();
      }
      const vs = verdictsOf(h);
      t.deepEqual(vs.map((v) => v.rule), [], show(vs));
    });
  }
}

test("clean storms give no verdict", async (t) => {
  for (const seed of [1, 2]) {
    const { h } = await runStorm({ seed, cycles: 300, sickP: 0.03 });
    t.deepEqual(lifecycleProblems(h), []);
    const vs = verdictsOf(h);
    t.deepEqual(vs.map((v) => v.rule), [], `seed ${seed}:\n${show(vs)}`);
  }
});
