import test from "ava";
import { lifecycleProblems } from "./expect.js";
import { runStorm } from "./storm.js";

// 10,000 hot-plug cycles across 20 seeds, USB and PCMCIA at once, with held
// references released during detach, traffic, open nodes, and the sick case.
const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);
const CYCLES_PER_SEED = 500;

for (let g = 0; g < 4; g++) {
  const seeds = SEEDS.slice(g * 5, g * 5 + 5);
  test.serial(`clean storms, seeds ${seeds.join(",")}: every NIC attached, detached and freed exactly once`, async (t) => {
    let cycles = 0;
    let sick = 0;
    let holds = 0;
    for (const seed of seeds) {
      const { h, stats } = await runStorm({ seed, cycles: CYCLES_PER_SEED });
      t.deepEqual(lifecycleProblems(h), [], `seed ${seed}`);
      t.is(h.m.kernel.devices.size, 0, `seed ${seed}: devices left in the kernel`);
      cycles += stats.cycles;
      sick += stats.sick;
      holds += stats.holds;
    }
    t.is(cycles, seeds.length * CYCLES_PER_SEED);
    // The storms must really have exercised the sick case and held references.
    t.true(sick > 0, "no sick case ran");
    t.true(holds > 100, `only ${holds} cycles held references`);
  });
}
