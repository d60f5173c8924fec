import test from "ava";
import { HOST_RESERVE_MB, defaultParallelism } from "../../src/campaign/index.js";

test("default parallelism: one job per core while memory holds them all, at least one, never more than the jobs", (t) => {
  t.is(defaultParallelism(Array(10).fill(200), { cores: 8, availableMb: 64_000 }).n, 8, "cores bound");
  // QEMU guests of 2 GiB (+300 MiB): 8 GiB available holds 3 after the host's share.
  const q = defaultParallelism(Array(10).fill(2048 + 300), { cores: 8, availableMb: 8192 });
  t.is(q.n, Math.floor((8192 - HOST_RESERVE_MB) / 2348));
  t.regex(q.why, /min\(8 cores, \(8192 MiB available - 512 MiB for the host\) \/ 2348 MiB per job = 3\)/);
  t.is(defaultParallelism(Array(10).fill(4096), { cores: 8, availableMb: 1000 }).n, 1, "at least one");
  t.is(defaultParallelism([200, 200], { cores: 8, availableMb: 64_000 }).n, 2, "no idle workers");
  // The largest job decides.
  t.is(defaultParallelism([200, 3000, 200, 200, 200], { cores: 16, availableMb: 10_000 }).n, 3);
});
