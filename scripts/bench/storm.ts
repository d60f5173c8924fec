// Storm runner throughput on the sim machine. Baseline: the same step list
// driven straight into a SimMachine (add/remove/sleep, nothing recorded or
// checked). Then the runner without output (what shrinking does) and the
// runner writing the trace and all reports (what `plugstorm storm` does).
// The ratios are the runner's cost: recording, checking, reporting.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimMachine } from "../../src/sim/index.js";
import { DEFAULT_STORM, expandSteps, runStorm, validateStorm } from "../../src/storm/index.js";

const CYCLES = 300;

async function baseline(steps: ReturnType<typeof expandSteps>, seed: number): Promise<number> {
  const m = new SimMachine({ seed });
  const t0 = performance.now();
  await m.start();
  for (const s of steps) {
    if (s.op === "add") await m.addNic({ kind: s.kind, id: s.nic });
    else if (s.op === "remove" || s.op === "sick") await m.removeNic(s.nic);
    else if (s.op === "sleep") await m.clock.sleep(s.ns);
  }
  await m.stop();
  return performance.now() - t0;
}

export async function run(): Promise<void> {
  const spec = validateStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule!, cycles: CYCLES } });
  const steps = expandSteps(spec);
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-bench-storm-"));
  try {
    const base = await baseline(steps, spec.schedule.seed);
    let t0 = performance.now();
    await runStorm(spec, { out: null });
    const bare = performance.now() - t0;
    t0 = performance.now();
    await runStorm(spec, { out: join(dir, "run") });
    const full = performance.now() - t0;
    const rate = (ms: number): string => `${Math.round((CYCLES * 1000) / ms)} cycles/s`;
    console.log(`baseline  sim machine alone      ${base.toFixed(0)} ms  ${rate(base)}`);
    console.log(`runner    no output (shrinking)  ${bare.toFixed(0)} ms  ${rate(bare)}  ${(bare / base).toFixed(2)}x baseline`);
    console.log(`runner    trace + reports        ${full.toFixed(0)} ms  ${rate(full)}  ${(full / base).toFixed(2)}x baseline`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
