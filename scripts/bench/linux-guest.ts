// Hot-plug throughput against the real Linux guest (QEMU, TCG here): verified
// cycles per second on one VM, a cycle counting only when the guest's detach
// and free of that NIC were seen in the trace. Baseline: the same VM with one
// NIC at a time (sequential); then N NICs in flight, printed as a ratio to the
// sequential rate. Also add->attach and remove->free latency percentiles
// (trace time: host action to the guest frame's arrival).
//
// Starts QEMU: run it alone, `flock /tmp/plugstorm-qemu.lock npm run bench -- linux-guest`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startVm, type RunResult, type StormInput } from "../../src/storm/index.js";
import { pctMs, verifiedCycles, type Verified } from "./lib/verified.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "verified hot-plug cycles/s on the Linux guest, NICs in flight against one at a time; latency percentiles (starts QEMU)";

const CYCLES = 24;
const GOAL = 10;
// Eight ports, one xhci root hub each, so every row runs on the same VM.
const LINUX = { type: "qemu", profile: "linux-guest", accel: "auto", telemetry: "virtio-serial", bootTimeout: "60s", usbPorts: 8 } as const;

interface Measured extends Verified {
  label: string;
  inFlight: number;
}

function measure(label: string, inFlight: number, r: RunResult): Measured {
  return { label, inFlight, ...verifiedCycles(r) };
}

const pct = pctMs;

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-bench-linux-"));
  const vm = await startVm({ machine: LINUX });
  try {
    const results: Measured[] = [];
    for (const inFlight of [1, 2, 4, 8]) {
      const storm: StormInput = {
        name: `bench-linux-${inFlight}`,
        machine: LINUX,
        nics: { mix: [{ kind: "usb-net", count: inFlight }] },
        // Dwell 1 ms: the runner's remove of a NIC waits for its attach, and the
        // cycle ends when the guest freed it, so a cycle is add->attached->remove->freed.
        // With several in flight each NIC has its own lane (src/storm/runner.ts) and,
        // in the linux-guest profile, its own xhci root hub.
        schedule: { cycles: CYCLES, maxInFlight: inFlight, dwell: "1ms", seed: 1 },
        deadlines: { attach: "5s", detach: "5s", removal: "2s", guest: "60s" },
        model: "linux",
      };
      const r = await vm.storm(storm, { out: join(dir, `n${inFlight}`), reports: false });
      results.push(measure(inFlight === 1 ? "sequential" : `${inFlight} in flight`, inFlight, r));
    }
    const base = results[0]!.verified / results[0]!.seconds;
    console.log(`linux-guest (${CYCLES} cycles each; goal ${GOAL} verified cycles/s per VM)`);
    console.log("mode           verified  time     cycles/s  ratio  add->attach p50/p90/p99   remove->free p50/p90/p99  violations");
    for (const m of results) {
      const rate = m.verified / m.seconds;
      console.log(
        `${m.label.padEnd(14)} ${`${m.verified}/${CYCLES}`.padEnd(9)} ${`${m.seconds.toFixed(1)}s`.padEnd(8)} ${rate.toFixed(2).padStart(8)}  ${(rate / base).toFixed(2)}x  ` +
          `${[50, 90, 99].map((p) => pct(m.attachNs, p)).join("/").padEnd(25)} ${[50, 90, 99].map((p) => pct(m.freeNs, p)).join("/").padEnd(25)} ${m.violations}`,
      );
    }
  } finally {
    await vm.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
