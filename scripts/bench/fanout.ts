// What live-view readers cost a running storm: a sim storm through the full
// runner feeding a live view, with no reader (the baseline) and with 200
// reading JSON clients (batched JSON, as the live page reads it:
// PROTOCOL.md). Goal (issue #14): 200 readers cost at most 20% of the
// storm's throughput, a ratio of at least 0.80.
//
// The readers run in another process, as browsers would, so their work is
// not billed to the storm's event loop. On a 2-core machine they still
// compete with the storm for CPU (ws inflates every batch for each of them,
// as they read): the goal line keeps them on one core and the storm (this
// process, every thread of it, baseline runs too) on another (taskset), so
// the readers stand for browsers on machines of their own and the ratio is
// what serving them costs the storm; a second line lets the readers use
// every core, as they would if run beside the storm. The live view serves
// them from a thread of its own (src/serve/live-thread.ts), which the goal
// line keeps beside the readers, on the core the storm leaves free (in the
// baseline too). The storm's thread's CPU time per cycle is the cost that
// does not depend on how the machine is shared; the live view's thread's is
// printed apart.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startLiveServer } from "../../src/serve/index.js";
import { DEFAULT_STORM, runStorm, validateStorm } from "../../src/storm/index.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "a sim storm's cycles/s with 200 live-view JSON readers against none";

/**
 * Cycles per run: at ~2,000 cycles/s and 200 ms batch windows a 1,000-cycle
 * run was 2 or 3 windows, and the ratio moved in steps of a whole batch;
 * 5,000 make a dozen or more. Same storm, only longer.
 */
const CYCLES = 5000;
const READERS = 200;
/**
 * Rounds, each a baseline run then the reader runs. Five, not three: on this
 * shared host one run in three or four is slowed by the neighbours (a round's
 * ratio ran 0.59-1.08 for the same build), and the goal line takes each
 * side's best round, as the storm bench does, so one quiet round per side is
 * what it needs.
 */
const RUNS = 5;

interface Run {
  rate: number;
  /** CPU ms of the storm's thread per cycle. */
  cpuPerCycle: number;
  /** CPU ms of the live view's thread (live-thread.ts) per cycle. */
  feedPerCycle: number;
  read: number;
  missed: number;
  records: number;
}

/** The core the readers are kept on, when the machine has two or more and taskset is there. */
const READER_CORE = availableParallelism() >= 2 && spawnSync("taskset", ["-V"]).status === 0 ? availableParallelism() - 1 : undefined;
/** The core the storm is kept on, away from the pinned readers. */
const STORM_CORE = 0;

/** Keeps this process, all its threads (V8's, libuv's), on one core; threads started later inherit it. */
function pinSelf(core: number): void {
  const r = spawnSync("taskset", ["-a", "-p", "-c", String(core), String(process.pid)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`bench fanout: taskset could not keep the storm on core ${core}: ${r.stderr.trim()}`);
}

/** This process's threads now. */
const threads = (): Set<string> => new Set(readdirSync("/proc/self/task"));

/**
 * CPU ms the given threads have run (schedstat's first field, ns): the
 * storm's own thread apart from the live view's, which process.cpuUsage()
 * would add together.
 */
function threadCpuMs(tids: readonly string[]): number {
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // Gone: counted up to its end by the reading before.
    }
  }
  return ns / 1e6;
}

/**
 * Keeps the live view's thread (the threads startLiveServer started) on the
 * given cores: it serves the readers, so on the goal line it works beside
 * them, as it would on a core the storm does not use.
 */
function pinThreads(tids: string[], cores: string): void {
  for (const tid of tids) {
    const r = spawnSync("taskset", ["-p", "-c", cores, tid], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`bench fanout: taskset could not move the live view's thread ${tid} to cores ${cores}: ${r.stderr.trim()}`);
  }
}

/**
 * One run. oneCore: the readers kept on their core; withStorm: the live
 * view's thread kept on the storm's core (a host with no core to spare),
 * else on the readers' (or on every core when the readers are too).
 */
