// The VM fixture as a test file uses it: one machine for the file, storms in
// serial tests, stopped in after.always. Shown on the sim machine (fast); the
// same code takes { type: "qemu", profile: "bare" }.
import test from "ava";
import { startVm, type VmFixture } from "../../src/storm/index.js";

let vm: VmFixture | undefined;
test.before(async () => {
  vm = await startVm({ machine: { type: "sim" } });
});
test.after.always(async () => {
  await vm?.stop();
});

const storm = { machine: { type: "sim" as const }, schedule: { cycles: 5, seed: 2 } };

test.serial("a first storm on the machine", async (t) => {
  const r = await vm!.storm(storm);
  t.is(r.status, "clean");
  t.is(r.cyclesDone, 5);
  t.true(r.frames > 0);
});

test.serial("a second storm continues the guest's session", async (t) => {
  const r = await vm!.storm(storm);
  t.is(r.status, "clean", r.verdicts.map((v) => v.text).join("\n"));
  t.is(r.cyclesDone, 5);
  t.true(r.executed.length > 0);
});
