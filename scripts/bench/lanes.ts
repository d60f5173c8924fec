// Throughput per VM by lanes: verified hot-plug cycles/s on one Linux guest
// (QEMU, TCG here) with 1, 8, 16, 32 and 64 NICs in flight, each lane on a
// root hub of its own (one xhci controller per lane; past 16 they sit behind
// PCIe root ports). Each row boots its own VM with exactly that many lanes
// and prints the ratio to the 1-lane row of the same run, the scaling
// efficiency (rate at N / (N x rate at 1)), p50/p99 add->attached, and the
// share of one host core QEMU used during the storm.
//
// Starts QEMU: run it alone, `flock /tmp/plugstorm-qemu.lock npm run bench -- lanes`.
// PLUGSTORM_BENCH_LANES=1,8,16 picks other rows; PLUGSTORM_BENCH_SMP=2 gives the guest two vCPUs.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startVm, type StormInput } from "../../src/storm/index.js";
import type { QemuMachine } from "../../src/hotplug/index.js";
import { pctMs, verifiedCycles } from "./lib/verified.js";

const LANES = (process.env.PLUGSTORM_BENCH_LANES ?? "1,8,16,32,64").split(",").map(Number);
const SMP = Number(process.env.PLUGSTORM_BENCH_SMP ?? "1");
const GOAL = 50;
/** Cycles per lane: enough for each lane to reach its steady state. */
const CYCLES_PER_LANE = 8;

/** The throughput preset: copy it from here or from scripts/storms/linux-throughput.yaml. */
export function throughputStorm(lanes: number, cycles: number): StormInput {
  return {
    name: `throughput-${lanes}`,
    machine: { type: "qemu", profile: "linux-guest", accel: "auto", telemetry: "virtio-serial", bootTimeout: "120s", usbPorts: lanes, memoryMb: 512 + 8 * lanes },
    nics: { mix: [{ kind: "usb-net", count: lanes }] },
    // Dwell 1 ms: a lane removes its NIC as soon as the guest attached it, and
    // the cycle ends when the guest freed it.
    schedule: { cycles, maxInFlight: lanes, dwell: "1ms", seed: 1 },
    deadlines: { attach: "10s", detach: "5s", removal: "2s", guest: "120s" },
    model: "linux",
  };
}

/** utime + stime of a process, in seconds (Linux /proc). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Row {
  lanes: number;
  rate: number;
  verified: number;
  cycles: number;
  seconds: number;
  attachNs: number[];
  qemuCpu: number;
  violations: number;
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-bench-lanes-"));
  const rows: Row[] = [];
  try {
    for (const lanes of LANES) {
      const cycles = Math.max(8, CYCLES_PER_LANE * lanes);
      const storm = throughputStorm(lanes, cycles);
      if (SMP > 1 && storm.machine?.type === "qemu") storm.machine.cpus = SMP;
      const vm = await startVm({ machine: storm.machine! });
      try {
        const pid = (vm.machine as QemuMachine).qemu.pid;
        const cpu0 = pid ? cpuSeconds(pid) : NaN;
        const r = await vm.storm(storm, { out: join(dir, `lanes${lanes}`), reports: false });
        const cpu1 = pid ? cpuSeconds(pid) : NaN;
        const m = verifiedCycles(r);
        rows.push({ lanes, rate: m.verified / m.seconds, verified: m.verified, cycles, seconds: m.seconds, attachNs: m.attachNs, qemuCpu: (cpu1 - cpu0) / m.seconds, violations: m.violations });
      } finally {
        await vm.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const base = rows[0]!;
  console.log(`lanes (linux-guest, TCG, ${SMP} vCPU; ${CYCLES_PER_LANE} cycles per lane; goal >= ${GOAL} verified cycles/s per VM, efficiency >= 0.8 up to 32 lanes)`);
  console.log("lanes  verified   time     cycles/s  ratio   efficiency  add->attached p50/p99  QEMU CPU  violations");
  for (const r of rows) {
    const ratio = r.rate / base.rate;
    console.log(
      `${String(r.lanes).padStart(5)}  ${`${r.verified}/${r.cycles}`.padEnd(9)}  ${`${r.seconds.toFixed(1)}s`.padEnd(7)}  ${r.rate.toFixed(2).padStart(8)}  ${`${ratio.toFixed(2)}x`.padStart(6)}  ` +
        `${(ratio / (r.lanes / base.lanes)).toFixed(2).padStart(10)}  ${`${pctMs(r.attachNs, 50)}/${pctMs(r.attachNs, 99)}`.padEnd(21)}  ${`${(r.qemuCpu * 100).toFixed(0)}%`.padStart(8)}  ${r.violations}`,
    );
  }
  const best = rows.reduce((a, b) => (b.rate > a.rate ? b : a));
  console.log(`best: ${best.rate.toFixed(1)} verified cycles/s at ${best.lanes} lanes (${(best.rate / GOAL).toFixed(2)}x the goal of ${GOAL})`);
}
