// Storm runner throughput on the sim machine, as ratios against the bare sim
// machine measured in the same run (goal: the runner within 3x of it, with
// trace and reports; the same for the shrinker's repeated runs).
//
// Baseline: the same step list driven straight into a SimMachine whose guest
// agent streams (HelloAck answered) and gets the storm's guest commands as
// encoded host commands, so the machine does the work it does under the
// runner: the guest kernel, the agent and its frame encoding. Nothing is
// decoded, recorded or checked. The earlier baseline (agent never answered,
// so it buffers and never encodes, and no guest commands) is printed too:
// it is the machine doing less than the storm asks, not the same storm.
//
// Every measurement is the best of a few short runs after a warm-up: the
// machine is shared, and the first run pays for JIT compilation.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { plugstorm } from "../../src/gen/plugstorm.js";
import { SimMachine } from "../../src/sim/index.js";
import { DEFAULT_STORM, expandSteps, runStorm, shrinkStorm, validateStorm, type Step, type StormSpec } from "../../src/storm/index.js";
import { encodeHostCommand } from "../../src/telemetry/index.js";

const CYCLES = 400;
const REPEATS = 3;
const GOAL = 3;

type Command = plugstorm.telemetry.v1.ICommand;
const KIND: Record<string, number> = { device: 1, ifnet: 2, usbnet: 3, devsw: 4, vnode: 5, netdev: 6 };

/** The guest command a step sends, as the runner would (null for host-only steps). */
function commandOf(s: Step): Command | null {
  switch (s.op) {
    case "hold":
      return { holdRefs: { serial: s.nic, kind: KIND[s.kind], count: s.count, holdNs: s.forNs, holder: s.holder } };
    case "release":
      return { releaseRefs: { serial: s.nic, kind: KIND[s.kind], holder: s.holder } };
    case "traffic":
      return { startTraffic: { serial: s.nic, packetsPerSecond: s.pps } };
    case "traffic-stop":
      return { stopTraffic: { serial: s.nic } };
    case "detach":
      return { detachDevice: { serial: s.nic, flags: { force: s.force } } };
    case "unload":
    case "sick":
      return { unloadModule: { name: s.module } };
    case "fault":
      return { injectFault: { name: s.name, serial: s.nic ?? "", arg: s.arg } };
    default:
      return null;
  }
}

async function bareMachine(steps: readonly Step[], seed: number, agent: boolean): Promise<number> {
  const m = new SimMachine({ seed });
  let ids = 0;
  const send = (c: Command): void => m.sendTelemetry(encodeHostCommand({ id: ++ids, ...c }));
  if (agent) {
    let acked = false;
    m.observe((o) => {
      if (o.type !== "telemetry-bytes" || acked) return;
      acked = true;
      send({ helloAck: { hostTimeNs: o.tNs } });
    });
  }
  const t0 = performance.now();
  await m.start();
  for (const s of steps) {
    if (s.op === "add") await m.addNic({ kind: s.kind, id: s.nic });
    else if (s.op === "remove") await m.removeNic(s.nic);
    else if (s.op === "sleep") await m.clock.sleep(s.ns);
    else if (agent) {
      const c = commandOf(s);
      if (c) send(c);
      if (s.op === "sick") await m.removeNic(s.nic);
    } else if (s.op === "sick") await m.removeNic(s.nic);
  }
  await m.stop();
  return performance.now() - t0;
}

async function best(n: number, f: () => Promise<number>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < n; i++) b = Math.min(b, await f());
  return b;
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

function spec(cycles: number, extra: Partial<StormSpec> = {}): StormSpec {
  return { ...validateStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule!, cycles } }), ...extra };
}

export async function run(): Promise<void> {
  const s = spec(CYCLES);
  const seed = s.schedule.seed;
  const steps = expandSteps(s);
  // The shrinker replays explicit step lists with no output and stops at the first violation.
  const replay: StormSpec = { ...s, schedule: { ...s.schedule, steps, durationNs: 0 }, stopOnFirstViolation: true };
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-bench-storm-"));
  try {
    // Warm-up: every path once, small.
    const warm = spec(60);
    const warmSteps = expandSteps(warm);
    await bareMachine(warmSteps, seed, true);
    await bareMachine(warmSteps, seed, false);
    await runStorm(warm, { out: join(dir, "warm") });
    await runStorm(warm, { out: null });

    const base = await best(REPEATS, () => bareMachine(steps, seed, true));
    const quiet = await best(REPEATS, () => bareMachine(steps, seed, false));
    let n = 0;
    const full = await best(REPEATS, () => timed(() => runStorm(s, { out: join(dir, `run${n++}`) })));
    const bare = await best(REPEATS, () => timed(() => runStorm(s, { out: null })));
    const shrinkRun = await best(REPEATS, () => timed(() => runStorm(replay, { out: null })));

    const rate = (ms: number): string => `${Math.round((CYCLES * 1000) / ms)} cycles/s`.padStart(14);
    const ratio = (ms: number): string => `${(ms / base).toFixed(2)}x baseline (goal <= ${GOAL}x ${ms / base <= GOAL ? "met" : "NOT met"})`;
    console.log(`storm: ${CYCLES} cycles of the default storm, best of ${REPEATS}`);
    console.log(`baseline  sim machine, same storm, agent streaming  ${base.toFixed(0).padStart(5)} ms ${rate(base)}`);
    console.log(`          sim machine, agent silent (older baseline) ${quiet.toFixed(0).padStart(5)} ms ${rate(quiet)}  (runner full = ${(full / quiet).toFixed(2)}x this)`);
    console.log(`runner    trace + reports                            ${full.toFixed(0).padStart(5)} ms ${rate(full)}  ${ratio(full)}`);
    console.log(`runner    no output                                  ${bare.toFixed(0).padStart(5)} ms ${rate(bare)}  ${ratio(bare)}`);
    console.log(`shrinker  one replay of the step list                ${shrinkRun.toFixed(0).padStart(5)} ms ${rate(shrinkRun)}  ${ratio(shrinkRun)}`);

    // A real shrink, for its runs per second (each run is a replay as above, of fewer steps).
    const leaky = spec(40, { machine: { type: "sim", bugs: ["leak-ref"] } as StormSpec["machine"] });
    let runs = 0;
    const shrinkMs = await timed(async () => {
      const r = await shrinkStorm(leaky, { maxRuns: 150 });
      runs = r.runs;
    });
    console.log(`shrinker  a leaky 40-cycle storm: ${runs} runs in ${shrinkMs.toFixed(0)} ms, ${(shrinkMs / runs).toFixed(1)} ms/run`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
