// Emulated NICs (plugstorm's own CDC-ECM device behind QEMU's usb-redir)
// against QEMU's own usb-net, all on one Linux-guest VM so every ratio is
// measured in the same run:
//   1. verified hot-plug cycles/s with 8 in flight, redir-cdce / usb-net (goal >= 0.8x);
//   2. unplug -> the guest's free (its detach end on Linux): device-side
//      surprise removal against device_del, one NIC at a time;
//   3. the device data path: frames/s the guest takes from one emulated NIC
//      (device -> guest, bulk IN through usb-redir; goal 20,000/s under TCG).
//
// Starts QEMU: run it alone, `flock /tmp/plugstorm-qemu.lock npm run bench -- redir`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startVm, type StormInput, type VmFixture } from "../../src/storm/index.js";
import type { QemuMachine } from "../../src/qemu/index.js";
import { pctMs, verifiedCycles, type Verified } from "./lib/verified.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "emulated usb-redir NICs against QEMU's usb-net on a Linux guest: cycles/s, unplug->free, frames/s (starts QEMU)";

const CYCLES = Number(process.env["REDIR_CYCLES"] ?? 16);
const REMOVALS = Number(process.env["REDIR_REMOVALS"] ?? 8);
const DATA_SECONDS = 4;
const LINUX = { type: "qemu", profile: "linux-guest", accel: "auto", telemetry: "virtio-serial", bootTimeout: "60s", usbPorts: 8 } as const;
const DEADLINES = { attach: "10s", detach: "10s", removal: "5s", guest: "60s" } as const;

async function cycles(vm: VmFixture, dir: string, name: string, kind: "usb-net" | "redir-cdce", inFlight: number, n: number, surprise: number): Promise<Verified> {
  const storm: StormInput = {
    name,
    machine: LINUX,
    nics: { mix: [{ kind, count: inFlight }] },
    schedule: { cycles: n, maxInFlight: inFlight, dwell: "1ms", seed: 1 },
    ...(surprise > 0 ? { surprise: { probability: surprise } } : {}),
    deadlines: DEADLINES,
    model: "linux",
  };
  return verifiedCycles(await vm.storm(storm, { out: join(dir, name), reports: false }));
}

/** Device -> guest frames/s on one emulated NIC whose interface the agent's traffic keeps up. */
async function dataPath(vm: VmFixture, dir: string): Promise<{ rate: number; dropped: number; fromGuest: number }> {
  const machine = vm.machine as QemuMachine;
  // Broadcast, the agents' experimental ethertype: the guest's stack counts it and drops it.
  const frame = new Uint8Array(64);
  frame.fill(0xff, 0, 6);
  frame.set([0x02, 0x50, 0x53, 0, 0, 1], 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;
  const samples: Array<[number, number]> = [];
  let fromGuest = 0;
  let dropped = 0;
  const pump = setInterval(() => {
    // The fixture gives each storm's NIC ids a prefix of its own: take the one emulated NIC.
    const nic = machine.nics().find((n) => n.kind === "redir-cdce");
    const dev = nic === undefined ? undefined : machine.emulatedDevice(nic.nicId);
    if (dev === undefined || !dev.dataPathUp) return;
    while (dev.sendToGuest(frame)) {
      /* fill the device's queue; it drains as QEMU hands it bulk IN requests */
    }
    samples.push([performance.now(), dev.counters.framesToGuest]);
    fromGuest = dev.counters.framesFromGuest;
    dropped = dev.counters.framesDropped;
  }, 1);
  try {
    const r = await vm.storm(
      {
        name: "redir-data-path",
        machine: LINUX,
        nics: { mix: [{ kind: "redir-cdce", count: 1 }] },
        schedule: {
          steps: [
            { add: { nic: "d0", kind: "redir-cdce" } },
            { traffic: { nic: "d0", pps: 100 } },
            { sleep: `${DATA_SECONDS}s` },
            { "traffic-stop": "d0" },
            { remove: "d0" },
          ],
        },
        deadlines: DEADLINES,
        model: "linux",
      },
      { out: join(dir, "data"), reports: false },
    );
    if (r.verdicts.some((v) => v.failing)) console.log(`  data path run had verdicts: ${r.verdicts.map((v) => v.rule).join(", ")}`);
  } finally {
    clearInterval(pump);
  }
  // From the first frame the guest took to the last sample that still moved.
  const moving = samples.filter(([, n], i) => i > 0 && n > samples[i - 1]![1]);
  if (moving.length < 2) return { rate: 0, dropped, fromGuest };
  const [t0, n0] = moving[0]!;
  const [t1, n1] = moving[moving.length - 1]!;
  return { rate: ((n1 - n0) / (t1 - t0)) * 1000, dropped, fromGuest };
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-bench-redir-"));
  const vm = await startVm({ machine: LINUX });
  try {
    const own = await cycles(vm, dir, "usb-net-8", "usb-net", 8, CYCLES, 0);
    const emu = await cycles(vm, dir, "redir-8", "redir-cdce", 8, CYCLES, 0);
    const ownRate = own.verified / own.seconds;
    const emuRate = emu.verified / emu.seconds;
    console.log(`redir: one Linux-guest VM, ${(vm.machine as QemuMachine).qemu.accel?.accel ?? "?"}`);
    console.log(`  hot-plug, 8 in flight     usb-net ${own.verified}/${CYCLES} ${ownRate.toFixed(2)} cycles/s   redir-cdce ${emu.verified}/${CYCLES} ${emuRate.toFixed(2)} cycles/s   ${(emuRate / ownRate).toFixed(2)}x (goal >= 0.8x)   violations ${own.violations + emu.violations}`);

    const host = await cycles(vm, dir, "redir-host", "redir-cdce", 1, REMOVALS, 0);
    const yank = await cycles(vm, dir, "redir-surprise", "redir-cdce", 1, REMOVALS, 1);
    const p = (v: Verified): string => [50, 90].map((q) => pctMs(v.freeNs, q)).join("/");
    const med = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
    console.log(
      `  unplug -> guest free      device_del p50/p90 ${p(host)}   device-side disconnect p50/p90 ${p(yank)}   ${(med(yank.freeNs) / med(host.freeNs)).toFixed(2)}x of device_del   violations ${host.violations + yank.violations}`,
    );

    const d = await dataPath(vm, dir);
    console.log(`  data path, one NIC        ${Math.round(d.rate)} frames/s device -> guest through usb-redir (goal 20000)   ${d.fromGuest} frames guest -> device, ${d.dropped} dropped at the device's queue`);
  } finally {
    await vm.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
