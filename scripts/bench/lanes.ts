// Throughput per VM by lanes: verified hot-plug cycles/s on one Linux guest
// (QEMU, TCG here) with 1, 8, 16, 32 and 64 NICs in flight, each lane on a
// root hub of its own (one xhci controller per lane; past 16 they sit behind
// PCIe root ports). Each row boots its own VM with exactly that many lanes
// and prints the ratio to the 1-lane row of the same run, the scaling
// efficiency (rate at N / (N x rate at 1)), p50/p99 add->attached, and where
// the host's CPU went (the guest's vCPU threads, the rest of QEMU, this
// runner), QEMU's memory and the telemetry rate: the candidates for the next
// ceiling.
//
// Starts QEMU: run it alone, `flock /tmp/plugstorm-qemu.lock npm run bench -- lanes`.
// PLUGSTORM_BENCH_LANES=1,8,16 picks other rows; PLUGSTORM_BENCH_SMP=2 gives the guest two vCPUs.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startVm, type StormInput } from "../../src/storm/index.js";
import type { QemuMachine } from "../../src/qemu/index.js";
import { pctMs, verifiedCycles } from "./lib/verified.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "verified hot-plug cycles/s on one Linux guest with 1 to 64 NICs in flight, against 1 (starts QEMU)";

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

/** utime + stime, in seconds, of one /proc stat file. */
function statSeconds(path: string): number {
  const f = readFileSync(path, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** QEMU's CPU time split into its vCPU threads (the guest) and everything else (main loop, I/O). */
function qemuCpu(pid: number): { vcpu: number; rest: number; rssMiB: number } {
  let vcpu = 0;
  let rest = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
    const s = statSeconds(`/proc/${pid}/task/${tid}/stat`);
    // TCG names its vCPU threads "CPU 0/TCG", KVM "CPU 0/KVM".
    if (/^CPU \d+\//.test(name)) vcpu += s;
    else rest += s;
  }
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { vcpu, rest, rssMiB: rss ? Number(rss[1]) / 1024 : NaN };
}

interface Row {
  lanes: number;
  rate: number;
  verified: number;
  cycles: number;
  seconds: number;
  attachNs: number[];
  /** Shares of one host core during the hot-plug: the guest's vCPUs, the rest of QEMU, this runner. */
  vcpu: number;
  qemuRest: number;
  runner: number;
  rssMiB: number;
  frames: number;
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
        const pid = (vm.machine as QemuMachine).qemu.pid!;
        const q0 = qemuCpu(pid);
        const h0 = process.cpuUsage();
        const r = await vm.storm(storm, { out: join(dir, `lanes${lanes}`), reports: false });
        const q1 = qemuCpu(pid);
        const h1 = process.cpuUsage(h0);
        const m = verifiedCycles(r);
        // CPU is sampled over the whole storm (wall time), the rate over the hot-plug itself.
        const wall = r.durationMs / 1000;
        rows.push({
          lanes, rate: m.verified / m.seconds, verified: m.verified, cycles, seconds: m.seconds, attachNs: m.attachNs,
          vcpu: (q1.vcpu - q0.vcpu) / wall, qemuRest: (q1.rest - q0.rest) / wall, runner: (h1.user + h1.system) / 1e6 / wall,
          rssMiB: q1.rssMiB, frames: r.frames, violations: m.violations,
        });
      } finally {
        await vm.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const base = rows[0]!;
  console.log(`lanes (linux-guest, TCG, ${SMP} vCPU; ${CYCLES_PER_LANE} cycles per lane; goal >= ${GOAL} verified cycles/s per VM, efficiency >= 0.8 up to 32 lanes)`);
  console.log("lanes  verified   time     cycles/s  ratio   efficiency  add->attached p50/p99  guest vCPU  QEMU rest  runner  QEMU RSS  frames/s  violations");
  for (const r of rows) {
    const ratio = r.rate / base.rate;
    const pctOf = (x: number): string => `${(x * 100).toFixed(0)}%`;
    console.log(
      `${String(r.lanes).padStart(5)}  ${`${r.verified}/${r.cycles}`.padEnd(9)}  ${`${r.seconds.toFixed(1)}s`.padEnd(7)}  ${r.rate.toFixed(2).padStart(8)}  ${`${ratio.toFixed(2)}x`.padStart(6)}  ` +
        `${(ratio / (r.lanes / base.lanes)).toFixed(2).padStart(10)}  ${`${pctMs(r.attachNs, 50)}/${pctMs(r.attachNs, 99)}`.padEnd(21)}  ` +
        `${pctOf(r.vcpu).padStart(10)}  ${pctOf(r.qemuRest).padStart(9)}  ${pctOf(r.runner).padStart(6)}  ${`${r.rssMiB.toFixed(0)} MiB`.padStart(8)}  ${(r.frames / r.seconds).toFixed(0).padStart(8)}  ${r.violations}`,
    );
  }
  const last = rows.at(-1)!;
  if (rows.length > 1) console.log(`memory per lane: ${((last.rssMiB - base.rssMiB) / (last.lanes - base.lanes)).toFixed(1)} MiB of QEMU RSS (guest RAM grows with lanes: 512 MiB + 8 MiB per lane)`);
  const best = rows.reduce((a, b) => (b.rate > a.rate ? b : a));
  console.log(`best: ${best.rate.toFixed(1)} verified cycles/s at ${best.lanes} lanes (${(best.rate / GOAL).toFixed(2)}x the goal of ${GOAL})`);
}
