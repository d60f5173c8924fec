// The example storms a person finds in scripts/storms run as they are. The
// simulated ones run here, in full; the QEMU ones run in test/cli (bare: the
// "no guest telemetry" verdict) and test/e2e (the Linux guest).
import test from "ava";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { loadStormFile, runStorm } from "../../src/storm/index.js";

const dir = join(process.cwd(), "scripts", "storms");
const files = readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort();

test("there are simulated example storms to run", async (t) => {
  let sims = 0;
  for (const f of files) if ((await loadStormFile(join(dir, f))).spec.machine.type === "sim") sims++;
  t.true(sims >= 3, `${sims} simulated example storms`);
});

for (const f of files) {
  test(`scripts/storms/${f} runs clean as it is (sim) or is a QEMU storm`, async (t) => {
    const { spec, text } = await loadStormFile(join(dir, f));
    if (spec.machine.type !== "sim") {
      t.regex(spec.machine.profile, /^(bare|linux-guest|netbsd-guest)$/);
      return;
    }
    const r = await runStorm(spec, { out: null, scenarioText: text });
    const failing = r.verdicts.filter((v) => v.failing).map((v) => `${v.rule}: ${v.message}`);
    t.deepEqual(failing, [], `${f} should pass on a correct simulated kernel`);
    t.is(r.status, "clean");
    t.is(r.exitCode, 0);
    t.true(r.cyclesDone > 0, "it plugged something");
    t.true(r.frames > 0, "the simulated guest talked");
    t.is(r.framesLost, 0);
  });
}