async function measure(readers: number, oneCore: boolean, withStorm = false): Promise<Run> {
  const before = threads();
  const feed = await startLiveServer();
  const feedThreads = [...threads()].filter((t) => !before.has(t));
  if (READER_CORE !== undefined) {
    pinThreads(feedThreads, withStorm ? String(STORM_CORE) : oneCore || readers === 0 ? String(READER_CORE) : `0-${availableParallelism() - 1}`);
  }
  const storm = [String(process.pid)];
  const argv = [process.execPath, fileURLToPath(new URL("./lib/fanout-clients.js", import.meta.url)), `${feed.feedUrl}?format=json&batch=1`, String(readers)];
  if (oneCore && READER_CORE !== undefined) argv.unshift("taskset", "-c", String(READER_CORE));
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  const next = (): Promise<string> => new Promise((resolve) => lines.once("line", resolve));
  try {
    await next();
    const spec = validateStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule!, cycles: CYCLES } });
    const cpu0 = threadCpuMs(storm);
    const feed0 = threadCpuMs(feedThreads);
    const t0 = performance.now();
    const r = await runStorm(spec, { out: null, live: feed });
    const ms = performance.now() - t0;
    const cpu = threadCpuMs(storm) - cpu0;
    const feedCpu = threadCpuMs(feedThreads) - feed0;
    // Let the readers drain a little, then ask what they got.
    await new Promise((res) => setTimeout(res, 500));
    child.stdin.write("count\n");
    const [read, missed] = (await next()).split(" ").map(Number);
    return { rate: (r.cyclesDone * 1000) / ms, cpuPerCycle: cpu / r.cyclesDone, feedPerCycle: feedCpu / r.cyclesDone, read: read!, missed: missed!, records: r.records };
  } finally {
    child.stdin.end();
    await new Promise((res) => child.once("exit", res));
    await feed.close();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;

export async function run(): Promise<void> {
  if (READER_CORE !== undefined) pinSelf(STORM_CORE);
  await measure(0, false); // warm-up
  // Alternated, each with readers against the baseline just before it: load
  // from others on a shared machine hits both sides of a ratio alike.
  const base: Run[] = [];
  const pinned: Run[] = [];
  const free: Run[] = [];
  const baseShared: Run[] = [];
  const pinnedShared: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    base.push(await measure(0, false));
    pinned.push(await measure(READERS, true));
    free.push(await measure(READERS, false));
    if (READER_CORE !== undefined) {
      baseShared.push(await measure(0, false, true));
      pinnedShared.push(await measure(READERS, true, true));
    }
  }
  const ratios = (xs: Run[]): number[] => xs.map((x, i) => x.rate / base[i]!.rate);
  const cpu = pinned.map((x, i) => base[i]!.cpuPerCycle / x.cpuPerCycle);
  // Each side's best round: the neighbours only ever slow a run, so the
  // fastest is the least disturbed (the storm bench keeps best runs too).
  const best = (xs: Run[]): number => Math.max(...xs.map((x) => x.rate));
  const leastCpu = (xs: Run[]): number => Math.min(...xs.map((x) => x.cpuPerCycle));
  const last = pinned[pinned.length - 1]!;
  const where = READER_CORE === undefined ? "sharing every core (no taskset or one core)" : `kept on core ${READER_CORE}, the storm on core ${STORM_CORE}`;
  console.log(`baseline  no readers                     ${Math.round(best(base))} cycles/s (best of ${RUNS} runs of ${CYCLES} cycles; median ${Math.round(median(base.map((b) => b.rate)))})`);
  console.log(
    `${READERS} reading JSON clients ${where}: ${(best(pinned) / best(base)).toFixed(2)}x baseline, best round of each (goal >= 0.80); ` +
      `round by round ${spread(ratios(pinned))}, median ${median(ratios(pinned)).toFixed(2)}x; ` +
      `${last.read} messages read (${(last.read / READERS).toFixed(0)} per client, ${last.records} records), ${last.missed} "missed"`,
  );
  console.log(
    `  the storm's thread's CPU time per cycle: ${(leastCpu(base) / leastCpu(pinned)).toFixed(2)}x baseline's, least of each (round by round ${spread(cpu)}), what the storm itself spends on them`,
  );
  // The ratio above falls as the storm gets faster for the same feed; this
  // is the feed's own cost, which does not depend on the storm's speed.
  const perCycle = leastCpu(pinned) - leastCpu(base);
  const recordsPerCycle = last.records / CYCLES;
  const perRecord = (msPerCycle: number): string => `${((msPerCycle * 1000) / recordsPerCycle).toFixed(2)} µs`;
  console.log(
    `  what the readers cost the storm's thread: ${perRecord(perCycle)} of CPU a record (${(perCycle * CYCLES).toFixed(0)} ms a ${CYCLES}-cycle run of ${last.records} records), least of each side`,
  );
  // Not the storm's, but the machine's: what serving the view takes on the core it runs on.
  const leastFeed = (xs: Run[]): number => Math.min(...xs.map((x) => x.feedPerCycle));
  console.log(
    `  the live view's own thread: ${perRecord(leastFeed(base))} of CPU a record with no reader, ${perRecord(leastFeed(pinned))} with ${READERS}, least of each`,
  );
  if (READER_CORE !== undefined) {
    console.log(
      `${READERS} reading JSON clients on core ${READER_CORE}, the live view's thread kept on the storm's core ${STORM_CORE} (a host with no core to spare for it): ` +
        `${(best(pinnedShared) / best(baseShared)).toFixed(2)}x its own baseline (${Math.round(best(baseShared))} cycles/s), best round of each (round by round ` +
        `${spread(pinnedShared.map((x, i) => x.rate / baseShared[i]!.rate))})`,
    );
  }
  console.log(
    `${READERS} reading JSON clients on every core: ${(best(free) / best(base)).toFixed(2)}x baseline, best round of each (round by round ${spread(ratios(free))}); ` +
      `on a 2-core machine the readers' own work takes CPU from the storm`,
  );
}
