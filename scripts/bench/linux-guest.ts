// Hot-plug throughput against the real Linux guest (QEMU, TCG here): verified
// cycles per second on one VM, a cycle counting only when the guest's detach
// and free of that NIC were seen in the trace. Baseline: the same VM with one
// NIC at a time (sequential); then N NICs in flight, printed as a ratio to the
// sequential rate. Also add->attach and remove->free latency percentiles
// (trace time: host action to the guest frame's arrival).
//
// Starts QEMU: run it alone, `flock /tmp/plugstorm-qemu.lock npm run bench -- linux-guest`.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { startVm, type RunResult, type StormInput } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";

const CYCLES = 24;
const GOAL = 10;
// Eight ports, one xhci root hub each, so every row runs on the same VM.
const LINUX = { type: "qemu", profile: "linux-guest", accel: "auto", telemetry: "virtio-serial", bootTimeout: "60s", usbPorts: 8 } as const;
const ActKind = plugstorm.trace.v1.HostAction.Kind;
const DevKind = plugstorm.telemetry.v1.DeviceEvent.Kind;

interface Measured {
  label: string;
  inFlight: number;
  verified: number;
  seconds: number;
  attachNs: number[];
  freeNs: number[];
  violations: number;
}

/** Verified cycles and latencies, read back from the run's trace. */
function measure(label: string, inFlight: number, r: RunResult): Measured {
  const recs = parseTrace(readFileSync(r.traceFile!), r.traceFile!).records;
  const attachNs: number[] = [];
  const freeNs: number[] = [];
  let verified = 0;
  recs.forEach((x, i) => {
    const a = x.action;
    if (a?.kind === ActKind.ADD_NIC) {
      const att = recs.find((y, j) => j > i && y.guest?.device?.kind === DevKind.ATTACH_END && y.guest.device.serial === a.nicId);
      if (att) attachNs.push(Number(att.tNs) - Number(x.tNs));
    }
    if (a?.kind === ActKind.REMOVE_NIC) {
      const begin = recs.findIndex((y, j) => j > i && y.guest?.device?.kind === DevKind.DETACH_BEGIN && y.guest.device.serial === a.nicId);
      if (begin < 0) return;
      const name = recs[begin]!.guest!.device!.name;
      const free = recs.find((y, j) => j > begin && y.guest?.device?.kind === DevKind.FREE && y.guest.device.name === name);
      if (!free) return;
      verified++;
      freeNs.push(Number(free.tNs) - Number(x.tNs));
    }
  });
  return { label, inFlight, verified, seconds: r.durationMs / 1000, attachNs, freeNs, violations: r.verdicts.filter((v) => v.failing).length };
}

function pct(xs: number[], p: number): string {
  if (xs.length === 0) return "-";
  const s = [...xs].sort((a, b) => a - b);
  return `${(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! / 1e6).toFixed(0)}ms`;
}

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
