// Benchmark: a fresh campaign worker's warm-up, and V8 flags against it.
// Two fresh workers on two cores run no faster than one (bench campaign)
// because each pays V8's warm-up, most of it optimising compiles on helper
// threads that a lone worker gets from the idle core. Here one fresh worker
// per flag set runs the same 12 sim jobs one after another; each set's CPU
// (all threads, and the JavaScript thread's) is printed as a ratio against
// the workers without extra flags, measured in the same run, with the first
// jobs' share apart (the warm-up) from the last ones' (warm).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WorkerPool, parseCampaign, type CampaignSpec } from "../../src/campaign/index.js";
import { WORKER_V8_FLAGS } from "../../src/campaign/pool.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "a fresh campaign worker's CPU for 12 sim jobs per V8 flag set, against no flags";

const STORM = `    storm:
      name: warmup
      machine: { type: sim }
      nics: { mix: [ { kind: usb-net, count: 4 } ] }
      schedule: { cycles: 400, maxInFlight: 3, dwell: { uniform: { min: 1ms, max: 8ms } } }
      holders:
        - { kind: ifnet, count: 2, probability: 0.5, hold: { exponential: { mean: 4ms, max: 30ms } } }`;

const JOBS = 12;
/** Jobs counted as the warm-up; the rest are the warm part. */
const FIRST = 4;

/** Flag sets tried; the first (no flags at all) is the baseline; the pool's default (WORKER_V8_FLAGS) is added when it has any. */
const FLAG_SETS: readonly (readonly string[])[] = [[], ...(WORKER_V8_FLAGS.length ? [WORKER_V8_FLAGS] : []), ["--max-semi-space-size=32"], ["--always-sparkplug"], ["--no-turbo-inlining"]];

interface Cpu {
  all: number;
  main: number;
}

/** CPU of each job of one fresh worker (ms), in order; main is null where the system does not say. */
async function perJob(spec: CampaignSpec, flags: readonly string[], dir: string): Promise<Cpu[]> {
  // Exactly the flags named: none added for a pool that takes every core (a 1-core host).
  const pool = new WorkerPool(1, { v8Flags: flags, allCoresV8Flags: [] });
  const out: Cpu[] = [];
  try {
    let prev: Cpu | null = null;
    for (const job of spec.jobs) {
      await pool.run(job, dir);
      const k = pool.stats()[0]!;
      if (k.mainCpuMs === null) throw new Error("bench warmup: this system does not say a thread's CPU time (/proc/thread-self/stat)");
      const now = { all: k.cpuMs, main: k.mainCpuMs };
      // The first job's share starts after Node's start-up and loading the code.
      const from = prev ?? { all: k.startCpuMs, main: Math.min(k.startCpuMs, k.mainCpuMs) };
      out.push({ all: now.all - from.all, main: now.main - from.main });
      prev = now;
    }
  } finally {
    await pool.stop();
  }
  return out;
}

const total = (xs: Cpu[]): Cpu => xs.reduce((s, x) => ({ all: s.all + x.all, main: s.main + x.main }), { all: 0, main: 0 });
const s2 = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

export async function run(): Promise<void> {
  const spec = await parseCampaign(`name: warmup\nstorms:\n  - ${STORM.trimStart()}\nseeds: { from: 1, count: ${JOBS} }\nshrink: false\n`, "<bench warmup>");
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-bench-warmup-"));
  try {
    let base: { first: Cpu; rest: Cpu } | null = null;
    for (const flags of FLAG_SETS) {
      const jobs = await perJob(spec, flags, dir);
      const first = total(jobs.slice(0, FIRST));
      const rest = total(jobs.slice(FIRST));
      base ??= { first, rest };
      const r = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;
      console.log(
        `fresh worker, ${JOBS} sim jobs of 400 cycles, flags ${flags.length ? flags.join(" ") : "(none)"}: ` +
          `first ${FIRST} jobs CPU ${s2(first.all)} (main thread ${s2(first.main)}, helpers ${s2(first.all - first.main)}), ` +
          `last ${JOBS - FIRST} ${s2(rest.all)} (main ${s2(rest.main)}); against no flags: ` +
          `first jobs CPU ${r(first.all, base.first.all)}, main ${r(first.main, base.first.main)}; last jobs CPU ${r(rest.all, base.rest.all)}, main ${r(rest.main, base.rest.main)}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
