import test from "ava";
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { HOST_RESERVE_MB, atATimeText, defaultParallelism, parallelismWarnings } from "../../src/campaign/index.js";
import { run, tempDir } from "../cli/helpers.js";

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

test("a parallelism past the host's cores (sim jobs) or memory is allowed, with a warning saying what it costs", (t) => {
  const host = { cores: 2, availableMb: 8192 };
  const sims = Array.from({ length: 12 }, () => ({ memoryMb: 200, sim: true }));
  t.deepEqual(parallelismWarnings(2, sims, "--parallelism", host), [], "one a core");
  t.deepEqual(parallelismWarnings(1000, sims, "--parallelism", host), [
    "--parallelism 1000 runs up to 12 sim jobs at once on this host's 2 cores: past one a core they only share them (each slower, the campaign no sooner done)",
  ]);
  t.deepEqual(parallelismWarnings(1000, sims.slice(0, 2), "--parallelism", host), [], "no more at once than there are jobs");
  // QEMU jobs: their guests' memory is what runs out.
  const guests = Array.from({ length: 4 }, () => ({ memoryMb: 2348, sim: false }));
  t.deepEqual(parallelismWarnings(3, guests, "the campaign file's parallelism", host), [], "3 × 2348 fits in 8192 - 512");
  t.deepEqual(parallelismWarnings(4, guests, "the campaign file's parallelism", host), [
    `the campaign file's parallelism 4 runs up to 4 jobs of up to 2348 MiB at once: 9392 MiB, more than the ${8192 - HOST_RESERVE_MB} MiB available here (8192 MiB less ${HOST_RESERVE_MB} for the host)`,
  ]);
});

test("the header's jobs at a time: never more than the jobs, and pointing at the warnings when there are any", (t) => {
  t.is(atATimeText(2, 12, "--parallelism", 0), "2 at a time (--parallelism)");
  t.is(atATimeText(12, 12, "--parallelism", 0), "12 at a time (--parallelism)");
  t.is(atATimeText(1000, 3, "the campaign file's parallelism", 0), "all 3 at once (the campaign file's parallelism 1000, more than there are jobs)");
  t.is(atATimeText(8, 12, "--parallelism", 2), "8 at a time (--parallelism), more than this host has room for: see the warnings below");
});

test("campaign --parallelism past this host's cores runs, and says so in a warning after the header", async (t) => {
  const d = tempDir(t);
  const jobs = availableParallelism() + 1;
  writeFileSync(join(d, "tiny.yaml"), "name: tiny\nmachine: { type: sim }\nschedule: { cycles: 5 }\n");
  writeFileSync(join(d, "c.yaml"), `name: wide\nstorms: [tiny.yaml]\nseeds: 1..${jobs}\nshrink: false\n`);
  const r = await run(t, ["campaign", join(d, "c.yaml"), "--out", join(d, "out"), "--parallelism", "1000"], { timeoutMs: 90_000 });
  t.is(r.code, 0, r.stderr);
  const lines = r.stderr.split("\n");
  // Not "1000 at a time": the header says what runs, and points at the warning that says what it costs.
  t.is(lines[0], `campaign "wide": ${jobs} jobs, all ${jobs} at once (--parallelism 1000, more than there are jobs), more than this host has room for: see the warning below`);
  t.is(lines[1], `warning: --parallelism 1000 runs up to ${jobs} sim jobs at once on this host's ${availableParallelism()} cores: past one a core they only share them (each slower, the campaign no sooner done)`);
});
